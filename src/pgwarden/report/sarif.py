"""The SARIF 2.1.0 log around lint's and audit's results (GitHub code scanning)."""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

__all__ = ["SRCROOT", "sarif_log"]

SRCROOT = "%SRCROOT%"


def sarif_log(
    tool: str,
    rules: list[dict[str, Any]],
    results: list[dict[str, Any]],
    *,
    base_uri: str,
    **run: Any,
) -> dict[str, Any]:
    """A log with one run of pgwarden's `tool` (its `rules`, its `results`), relative
    locations resolved against `base_uri` (%SRCROOT%); `run` adds properties to the run."""
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": tool,
                        "version": version("pgwarden"),
                        "informationUri": "https://github.com/pgwarden/pgwarden",
                        "rules": rules,
                    }
                },
                "originalUriBaseIds": {SRCROOT: {"uri": base_uri}},
                **run,
                "results": results,
            }
        ],
    }
