"""manage.py of the project whose data migration maps a field's choices
(tests/contrib/test_django_rehearse_choices.py)."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "choicesite.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
