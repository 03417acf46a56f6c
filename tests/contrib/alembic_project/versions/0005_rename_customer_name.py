"""rename invoices.customer_name to billing_name

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.alter_column("invoices", "customer_name", new_column_name="billing_name")


def downgrade() -> None:
    op.alter_column("invoices", "billing_name", new_column_name="customer_name")
