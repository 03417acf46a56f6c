# mypy: disable-error-code="misc"
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("alpha", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="author", name="email", field=models.CharField(max_length=200, null=True)
        ),
    ]
