"""How a plan statement is named where it is shown in one line.

Progress lines, the rehearsal table and its step events, `pgwarden status`, the
description of a run's backend, the plan preview of `pgwarden apply`, notification
summaries and the title of `pgwarden explain` all show a statement by
`statement_label`: one line (runs of whitespace, newlines included, collapsed
to one space), cut at a word boundary and ended with an ellipsis when longer
than the room given. The step of an Alembic revision that runs online has a
placeholder statement (a DO block that raises, should it ever run as SQL): it is
labelled `alembic revision <rev> (online: <file name>)` instead.
"""

from __future__ import annotations

__all__ = ["shorten", "statement_label"]

ELLIPSIS = "…"


def shorten(text: str, width: int) -> str:
    """`text` in one line of at most `width` characters, cut after a whole word with "…".

    A word longer than half the room is cut inside (an identifier of 63 characters
    in a 40-character label still shows its start).
    """
    one = " ".join(text.split())
    if len(one) <= width:
        return one
    room = max(width - len(ELLIPSIS), 1)
    space = one.rfind(" ", 0, room + 1)
    cut = one[:space] if space >= room // 2 else one[:room]
    return cut.rstrip() + ELLIPSIS


def statement_label(sql: str, width: int) -> str:
    """The one-line label of the statement `sql`, at most `width` characters."""
    if sql.startswith("DO $pgwarden$"):  # imported here: psycopg, which lint does not need
        from pgwarden.sources.alembic_online import online_label
        from pgwarden.sources.alembic_resume import placeholder_revision

        online = placeholder_revision(sql)
        if online is not None:
            sql = online_label(*online)
    return shorten(sql, width)
