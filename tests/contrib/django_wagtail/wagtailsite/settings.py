"""A wagtail site with every wagtail app that has migrations (tests/contrib/test_django_wagtail.py).

The database comes from $PGWARDEN_DJANGO_DSN.
"""

import os

from psycopg.conninfo import conninfo_to_dict

_params = conninfo_to_dict(os.environ.get("PGWARDEN_DJANGO_DSN", "dbname=wagtailsite"))

SECRET_KEY = "test-only"
DEBUG = False
USE_TZ = True
ROOT_URLCONF = "wagtailsite.urls"
WAGTAIL_SITE_NAME = "pgwarden test"
WAGTAILADMIN_BASE_URL = "http://localhost"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
INSTALLED_APPS = [
    "wagtail.contrib.forms",
    "wagtail.contrib.redirects",
    "wagtail.contrib.search_promotions",
    "wagtail.embeds",
    "wagtail.sites",
    "wagtail.users",
    "wagtail.snippets",
    "wagtail.documents",
    "wagtail.images",
    "wagtail.search",
    "wagtail.admin",
    "wagtail",
    "modelcluster",
    "taggit",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "pgwarden.contrib.django",
    "wagtailsite",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
STATIC_URL = "/static/"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": _params.get("dbname", ""),
        "HOST": _params.get("host", ""),
        "PORT": _params.get("port", ""),
        "USER": _params.get("user", ""),
        "PASSWORD": _params.get("password", ""),
    }
}
