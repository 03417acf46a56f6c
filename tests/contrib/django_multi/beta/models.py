# mypy: disable-error-code="misc"
from django.db import models


class Book(models.Model):
    title = models.CharField(max_length=100)
    author = models.ForeignKey("alpha.Author", on_delete=models.CASCADE)
    bar = models.IntegerField(null=True)
    editor = models.ForeignKey("alpha.Author", on_delete=models.PROTECT, related_name="edited")


class Shelf(models.Model):
    label = models.CharField(max_length=50)
    books = models.ManyToManyField(Book)
