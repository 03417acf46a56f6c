"""Settings of the multi-app sample project: the database comes from $PGWARDEN_DJANGO_DSN."""

import os

from psycopg.conninfo import conninfo_to_dict

_params = conninfo_to_dict(os.environ.get("PGWARDEN_DJANGO_DSN", "dbname=multisite"))

SECRET_KEY = "test-only"
DEBUG = False
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "pgwarden.contrib.django",
    "alpha",
    "beta",
]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
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

if os.environ.get("MULTISITE_CONTRIB") == "1":  # Django's own contrib apps: a long real history
    INSTALLED_APPS += [
        "django.contrib.sessions",
        "django.contrib.sites",
        "django.contrib.flatpages",
        "django.contrib.redirects",
        "django.contrib.messages",
        "django.contrib.admin",
    ]
    SITE_ID = 1
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
