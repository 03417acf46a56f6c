"""The progress line of a fleet target: a target put back to `pending` (the rollout halted or
was cancelled while it waited its turn, so it never touched its database) is not marked as a
failure (✗), as failed, refused and cancelled targets are."""

from __future__ import annotations

import pytest

from pgwarden.events import FleetTarget
from pgwarden.notify.events import event_text
from pgwarden.report.events import render


def _line(state: str, message: str | None = None) -> str:
    event = FleetTarget(rollout="r1", wave=3, target="fa002", state=state, message=message)
    lines = render(event)
    assert len(lines) == 1
    return lines[0].plain


def test_pending_target_is_shown_as_pending_not_failed() -> None:
    why = "not started: the wave halted while it waited its turn"
    line = _line("pending", why)
    assert "✗" not in line, line
    assert line.strip() == f"· fa002 pending: {why}"
    event = FleetTarget(rollout="r1", wave=3, target="fa002", state="pending", message=why)
    assert event_text(event) == f"fa002 pending: {why}"


@pytest.mark.parametrize("state", ["failed", "refused", "cancelled"])
def test_targets_that_ended_badly_keep_the_cross(state: str) -> None:
    assert _line(state, "boom").strip() == f"✗ fa002 {state}: boom"


def test_done_target_is_ticked() -> None:
    assert _line("done").strip() == "✓ fa002"
