# mypy: disable-error-code="misc"
from django.db import migrations, models


def mark_topic_notes(apps, schema_editor):
    """Looks the topic content type up by value, as data migrations do (wagtail's 0081)."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    Note = apps.get_model("notes", "Note")
    topic = ContentType.objects.get(app_label="notes", model="topic")
    Note.objects.filter(content_type=topic).update(about_topic=True)
    with schema_editor.connection.cursor() as cursor:  # every note's type is a real one
        cursor.execute(
            "SELECT count(*) FROM notes_note n LEFT JOIN django_content_type c "
            "ON c.id = n.content_type_id WHERE c.id IS NULL"
        )
        (dangling,) = cursor.fetchone()
    if dangling:
        raise RuntimeError(f"{dangling} notes point at no content type")


class Migration(migrations.Migration):
    dependencies = [("notes", "0001_initial")]
    operations = [
        migrations.AddField("note", "about_topic", models.BooleanField(default=False)),
        migrations.RunPython(mark_topic_notes, migrations.RunPython.noop),
    ]
