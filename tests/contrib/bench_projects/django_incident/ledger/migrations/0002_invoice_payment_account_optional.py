# mypy: disable-error-code="misc"
"""invoices.payment_account becomes optional: Django drops and re-adds the FK."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("ledger", "0001_initial")]

    operations = [
        migrations.AlterField(
            model_name="invoice",
            name="payment_account",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                to="ledger.paymentaccount",
            ),
        ),
    ]
