"""a NOT NULL column added later

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("invoices", sa.Column("currency", sa.Text, nullable=True))
    op.execute("UPDATE invoices SET currency = 'EUR'")
    op.alter_column("invoices", "currency", nullable=False)


def downgrade() -> None:
    op.drop_column("invoices", "currency")
