"""env.py of the incident bench project: Alembic's stock env.py plus pgwarden's hook.

The database URL comes from `-x url=...` or `$PGWARDEN_BENCH_URL` (a libpq
`postgresql://` URL, used with the psycopg 3 driver). `PGWARDEN_GUARDED=1`
routes online upgrades through `pgwarden.contrib.alembic.configure`
(`PGWARDEN_REWRITE=1`: with lint's lock-friendly rewrite).
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine

config = context.config
url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
    "sqlalchemy.url"
)
if os.environ.get("PGWARDEN_BENCH_URL"):
    url = "postgresql+psycopg://" + os.environ["PGWARDEN_BENCH_URL"].split("://", 1)[1]

if os.environ.get("PGWARDEN_GUARDED") == "1":
    from pgwarden.contrib.alembic import configure

    configure(
        context,
        url=url,
        environment=os.environ.get("PGWARDEN_ENV", "dev"),
        rewrite=os.environ.get("PGWARDEN_REWRITE") == "1",
        yes=True,
        restamp=True,  # the replay's database: a fresh copy with 0001 applied, adopted
        journal_file=os.environ.get("PGWARDEN_JOURNAL") or None,
        transaction_per_migration=True,
    )
elif context.is_offline_mode():
    context.configure(
        url=url,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    assert url is not None
    engine = create_engine(url)
    with engine.connect() as connection:
        context.configure(connection=connection, transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()
