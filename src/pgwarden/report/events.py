"""Terminal lines for events: one renderer per event type.

Every value from the plan, the server or the user is shown literally
(`styled`). An event type without a renderer prints nothing; `render` returns
the lines, the caller prints them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from pgwarden.events import (
    BackfillBatch,
    BackupProgress,
    Blocker,
    BreakGlass,
    Cancelled,
    Cleanup,
    Event,
    FillProgress,
    FleetGate,
    FleetHalted,
    FleetTarget,
    FleetWave,
    HealthPause,
    LockWait,
    NoRolePolicy,
    Phase,
    Reconnected,
    ReconnectFailed,
    Reconnecting,
    RehearsalStep,
    Retry,
    RunFinished,
    RunStarted,
    StepDone,
    StepFailed,
    StepSkipped,
    StepStarted,
    UpgradeCopy,
    UpgradeHook,
    UpgradeLag,
    UpgradePhase,
    UpgradeSwitchover,
    UpgradeVerified,
    WatchdogCancel,
)
from pgwarden.report.markup import styled
from pgwarden.settings import config_table
from pgwarden.sources.labels import statement_label

if TYPE_CHECKING:
    from rich.text import Text

__all__ = ["render"]

E = TypeVar("E", bound=Event)
_RENDERERS: dict[type[Event], Callable[[Any], list[Text]]] = {}


def _renders(kind: type[E]) -> Callable[[Callable[[E], list[Text]]], Callable[[E], list[Text]]]:
    def register(fn: Callable[[E], list[Text]]) -> Callable[[E], list[Text]]:
        _RENDERERS[kind] = fn
        return fn

    return register


def render(event: Event) -> list[Text]:
    """The event's lines for a terminal (none for events shown otherwise, or not at all)."""
    fn = _RENDERERS.get(type(event))
    return fn(event) if fn is not None else []


def _label(event: Event) -> str:
    return f"step {event.step}" if event.step is not None else ""


def _step_label(step: int | None, message: object) -> tuple[str, str]:
    """The event's step label and its message without the label it may already start with."""
    text = str(message)
    if step is None:
        return "", text
    label = f"step {step}"
    if text == label or text.startswith((label + " ", label + ":")):
        text = text[len(label) :].lstrip(" :")
    return label, text


def _one_line(text: str, width: int) -> str:
    """`text` on one line, cut to `width` characters with an ellipsis when longer."""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1].rstrip() + "…"


@_renders(RunStarted)
def _run_started(e: RunStarted) -> list[Text]:
    return [
        styled(
            "[bold]run {}[/] on {} ({}, system {}) as {}@{}",
            e.run_id,
            e.database,
            e.environment,
            e.system_identifier,
            e.os_user,
            e.host,
        )
    ]


@_renders(StepStarted)
def _step_started(e: StepStarted) -> list[Text]:
    return [
        styled(
            "[cyan]▶ {}[/] attempt {} (lock_timeout {} ms): {}",
            _label(e),
            e.attempt,
            e.lock_timeout_ms,
            statement_label(e.sql[0] if e.sql else "", 90),
        )
    ]


def _blocker(verb: str, b: Blocker) -> Text:
    age = "" if b.xact_age_s is None else f", transaction {b.xact_age_s:.1f} s"
    return styled(
        "  [yellow]{}:[/] pid {} {} \\[{}{}] {} on {}: {}",
        verb,
        b.pid,
        b.application or "-",
        b.state,
        age,
        b.mode or "",
        b.relation or "?",
        statement_label(b.query[:500], 80),
    )


@_renders(LockWait)
def _lock_wait(e: LockWait) -> list[Text]:
    if e.phase == "waiting":  # the running statement waits for these sessions' transactions
        return [
            styled(
                "  [yellow]waiting for:[/] pid {} {} \\[{}{}]: {}",
                b.pid,
                b.application or "-",
                b.state,
                "" if b.xact_age_s is None else f", transaction {b.xact_age_s:.1f} s",
                statement_label(b.query[:500], 80),
            )
            for b in e.blockers
        ]
    verb = "terminated" if e.phase == "terminated" else "in the way"
    return [_blocker(verb, b) for b in e.blockers]


@_renders(WatchdogCancel)
def _watchdog_cancel(e: WatchdogCancel) -> list[Text]:
    return [
        styled(
            "  [yellow]watchdog cancelled {}[/] ({}): {} sessions were queued behind it",
            _label(e),
            e.reason,
            len(e.blocked),
        )
    ]


@_renders(Retry)
def _retry(e: Retry) -> list[Text]:
    return [
        styled(
            "  [yellow]retry[/] {} in {} ms ({}, attempt {})",
            _label(e),
            e.delay_ms,
            e.reason,
            e.attempt,
        )
    ]


@_renders(Cleanup)
def _cleanup(e: Cleanup) -> list[Text]:
    if not e.dropped_invalid:
        return []
    return [styled("  dropped INVALID index {}", ", ".join(e.dropped_invalid))]


@_renders(HealthPause)
def _health_pause(e: HealthPause) -> list[Text]:
    if e.step is None:
        return [styled("  [yellow]paused[/]: {}", "; ".join(e.reasons))]
    return [styled("  [yellow]paused[/] before {}: {}", _label(e), "; ".join(e.reasons))]


@_renders(StepDone)
def _step_done(e: StepDone) -> list[Text]:
    extra = f" ({e.reconciled})" if e.reconciled else ""
    dur = f" in {e.duration_s:.2f} s" if e.duration_s is not None else ""
    return [styled("[green]✓ {}[/]{}{}", _label(e), dur, extra)]


@_renders(StepSkipped)
def _step_skipped(e: StepSkipped) -> list[Text]:
    if e.reason != "applied":
        return []
    return [styled("[dim]· {} already applied[/]", _label(e))]


@_renders(StepFailed)
def _step_failed(e: StepFailed) -> list[Text]:
    label, text = _step_label(e.step, e.error)
    return [styled("[red]✗ {}[/] {}", label, text)]


@_renders(Cancelled)
def _cancelled(e: Cancelled) -> list[Text]:
    return [styled("[red]✗ {} cancelled[/]: {}", _label(e), e.why)]


@_renders(Reconnecting)
def _reconnecting(e: Reconnecting) -> list[Text]:
    return [
        styled(
            "[yellow]connection lost[/]: waiting up to {} s for the server, then continuing "
            "the run from its journal",
            f"{e.timeout_s:.0f}",
        )
    ]


@_renders(Reconnected)
def _reconnected(e: Reconnected) -> list[Text]:
    return [styled("[green]server is back[/]: resuming")]


@_renders(ReconnectFailed)
def _reconnect_failed(e: ReconnectFailed) -> list[Text]:
    return [styled("[red]the server did not come back[/]")]


@_renders(Phase)
def _phase(e: Phase) -> list[Text]:
    return [styled("[dim]· {}[/]", e.message)]


@_renders(RehearsalStep)
def _rehearsal_step(e: RehearsalStep) -> list[Text]:
    mark = "[green]✓" if e.status == "ok" else "[red]✗"
    return [
        styled(
            mark + " {}[/] {} in {} s: {}",
            _label(e),
            e.status,
            f"{e.duration_s:.2f}",
            statement_label(e.sql, 90),
        )
    ]


@_renders(FleetWave)
def _fleet_wave(e: FleetWave) -> list[Text]:
    if e.phase == "started":
        return [
            styled(
                "[bold]wave {} {}[/]: {} target{}, {} at a time",
                e.wave,
                e.name,
                len(e.targets),
                "" if len(e.targets) == 1 else "s",
                max(1, min(e.parallel, len(e.targets))),
            )
        ]
    if e.phase == "baking" and e.bake_s > 0:
        return [styled("[dim]· wave {} applied; baking {} s[/]", e.wave, f"{e.bake_s:g}")]
    if e.phase == "done":
        return [styled("[green]✓ wave {} {} done[/]", e.wave, e.name)]
    return []


@_renders(FleetTarget)
def _fleet_target(e: FleetTarget) -> list[Text]:
    if e.state == "running":
        return []
    if e.state == "waiting":
        return [styled("  [yellow]… {}[/] {}", e.target, _one_line(e.message or "", 200))]
    if e.state == "pending":  # never started (the rollout stopped while it waited its turn)
        return [styled("  [dim]· {} pending[/]: {}", e.target, _one_line(e.message or "", 300))]
    if e.state == "done":
        dur = f" in {e.duration_s:.1f} s" if e.duration_s is not None else ""
        return [styled("  [green]✓ {}[/]{}", e.target, dur)]
    return [styled("  [red]✗ {} {}[/]: {}", e.target, e.state, _one_line(e.message or "", 300))]


@_renders(FleetGate)
def _fleet_gate(e: FleetGate) -> list[Text]:
    if e.ok and e.not_judged:  # too quiet to judge is not a green light: say it
        n = len(e.not_judged)
        lines = [
            styled(
                "  [yellow]gate {} ok, not judged on {} target{}[/] ({}, {})",
                e.gate,
                n,
                "" if n == 1 else "s",
                e.signal,
                e.scope,
            )
        ]
        lines.extend(styled("    {}", _one_line(r, 300)) for r in e.not_judged[:3])
        if n > 3:
            lines.append(styled("    … {} more", n - 3))
        return lines
    if e.ok:
        return [styled("  [green]gate {} ok[/] ({}, {})", e.gate, e.signal, e.scope)]
    lines = [styled("  [red]gate {} failed[/] ({}, {})", e.gate, e.signal, e.scope)]
    lines.extend(styled("    {}", _one_line(r, 300)) for r in e.reasons[:10])
    if len(e.reasons) > 10:
        lines.append(styled("    … {} more", len(e.reasons) - 10))
    return lines


@_renders(FleetHalted)
def _fleet_halted(e: FleetHalted) -> list[Text]:
    return [
        styled("[bold red]rollout halted[/] after wave {} ({}): {}", e.wave, e.reason, e.message)
    ]


@_renders(UpgradePhase)
def _upgrade_phase(e: UpgradePhase) -> list[Text]:
    if e.status == "started":
        return [styled("[dim]· {}[/]", e.message)]
    mark = {"done": "[green]✓", "skipped": "[dim]-", "failed": "[red]✗"}.get(e.status, "·")
    took = f" ({e.duration_s:.1f} s)" if e.duration_s is not None else ""
    return [styled(mark + " {}[/] {}{}", e.phase, e.message, took)]


@_renders(UpgradeVerified)
def _upgrade_verified(e: UpgradeVerified) -> list[Text]:
    if e.same:
        return [styled("[green]✓[/] {} {} rows, same checksum", e.table, f"{e.rows_old:,}")]
    return [
        styled(
            "[red]✗ {} differs[/] at {}: OLD {} rows, NEW {} rows",
            e.table,
            e.lsn,
            f"{e.rows_old:,}",
            f"{e.rows_new:,}",
        )
    ]


@_renders(UpgradeHook)
def _upgrade_hook(e: UpgradeHook) -> list[Text]:
    status = "killed at the deadline" if e.exit_code is None else f"exit {e.exit_code}"
    lines = [
        styled(
            "[dim]· switch hook (to {}): {} in {} s[/]", e.switch_to, status, f"{e.duration_s:.2f}"
        )
    ]
    lines += [styled("[dim]  | {}[/]", line) for line in e.output.splitlines()[-10:]]
    return lines


@_renders(UpgradeSwitchover)
def _upgrade_switchover(e: UpgradeSwitchover) -> list[Text]:
    if e.outcome == "switched":
        head = "[green]✓ switchover done[/]: NEW serves the writes"
    elif e.outcome == "rolled_back":
        what = "rolled back" if e.direction == "to_old" else "switchover to NEW undone"
        head = f"[yellow]↺ {what}[/]: OLD serves the writes again"
    else:
        head = f"[red]✗ switchover {e.direction.replace('_', ' ')} failed[/]"
    return [styled(head + " (writes paused {} s); {}", f"{e.writes_paused_s:.2f}", e.message)]


@_renders(BreakGlass)
def _break_glass(e: BreakGlass) -> list[Text]:
    return [
        styled(
            "[bold white on red] BREAK GLASS [/] [bold red]{} runs as {} (session user {}) on "
            "protected environment {}, not as the migration role {}[/]",
            f"{e.os_user}@{e.host}",
            e.current_user,
            e.session_user,
            e.environment,
            e.expected or "(none declared)",
        ),
        styled("[bold red]  reason: {}[/] [dim](recorded in pgwarden.break_glass)[/]", e.reason),
    ]


@_renders(NoRolePolicy)
def _no_role_policy(e: NoRolePolicy) -> list[Text]:
    return [
        styled(
            "[yellow]warning:[/] no role policy declared for {} (running as {}); declare "
            "{} so only the migration role can change it",
            e.environment,
            e.current_user,
            config_table(f"environments.{e.environment}.roles", e.config),
        )
    ]


# Shown otherwise: progress events drive progress bars (as lines they would flood the
# terminal); the end of a run is the command's own summary line.
for _quiet in (
    FillProgress,
    BackupProgress,
    BackfillBatch,
    RunFinished,
    UpgradeCopy,
    UpgradeLag,
):
    _RENDERERS[_quiet] = lambda _e: []
