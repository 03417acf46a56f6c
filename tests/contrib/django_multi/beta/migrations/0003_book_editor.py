# mypy: disable-error-code="misc"
from typing import Any

import django.db.models.deletion
from django.db import migrations, models


def editor_is_author(apps: Any, schema_editor: Any) -> None:
    book = apps.get_model("beta", "Book")
    book.objects.update(editor=models.F("author"))


class Migration(migrations.Migration):
    dependencies = [("beta", "0002_book_bar"), ("alpha", "0005_author_email_idx")]

    operations = [
        migrations.AddField(
            model_name="book",
            name="editor",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="edited",
                to="alpha.author",
            ),
        ),
        migrations.RunPython(editor_is_author, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="book",
            name="editor",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="edited",
                to="alpha.author",
            ),
        ),
    ]
