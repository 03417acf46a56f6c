"""FK from invoices to payment_accounts (the hazard: validated under lock)

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_foreign_key(
        "invoices_account_id_fkey",
        "invoices",
        "payment_accounts",
        ["account_id"],
        ["id"],
    )


def downgrade() -> None:
    op.drop_constraint("invoices_account_id_fkey", "invoices", type_="foreignkey")
