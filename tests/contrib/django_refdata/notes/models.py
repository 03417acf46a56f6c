# mypy: disable-error-code="misc"
from django.contrib.contenttypes.models import ContentType
from django.db import models


class Topic(models.Model):
    name = models.TextField()
    slug = models.TextField(null=True)


class Note(models.Model):
    """A note on any object (a generic relation, as wagtail's log entries and revisions)."""

    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE)
    object_id = models.BigIntegerField()
    text = models.TextField()
    about_topic = models.BooleanField(default=False)


class Tag(models.Model):
    name = models.TextField()
