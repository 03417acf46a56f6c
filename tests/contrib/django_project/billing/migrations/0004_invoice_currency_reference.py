# mypy: disable-error-code="misc"
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("billing", "0003_invoice_number_idx")]

    operations = [
        migrations.AddField(
            model_name="invoice",
            name="currency",
            field=models.TextField(default="EUR"),
        ),
        migrations.AlterField(
            model_name="invoice",
            name="reference",
            field=models.TextField(),
        ),
    ]
