"""A long message rendered on one line says it was cut (fleet targets' errors were cut at
300 characters mid-sentence, with nothing to show it)."""

from __future__ import annotations

from pgwarden.events import FleetTarget
from pgwarden.report.events import render


def test_a_cut_message_ends_with_an_ellipsis() -> None:
    long = "step 3 failed: " + "x " * 400
    (line,) = render(FleetTarget(rollout="r1", wave=1, target="eu-1", state="failed", message=long))
    text = line.plain
    assert text.endswith("…") and len(text) < 340
    (short,) = render(
        FleetTarget(rollout="r1", wave=1, target="eu-1", state="failed", message="lock timeout")
    )
    assert short.plain.endswith("lock timeout")
