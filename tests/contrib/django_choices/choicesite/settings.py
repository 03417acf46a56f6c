"""`tickets`, whose 0002 RunPython maps a field's choices to codes that 0003 makes NOT NULL.

The database comes from $PGWARDEN_DJANGO_DSN.
"""

import os

from psycopg.conninfo import conninfo_to_dict

_p = conninfo_to_dict(os.environ["PGWARDEN_DJANGO_DSN"])
SECRET_KEY = "test-only"
USE_TZ = True
INSTALLED_APPS = ["pgwarden.contrib.django", "tickets"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": _p["dbname"],
        "HOST": _p.get("host", ""),
        "PORT": _p.get("port", ""),
        "USER": _p.get("user", ""),
    }
}
