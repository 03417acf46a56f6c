# mypy: disable-error-code="misc"
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("beta", "0001_initial")]

    operations = [
        migrations.AddField(model_name="book", name="bar", field=models.IntegerField(null=True)),
    ]
