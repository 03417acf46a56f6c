"""manage.py of the project whose data migration reads a content type
(tests/contrib/test_django_rehearse_copy_data.py)."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "refsite.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
