"""add metrics.unit unless it exists (inspects the connection)

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
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("metrics")}
    if "unit" not in columns:
        op.add_column("metrics", sa.Column("unit", sa.Text, nullable=True))


def downgrade() -> None:
    op.drop_column("metrics", "unit")
