# mypy: disable-error-code="misc"
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("alpha", "0002_author_email")]

    operations = [
        migrations.AlterUniqueTogether(name="author", unique_together={("name", "email")}),
    ]
