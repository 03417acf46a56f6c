"""invoices and payment_accounts tables

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "payment_accounts",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("iban", sa.Text, nullable=False),
    )
    op.create_table(
        "invoices",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("account_id", sa.BigInteger, nullable=True),
        sa.Column("amount_cents", sa.BigInteger, nullable=False),
        sa.Column("customer_name", sa.Text, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("invoices")
    op.drop_table("payment_accounts")
