# mypy: disable-error-code="misc"
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("alpha", "0003_author_unique_together")]

    operations = [
        migrations.AlterUniqueTogether(name="author", unique_together=set()),
    ]
