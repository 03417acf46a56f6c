# mypy: disable-error-code="misc"
from django.db import models

STATES = [("Active", [("open", "Open"), ("in_progress", "In progress")]), ("closed", "Closed")]


class Ticket(models.Model):
    state = models.CharField(max_length=20, choices=STATES)
    state_code = models.SmallIntegerField()


class Vote(models.Model):
    """`kind` is in a unique key whose other column (a foreign key) has a value per row."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE)
    kind = models.CharField(max_length=10, choices=[("up", "Up"), ("down", "Down")])

    class Meta:
        unique_together = [("ticket", "kind")]


class Slot(models.Model):
    """`day` is unique on its own: two choices cannot fill thousands of rows."""

    day = models.CharField(
        max_length=10, unique=True, choices=[("mon", "Monday"), ("tue", "Tuesday")]
    )
