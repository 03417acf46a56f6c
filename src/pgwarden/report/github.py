"""Escaping for GitHub workflow commands (`::error title=...::message`), lint's and audit's."""

from __future__ import annotations

__all__ = ["data", "prop"]


def data(s: str) -> str:
    """`s` as the message of a workflow command: `%`, CR and LF percent-encoded."""
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def prop(s: str) -> str:
    """`s` as a property value (file=, title=): the message's escapes, plus `:` and `,`."""
    return data(s).replace(":", "%3A").replace(",", "%2C")
