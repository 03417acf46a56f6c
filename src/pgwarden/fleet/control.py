"""`pgwarden fleet cancel`: stop a rollout, and the applies it is running, as `pgwarden cancel`.

With the runner alive (it holds the journal's lock), a cancel file is written
beside the journal; the runner sees it within 0.2 s, starts no more targets
and cancels the running ones through apply's own cancel (the watchdog cancels
the step, which rolls back; a concurrent build's INVALID index is dropped).
If the runner has not stopped within `wait_s`, every target the journal says
is running is cancelled directly with `pgwarden cancel`'s function, on that
target. Without a live runner, the journal is marked cancelled and each target
it recorded as running is checked the same way (an orphaned run is ended).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from pgwarden.apply.api import cancel_run
from pgwarden.errors import PgwardenError, UsageError
from pgwarden.fleet.journal import RolloutJournal, runner_lock
from pgwarden.fleet.targets import Redactor, Target

__all__ = ["FleetCancel", "cancel_rollout"]


@dataclass(frozen=True, slots=True)
class FleetCancel:
    rollout: str
    state: str  # cancelled, not-running
    lines: tuple[str, ...]


def cancel_rollout(
    journal: RolloutJournal, targets: Sequence[Target], *, wait_s: float = 15.0
) -> FleetCancel:
    d = journal.data
    rid = str(d["rollout"])
    if d["state"] in ("done", "cancelled"):
        return FleetCancel(
            rid, "not-running", (f"rollout {rid} is {d['state']}: nothing to cancel",)
        )
    lines: list[str] = []
    alive = runner_lock.held(journal.path)
    if alive:
        journal.cancel_file.write_text("cancel requested\n")
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            now = RolloutJournal.load(journal.path)
            if now.data["state"] != "running" or not runner_lock.held(journal.path):
                d = now.data
                lines.append(
                    f"rollout {rid}: the runner stopped ({d['state']}"
                    + (f": {d.get('message')}" if d.get("message") else "")
                    + ")"
                )
                break
            time.sleep(0.2)
        else:
            lines.append(
                f"rollout {rid}: the runner has not stopped within {wait_s:.0f} s; "
                "cancelling its running targets directly"
            )
            d = RolloutJournal.load(journal.path).data
    running = [n for n, t in d["targets"].items() if t["state"] == "running"]
    by_name = {t.name: t for t in targets}
    redact = Redactor(targets)
    for name in running:
        target = by_name.get(name)
        if target is None:
            lines.append(f"{name}: no longer in the fleet's targets; cannot reach it")
            continue
        try:
            res = cancel_run(target.dsn)
            lines.append(f"{name}: {redact(res.message)}")
        except PgwardenError as exc:
            lines.append(f"{name}: {redact(exc.message)}")
    if not alive:
        journal.update(
            lambda x: x.update(state="cancelled", reason="cancelled", message="fleet cancel")
        )
        lines.append(f"rollout {rid} marked cancelled (no runner was alive)")
    journal.clear_cancel()
    return FleetCancel(rid, "cancelled", tuple(lines))


def load_journal_or_fail(path: object) -> RolloutJournal:
    from pathlib import Path

    p = Path(str(path))
    if not p.exists():
        raise UsageError(
            f"no rollout journal at {p}", hint="run `pgwarden fleet apply` first (same --label)"
        )
    return RolloutJournal.load(p)
