# mypy: disable-error-code="misc"
import os

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("alpha", "0004_remove_unique_together")]

    if os.environ.get("MULTISITE_SKIP_INDEX") != "1":
        operations = [
            migrations.AddIndex(
                model_name="author",
                index=models.Index(fields=["email"], name="alpha_author_email_idx"),
            ),
        ]
    else:
        operations = []
