"""`styled`: pgwarden's own rich markup with every value shown literally."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.text import Text

__all__ = ["styled"]


def styled(template: str, /, *values: object) -> Text:
    """pgwarden's own markup `template`, each `{}` filled with a value shown literally."""
    from rich.markup import escape
    from rich.text import Text

    return Text.from_markup(template.format(*(escape(str(v)) for v in values)))
