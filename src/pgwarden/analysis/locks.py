"""The lock model. (Initial contract; being written.)"""

from __future__ import annotations

from pgwarden.analysis.catalog import Catalog
from pgwarden.analysis.effects import Effects
from pgwarden.analysis.parse import Node

__all__ = ["analyse"]


def analyse(tree: Node, *, catalog: Catalog | None = None, server_version: int | None = None) -> Effects:
    """Effects of one statement."""
    raise NotImplementedError
