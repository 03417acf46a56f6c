# mypy: disable-error-code="misc"
from django.db import migrations, models

STATES = [("Active", [("open", "Open"), ("in_progress", "In progress")]), ("closed", "Closed")]


class Migration(migrations.Migration):
    initial = True
    dependencies: list[tuple[str, str]] = []
    operations = [
        migrations.CreateModel(
            "Ticket",
            [
                ("id", models.BigAutoField(primary_key=True)),
                ("state", models.CharField(max_length=20, choices=STATES)),
            ],
        ),
        migrations.CreateModel(
            "Vote",
            [
                ("id", models.BigAutoField(primary_key=True)),
                ("ticket", models.ForeignKey("tickets.Ticket", on_delete=models.CASCADE)),
                (
                    "kind",
                    models.CharField(max_length=10, choices=[("up", "Up"), ("down", "Down")]),
                ),
            ],
            options={"unique_together": {("ticket", "kind")}},
        ),
        migrations.CreateModel(
            "Slot",
            [
                ("id", models.BigAutoField(primary_key=True)),
                (
                    "day",
                    models.CharField(
                        max_length=10, unique=True, choices=[("mon", "Monday"), ("tue", "Tuesday")]
                    ),
                ),
            ],
        ),
    ]
