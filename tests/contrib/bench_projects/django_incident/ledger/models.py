# mypy: disable-error-code="misc"
"""The sample schema's tables (pgwarden.sample) as Django models, after 0002."""

from django.db import models


class PaymentAccount(models.Model):
    owner = models.TextField()
    iban = models.TextField(null=True)
    created_at = models.DateTimeField()

    class Meta:
        db_table = "payment_accounts"


class Invoice(models.Model):
    # 0002: made optional; Django drops the FK, alters the column, re-adds the FK
    payment_account = models.ForeignKey(PaymentAccount, null=True, on_delete=models.PROTECT)
    amount_cents = models.IntegerField()
    status = models.TextField(null=True)
    created_at = models.DateTimeField()

    class Meta:
        db_table = "invoices"
