# mypy: disable-error-code="misc"
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("billing", "0002_invoice_account")]

    operations = [
        migrations.AddIndex(
            model_name="invoice",
            index=models.Index(fields=["number"], name="invoice_number_idx"),
        ),
    ]
