"""pgwarden for Django: `INSTALLED_APPS += ["pgwarden.contrib.django"]`, then `manage.py pgwarden`.

`manage.py pgwarden lint` lints the SQL Django's own migration machinery
generates; `manage.py pgwarden migrate` applies unapplied migrations through
pgwarden's guarded executor and keeps `django_migrations` right. See docs/django.md.
"""
