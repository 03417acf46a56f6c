"""index on invoices.account_id

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("invoices_account_id_idx", "invoices", ["account_id"])


def downgrade() -> None:
    op.drop_index("invoices_account_id_idx", table_name="invoices")
