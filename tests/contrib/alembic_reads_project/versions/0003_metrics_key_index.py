"""index on metrics.key (the hazard: a plain CREATE INDEX)

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("metrics_key_idx", "metrics", ["key"])


def downgrade() -> None:
    op.drop_index("metrics_key_idx", table_name="metrics")
