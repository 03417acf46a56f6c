"""Liquibase formatted SQL: each changeset runs in a transaction of its own.

A file whose first line is `--liquibase formatted sql` is a list of changesets,
each starting at a `--changeset author:id [attribute:value ...]` line. Liquibase
runs each changeset in its own transaction, or outside any with
`runInTransaction:false`; its `--rollback` lines say how to undo it and are
comments to PostgreSQL (not linted, as a down half is not).
"""

from __future__ import annotations

import re

__all__ = ["changesets"]

_HEADER = re.compile(r"\A\s*--[ \t]*liquibase[ \t]+formatted[ \t]+sql\b", re.IGNORECASE)
_CHANGESET = re.compile(
    r"^[ \t]*--[ \t]*changeset[ \t]+\S+(?P<attributes>[^\n]*)$", re.IGNORECASE | re.MULTILINE
)
_NO_TRANSACTION = re.compile(r"\brunInTransaction[ \t]*:[ \t]*false\b", re.IGNORECASE)


def changesets(text: str) -> tuple[tuple[int, bool], ...]:
    """(offset of its `--changeset` line, runs in a transaction) for each changeset of a
    Liquibase formatted SQL file, in order; () for any other file."""
    if not _HEADER.match(text):
        return ()
    return tuple(
        (m.start(), not _NO_TRANSACTION.search(m.group("attributes")))
        for m in _CHANGESET.finditer(text)
    )
