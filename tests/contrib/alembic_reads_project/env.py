"""env.py of the reads-data sample: the standard template, URL from the config.

`PGWARDEN_GUARDED=1` routes online upgrades through pgwarden's guarded executor.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine

config = context.config
url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
    "sqlalchemy.url"
)
per_migration = os.environ.get("SAMPLE_TRANSACTION_PER_MIGRATION", "1") == "1"
if os.environ.get("SAMPLE_URL_FILE"):  # the tests check which URL reached env.py
    with open(os.environ["SAMPLE_URL_FILE"], "a", encoding="utf-8") as seen:
        seen.write(f"{url}\n")
if os.environ.get("SAMPLE_BROKEN_ENV") == "1":
    raise RuntimeError("env.py could not import the application's settings")

if os.environ.get("PGWARDEN_GUARDED") == "1":
    from pgwarden.contrib.alembic import configure

    configure(
        context,
        url=url,
        environment=os.environ.get("PGWARDEN_ENV", "dev"),
        restamp=os.environ.get("PGWARDEN_RESTAMP") == "1",
        transaction_per_migration=per_migration,
    )
elif context.is_offline_mode():
    context.configure(
        url=url,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        transaction_per_migration=per_migration,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    if not url:
        raise RuntimeError("sqlalchemy.url is empty: set it in alembic.ini")
    # SAMPLE_ISOLATION: an isolation level asked for on the engine, or (SAMPLE_ISOLATION_ON=
    # connection) with execution_options on the connection
    isolation = os.environ.get("SAMPLE_ISOLATION")
    on_engine = os.environ.get("SAMPLE_ISOLATION_ON", "engine") == "engine"
    engine = create_engine(
        url, **({"isolation_level": isolation} if isolation and on_engine else {})
    )
    with engine.connect() as connection:
        if isolation and not on_engine:
            connection = connection.execution_options(isolation_level=isolation)
        context.configure(connection=connection, transaction_per_migration=per_migration)
        with context.begin_transaction():
            context.run_migrations()
