"""read the duplicate keys, then delete them one by one (reads data)

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(
        sa.text("SELECT key, min(id) FROM metrics GROUP BY key HAVING count(*) > 1")
    ).fetchall()
    for key, keep in rows:
        conn.execute(
            sa.text("DELETE FROM metrics WHERE key = :key AND id <> :keep"),
            {"key": key, "keep": keep},
        )


def downgrade() -> None:
    pass
