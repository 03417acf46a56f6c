"""metrics.value NOT NULL (the hazard: SET NOT NULL scans under lock)

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.alter_column("metrics", "value", nullable=False)


def downgrade() -> None:
    op.alter_column("metrics", "value", nullable=True)
