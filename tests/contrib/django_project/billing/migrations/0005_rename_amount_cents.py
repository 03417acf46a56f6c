# mypy: disable-error-code="misc"
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("billing", "0004_invoice_currency_reference")]

    operations = [
        migrations.RenameField(
            model_name="invoice",
            old_name="amount_cents",
            new_name="total_cents",
        ),
    ]
