# mypy: disable-error-code="misc"
from django.db import models


class Author(models.Model):
    name = models.CharField(max_length=100)
    email = models.CharField(max_length=200, null=True)
    slug = models.CharField(max_length=100, null=True)

    class Meta:
        indexes = [models.Index(fields=["email"], name="alpha_author_email_idx")]
