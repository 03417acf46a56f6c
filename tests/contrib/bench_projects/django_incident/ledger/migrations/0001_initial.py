# mypy: disable-error-code="misc"
"""The existing tables (pgwarden.sample's schema): fake-applied."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies: list[tuple[str, str]] = []

    operations = [
        migrations.CreateModel(
            name="PaymentAccount",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("owner", models.TextField()),
                ("iban", models.TextField(null=True)),
                ("created_at", models.DateTimeField()),
            ],
            options={"db_table": "payment_accounts"},
        ),
        migrations.CreateModel(
            name="Invoice",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                (
                    "payment_account",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        to="ledger.paymentaccount",
                    ),
                ),
                ("amount_cents", models.IntegerField()),
                ("status", models.TextField(null=True)),
                ("created_at", models.DateTimeField()),
            ],
            options={"db_table": "invoices"},
        ),
    ]
