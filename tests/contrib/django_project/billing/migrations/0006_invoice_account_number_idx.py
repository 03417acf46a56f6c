# mypy: disable-error-code="misc"
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False  # the remedy pgwarden suggests for 0003

    dependencies = [("billing", "0005_rename_amount_cents")]

    operations = [
        AddIndexConcurrently(
            model_name="invoice",
            index=models.Index(fields=["account", "number"], name="invoice_account_number_idx"),
        ),
    ]
