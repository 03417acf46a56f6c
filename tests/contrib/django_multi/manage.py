"""manage.py of the multi-app sample project (tests/contrib/test_django_upgrades.py)."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "multisite.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
