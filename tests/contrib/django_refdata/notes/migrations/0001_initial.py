# mypy: disable-error-code="misc"
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = [("contenttypes", "0002_remove_content_type_name")]
    operations = [
        migrations.CreateModel(
            "Topic",
            [("id", models.BigAutoField(primary_key=True)), ("name", models.TextField())],
        ),
        migrations.CreateModel(
            "Note",
            [
                ("id", models.BigAutoField(primary_key=True)),
                (
                    "content_type",
                    models.ForeignKey("contenttypes.ContentType", on_delete=models.CASCADE),
                ),
                ("object_id", models.BigIntegerField()),
                ("text", models.TextField()),
            ],
        ),
    ]
