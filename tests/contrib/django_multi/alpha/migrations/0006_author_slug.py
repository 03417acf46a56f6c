# mypy: disable-error-code="misc"
"""A non-atomic migration mixing SQL, Python and raw SQL, as data migrations on large
tables are written: a nullable column, a backfill (RunPython, in its own transaction),
then an index built CONCURRENTLY (RunSQL, which cannot run in a transaction)."""

from typing import Any

from django.db import migrations, models


def fill_slugs(apps: Any, schema_editor: Any) -> None:
    Author = apps.get_model("alpha", "Author")
    for author in Author.objects.filter(slug__isnull=True):
        author.slug = author.name.lower()
        author.save(update_fields=["slug"])


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("alpha", "0005_author_email_idx")]

    operations = [
        migrations.AddField(
            model_name="author", name="slug", field=models.CharField(max_length=100, null=True)
        ),
        migrations.RunPython(fill_slugs, migrations.RunPython.noop),
        migrations.RunSQL(
            'CREATE INDEX CONCURRENTLY "alpha_author_slug_idx" ON "alpha_author" ("slug")',
            reverse_sql='DROP INDEX CONCURRENTLY "alpha_author_slug_idx"',
        ),
    ]
