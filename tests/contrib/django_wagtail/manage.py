#!/usr/bin/env python
"""manage.py of the wagtail test project (tests/contrib/test_django_wagtail.py)."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wagtailsite.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
