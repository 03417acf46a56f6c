# mypy: disable-error-code="misc"
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("notes", "0002_note_about_topic")]
    operations = [
        migrations.AddField("topic", "slug", models.TextField(null=True)),
        migrations.CreateModel(
            "Tag",
            [("id", models.BigAutoField(primary_key=True)), ("name", models.TextField())],
        ),
    ]
