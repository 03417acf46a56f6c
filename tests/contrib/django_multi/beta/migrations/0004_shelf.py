# mypy: disable-error-code="misc"
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("beta", "0003_book_editor")]

    operations = [
        migrations.CreateModel(
            name="Shelf",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False)),
                ("label", models.CharField(max_length=50)),
                ("books", models.ManyToManyField(to="beta.book")),
            ],
        ),
    ]
