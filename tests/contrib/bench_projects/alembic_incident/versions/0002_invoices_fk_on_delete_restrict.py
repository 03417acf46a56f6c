"""re-create the invoices FK with ON DELETE RESTRICT (the incident's migration)

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_constraint("invoices_payment_account_id_fkey", "invoices", type_="foreignkey")
    op.create_foreign_key(
        "invoices_payment_account_id_fkey",
        "invoices",
        "payment_accounts",
        ["payment_account_id"],
        ["id"],
        ondelete="RESTRICT",
    )


def downgrade() -> None:
    op.drop_constraint("invoices_payment_account_id_fkey", "invoices", type_="foreignkey")
    op.create_foreign_key(
        "invoices_payment_account_id_fkey",
        "invoices",
        "payment_accounts",
        ["payment_account_id"],
        ["id"],
    )
