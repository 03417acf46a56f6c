# mypy: disable-error-code="misc"
from django.db import migrations, models

CODES = {"open": 1, "in_progress": 2, "closed": 3}


def fill_state_code(apps, schema_editor):
    """Maps each of the field's choices to a code (as wagtail's 0086 maps permission_type)."""
    Ticket = apps.get_model("tickets", "Ticket")
    for state, code in CODES.items():
        Ticket.objects.filter(state=state).update(state_code=code)


class Migration(migrations.Migration):
    """The column, its values, then NOT NULL: a state that maps to no code fails here."""

    dependencies = [("tickets", "0001_initial")]
    operations = [
        migrations.AddField("ticket", "state_code", models.SmallIntegerField(null=True)),
        migrations.RunPython(fill_state_code, migrations.RunPython.noop),
        migrations.AlterField("ticket", "state_code", models.SmallIntegerField()),
    ]
