# mypy: disable-error-code="misc"
"""The final state of the models, after migrations 0001 to 0006."""

from django.db import models


class PaymentAccount(models.Model):
    name = models.TextField()


class Invoice(models.Model):
    number = models.TextField()
    reference = models.TextField()  # 0004: made NOT NULL
    total_cents = models.BigIntegerField()  # 0005: renamed from amount_cents
    account = models.ForeignKey(PaymentAccount, null=True, on_delete=models.PROTECT)  # 0002
    currency = models.TextField(default="EUR")  # 0004: NOT NULL field added later

    class Meta:
        indexes = [
            models.Index(fields=["number"], name="invoice_number_idx"),  # 0003
            models.Index(fields=["account", "number"], name="invoice_account_number_idx"),  # 0006
        ]
