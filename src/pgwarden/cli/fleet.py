"""`pgwarden fleet apply|status|resume|cancel`: a plan rolled out over many databases."""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any

import click

from pgwarden.cli import EXIT_APPLY, EXIT_FINDINGS, err, handle_errors, out, print_json, styled
from pgwarden.cli.interaction import ctrl_c_cancels, event_printer, require_stdin, stdin
from pgwarden.cli.options import (
    accept_data_loss_option,
    alembic_option,
    config_option,
    log_format_option,
    stacked,
)
from pgwarden.events import fan_out
from pgwarden.notify import attach


def _say(*objects: Any) -> None:
    """One line on stdout, never wrapped (a CI log keeps each target on one line)."""
    out.print(*objects, soft_wrap=True)


_common = stacked(
    click.option("--fleet", "fleet", required=True, help="The fleet (fleet.NAME in the config)."),
    click.option(
        "--label",
        "labels",
        multiple=True,
        metavar="KEY=VALUE",
        help="Only the targets carrying this label (repeatable): one CI job per label.",
    ),
    config_option,
)


_run_options = stacked(
    click.option("--env", "env", required=True, help="Target environment of every database."),
    click.option("--yes", is_flag=True, help="Skip the confirmation of a protected env (CI)."),
    accept_data_loss_option,
    click.option(
        "--restamp",
        is_flag=True,
        help="Adopt targets that hold data but were never stamped by pgwarden, as --env "
        "(as `pgwarden apply --restamp` does for one database).",
    ),
    click.option(
        "--on-error",
        type=click.Choice(["halt", "continue"]),
        default=None,
        help="A failed target or gate halts the rollout (default from the config: halt), "
        "or is recorded and skipped.",
    ),
    click.option(
        "--lock-timeout-ms",
        type=click.IntRange(1),
        default=None,
        help="lock_timeout of each attempt on every target (default as `pgwarden apply`).",
    ),
    click.option(
        "--statement-timeout-ms",
        type=click.IntRange(1),
        default=None,
        help="statement_timeout of each step (default as `pgwarden apply`).",
    ),
    click.option(
        "--lock-budget-s",
        type=click.FloatRange(0.1),
        default=None,
        help="Give up a target's step after retrying its lock this long (default 600).",
    ),
    click.option("--no-health-gate", is_flag=True, help="apply's own per-step health pause off."),
    log_format_option,
)


_alembic_options = stacked(
    alembic_option(
        "Take the change from Alembic revisions instead of files: each target gets the "
        "revisions after its own alembic_version, up to head."
    ),
    # Hidden: apply's --range is refused with a message saying why (each target goes to head
    # from its own revision); --unapplied is what a fleet always does, accepted for scripts.
    click.option(
        "--range", "revision_range", default=None, hidden=True, help="Refused (see --alembic)."
    ),
    click.option("--unapplied", is_flag=True, hidden=True, help="What --alembic does anyway."),
)


def _selector(labels: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    from pgwarden.errors import UsageError

    out_: list[tuple[str, str]] = []
    for item in labels:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--label {item!r} is not KEY=VALUE", hint="e.g. --label region=eu")
        out_.append((key, value))
    return tuple(sorted(out_))


def _load(kw: dict[str, Any], *, unset_ok: bool = False) -> tuple[Any, Any, list[Any]]:
    """The settings, the fleet and its targets; a run's --env is checked first, before
    a registry or command is asked for the targets and before any target is read."""
    from pgwarden.fleet.config import fleet_config
    from pgwarden.fleet.targets import load_targets
    from pgwarden.settings import check_env_name, load_settings

    settings = load_settings(kw["config"])
    cfg = fleet_config(settings, kw["fleet"])
    if "env" in kw:  # apply and resume: a name the configuration does not declare (a typo,
        # the wrong config) is refused here, as `pgwarden apply` refuses it; a target's
        # stamp cannot excuse it, as no stamp has been read yet
        check_env_name(
            kw["env"],
            environments=settings.environments,
            source=settings.source,
            unstamped="a fleet's --env must be one of them (it is checked before any target "
            "is read)",
        )
    return settings, cfg, load_targets(cfg, unset_ok=unset_ok)


def _options(kw: dict[str, Any], settings: Any, cfg: Any, *, rewrite: bool = False) -> Any:
    from pgwarden.apply.api import Limits
    from pgwarden.apply.health import HealthPolicy
    from pgwarden.errors import Refused
    from pgwarden.fleet.rollout import RolloutOptions
    from pgwarden.settings import check_env_name, is_protected

    env = check_env_name(kw["env"])
    confirmed = bool(kw["yes"])
    if is_protected(env, settings.environments) and not confirmed:
        if not stdin().isatty():
            raise Refused(
                f"{env!r} is protected and there is no terminal to confirm the rollout on",
                hint="pass --yes (in CI) after checking the fleet",
            )
        typed = click.prompt(f"Type the fleet name ({cfg.name}) to roll out to {env}", err=True)
        if str(typed).strip() != cfg.name:
            raise Refused("confirmation did not match the fleet name", hint="type it exactly")
        confirmed = True
    return RolloutOptions(
        env=env,
        yes=confirmed,
        accept_data_loss=kw["accept_data_loss"],
        restamp=bool(kw["restamp"]),
        limits=Limits(
            lock_timeout_ms=kw["lock_timeout_ms"],
            statement_timeout_ms=kw["statement_timeout_ms"],
            lock_budget_s=kw["lock_budget_s"],
            health=None if kw["no_health_gate"] else HealthPolicy(),
        ),
        selector=_selector(kw["labels"]),
        on_error=kw["on_error"],
        rewrite=rewrite,
    )


def _refuse_early(cfg: Any, plan: Any, rewrite: bool) -> None:
    """What the rollout would refuse before touching a target (a gate's URL variable not
    set, a plan apply refuses for its shape), refused before the webhooks are told that a
    rollout started."""
    from pgwarden.fleet.gates import check_gate_urls
    from pgwarden.fleet.rollout import check_plan

    check_gate_urls(cfg.gates)
    if plan is not None:
        check_plan(plan, rewrite=rewrite)


def _drive(kw: dict[str, Any], settings: Any, command: str, run: Any) -> None:
    """Run a rollout (`run(observer, cancel)`) with Ctrl-C cancelling it, events printed
    and sent to the notifications, then report it."""
    from pgwarden.errors import ApplyFailed

    cancel = threading.Event()
    try:
        with (
            ctrl_c_cancels(cancel),
            attach(settings, command=command, env=kw["env"], cancel=cancel) as hook,
        ):
            result = run(fan_out([event_printer(kw["log_format"]), hook]), cancel)
            if result.state != "done":  # no-op when a fleet_halted event said it already
                hook.finish(
                    "cancelled" if result.reason == "cancelled" else "failed", result.message
                )
    except KeyboardInterrupt:  # Ctrl-C twice: the runner stopped waiting for its targets
        raise ApplyFailed(
            "rollout interrupted (Ctrl-C twice): targets being applied were cancelled as far "
            "as they got, and the rollout journal says halted",
            hint="`pgwarden fleet status` reads every target; `pgwarden fleet resume` "
            "continues the rollout",
        ) from None
    # the rollout is over and the process ends after its report: a late Ctrl-C (a second
    # press landing as the first one's cancel finished) is ignored from here to the exit,
    # not ending the process by SIGINT (-2) after the report or during its teardown
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _report(result)


def _report(result: Any) -> None:
    from pgwarden.fleet.rollout import RolloutResult
    from pgwarden.fleet.words import count

    assert isinstance(result, RolloutResult)
    done = result.names("done")
    bad = [
        t for t in result.targets if t.state in ("failed", "refused", "cancelled", "unreachable")
    ]
    untouched = result.names("pending")
    others = "".join(
        f", {len(result.names(state))} {state}"
        for state in ("unreachable", "refused", "cancelled")
        if result.names(state)
    )
    _say(
        styled(
            "rollout {} [bold]{}[/]: {} the change, {} failed{}, {} never touched",
            result.rollout_id,
            result.state,
            count(len(done), "target") + (" has" if len(done) == 1 else " have"),
            len(result.names("failed")),
            others,
            len(untouched),
        )
    )
    for t in bad:
        _say(styled("  [red]{}[/] (wave {}) {}: {}", t.name, t.wave, t.state, t.message or ""))
    if untouched:
        shown = ", ".join(untouched[:20]) + (" …" if len(untouched) > 20 else "")
        _say(f"  never touched: {shown}")
    failed_gates = result.failed_gates()
    for w, g in failed_gates:
        _say(styled("  [red]gate {} failed after wave {}[/]: {}", g.gate, w, "; ".join(g.reasons)))
    if result.state == "done":
        if failed_gates:  # on_error = continue went past them: CI must still notice
            err.print(
                styled(
                    "[bold red]pgwarden: error:[/] {} failed (on_error = continue)",
                    count(len(failed_gates), "gate check"),
                )
            )
            sys.exit(EXIT_FINDINGS)
        return
    if result.reason == "cancelled":
        hint = (
            "`pgwarden fleet resume` continues where it stopped; "
            "`pgwarden fleet status` reads every target"
        )
    else:  # resume runs the journal's plan: a corrected plan is a new rollout
        hint = (
            "fix the cause, then `pgwarden fleet resume` continues with the "
            "same plan; to roll out a corrected plan instead, `pgwarden fleet cancel`, then "
            "`pgwarden fleet apply` it; `pgwarden fleet status` reads every target"
        )
    err.print(
        styled("[bold red]pgwarden: error:[/] rollout {}: {}", result.state, result.message or "")
    )
    err.print(styled("  [dim]hint:[/] {}", hint))
    # 3: a target failed or was cancelled during its change; 1: refused by a gate or a guard,
    # or a target unreachable (nothing of the change ran there)
    code = EXIT_FINDINGS
    if result.reason == "cancelled" or any(t.state in ("failed", "cancelled") for t in bad):
        code = EXIT_APPLY
    sys.exit(code)


@click.group("fleet")
def fleet() -> None:
    """Roll a plan out over many databases in waves, with health gates between them."""


def _alembic_change(alembic_ini: str, cfg: Any, chosen: list[Any]) -> Any:
    """Each chosen target's alembic_version, and the revisions each lacks, rendered."""
    from pgwarden.fleet.alembic import alembic_change, read_versions
    from pgwarden.fleet.targets import Redactor

    versions = read_versions(chosen, workers=min(16, cfg.max_connections), redact=Redactor(chosen))
    return alembic_change(alembic_ini, versions)


def _dry_run(cfg: Any, chosen: list[Any], plan: Any, rewrite: bool) -> None:
    from pgwarden.fleet.alembic import AlembicChange
    from pgwarden.fleet.rollout import check_plan
    from pgwarden.fleet.waves import plan_waves
    from pgwarden.fleet.words import count

    check_plan(plan, rewrite=rewrite)  # what the real run would refuse, the dry run refuses
    for w in plan_waves(cfg, chosen):
        if not w.targets:  # the rollout skips it too (nothing to apply, nothing to check)
            continue
        _say(
            styled(
                "[bold]wave {} {}[/]: {}, {} at a time, bake {} s",
                w.index,
                w.name,
                count(len(w.targets), "target"),
                min(w.parallel, len(w.targets)),
                f"{w.bake_s:g}",
            )
        )
        if not isinstance(plan, AlembicChange):
            _say("  " + ", ".join(t.name for t in w.targets))
            continue
        for t in w.targets:
            key = plan.key_of(t.name)
            online = {o.revision for o in plan.online.get(key, ())}
            revs = [f"{r} (online)" if r in online else r for r in plan.revisions[key]]
            _say(
                f"  {t.name}: alembic_version {key} -> {', '.join(plan.heads)}: "
                + (
                    f"{count(len(revs), 'revision')}: {', '.join(revs)}; "
                    f"{count(len(plan.plans[key].steps), 'step')}"
                    if revs
                    else "nothing to run"
                )
            )
    if isinstance(plan, AlembicChange):
        what = "each target's revisions would be applied"
    else:
        what = f"{count(len(plan.steps), 'step')} would be applied"
    if rewrite:
        what += " (rewritten per target from its own traffic snapshot)"
    _say(f"dry run: {what}; nothing was executed")


@fleet.command("apply")
@click.argument("paths", nargs=-1, required=False)
@_common
@_run_options
@click.option("--dry-run", is_flag=True, help="Show the waves and their targets; apply nothing.")
@click.option(
    "--no-file-transaction", is_flag=True, help="Files do not run inside one transaction each."
)
@click.option(
    "--rewrite",
    is_flag=True,
    help="Apply the lint fixes (lock-friendly statements), per target as `pgwarden apply "
    "--rewrite`.",
)
@_alembic_options
@handle_errors
def fleet_apply(
    paths: tuple[str, ...],
    dry_run: bool,
    no_file_transaction: bool,
    rewrite: bool,
    alembic_ini: str | None,
    revision_range: str | None,
    unapplied: bool,
    **kw: Any,
) -> None:
    """Apply PATHS to every target of --fleet, wave by wave (canary first).

    PATHS are .sql files or folders; or --alembic [alembic.ini] applies to each target the
    Alembic revisions after its own alembic_version (as `alembic upgrade head`).
    """
    from pgwarden import commands
    from pgwarden.errors import UsageError
    from pgwarden.fleet.rollout import _selected, run_rollout

    if revision_range is not None:
        raise UsageError(
            "--range does not apply to a fleet: each target gets the revisions after its own "
            "alembic_version, up to head",
            hint="drop --range (`alembic upgrade head` on every target)",
        )
    if alembic_ini is not None and paths:
        raise UsageError("give either SQL files or --alembic, not both")
    if alembic_ini is None and unapplied:
        raise UsageError("--unapplied needs --alembic")
    if alembic_ini is None and not paths:
        raise UsageError(
            "no SQL files given", hint="pass .sql files or folders, or --alembic [alembic.ini]"
        )
    settings, cfg, targets = _load(kw)
    chosen = _selected(targets, _selector(kw["labels"]))
    if alembic_ini is not None:
        plan = _alembic_change(alembic_ini, cfg, chosen)
    else:
        require_stdin(paths, "fleet apply")
        wrap = settings.file_transaction and not no_file_transaction
        plan = commands.load_plan(paths, file_transaction=wrap)
    if dry_run:
        _dry_run(cfg, chosen, plan, rewrite)
        return
    options = _options(kw, settings, cfg, rewrite=rewrite)
    _refuse_early(cfg, plan, rewrite)
    _drive(
        kw,
        settings,
        "fleet apply",
        lambda observer, cancel: run_rollout(
            plan,
            cfg,
            targets,
            options,
            settings=settings,
            observer=observer,
            cancel=cancel,
            sources=paths or (f"alembic {alembic_ini}",),
        ),
    )


@fleet.command("resume")
@_common
@_run_options
@handle_errors
def fleet_resume(**kw: Any) -> None:
    """Continue a halted or interrupted rollout from where it stopped."""
    from pgwarden.fleet.rollout import resume_rollout

    settings, cfg, targets = _load(kw)
    options = _options(kw, settings, cfg)
    _refuse_early(cfg, None, False)
    _drive(
        kw,
        settings,
        "fleet resume",
        lambda observer, cancel: resume_rollout(
            cfg, targets, options, settings=settings, observer=observer, cancel=cancel
        ),
    )


@fleet.command("status")
@_common
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", help="Output format."
)
@click.option(
    "--check",
    is_flag=True,
    help="Exit 1 when a target drifts, cannot be read, or lacks the rollout's change.",
)
@handle_errors
def fleet_status_cmd(fmt: str, check: bool, **kw: Any) -> None:
    """Per target: the plans its own history records, runs in progress, drift."""
    from pgwarden.fleet.journal import RolloutJournal, journal_path, runner_lock
    from pgwarden.fleet.status import fleet_status
    from pgwarden.fleet.words import count

    settings, cfg, targets = _load(kw, unset_ok=True)  # it reads: report a missing URL
    path = journal_path(cfg.journal_dir, cfg.name, dict(_selector(kw["labels"])))
    journal = RolloutJournal.load(path).data if path.exists() else None
    if journal is not None and journal.get("state") == "running" and not runner_lock.held(path):
        journal = {**journal, "state": "interrupted"}  # its runner is gone (killed, crashed)
    sel = dict(_selector(kw["labels"]))
    chosen = [t for t in targets if all(t.label(k) == v for k, v in sel.items())]
    report = fleet_status(
        cfg.name,
        chosen,
        journal=journal,
        max_connections=min(16, cfg.max_connections),
        client_gone_s=settings.watchdog_client_gone_s,
    )
    bad = [
        t.name
        for t in report.targets
        if t.drift or t.error or (report.rollout is not None and t.change != "applied")
    ]
    if fmt == "json":
        print_json(report.to_json())
        if check and bad:
            sys.exit(EXIT_FINDINGS)
        return
    r = report.rollout
    if r is not None:
        _say(
            styled(
                "rollout {} [bold]{}[/] on {}{}",
                r["rollout"],
                r["state"],
                r["environment"],
                f" (halted at wave {r['halted_wave']}, {r['reason']}: {r['message']})"
                if r["state"] in ("halted", "cancelled")
                else "",
            )
        )
        for w in r["waves"]:
            if not w["targets"]:  # the rollout skipped it (as the dry run leaves it out)
                continue
            state = w["state"]
            if r["state"] in ("halted", "cancelled") and w["index"] == r.get("halted_wave"):
                state = f"{r['state']} while {state}"  # the journal keeps 'applying' for resume
            _say(f"  wave {w['index']} {w['name']}: {state} ({count(w['targets'], 'target')})")
        if r["state"] == "interrupted":
            _say("  its runner is gone (killed or crashed): `pgwarden fleet resume` continues it")
    else:
        _say(f"fleet {cfg.name}: no rollout journal here; reading the targets only")
    for t in report.targets:
        if t.error:
            _say(styled("[red]{}[/]: cannot read: {}", t.name, t.error))
            continue
        wave = f"wave {t.wave} " if t.wave is not None else ""
        change = t.change
        if t.change == "partial" and r is not None and t.alembic_version is None:
            change += f" ({t.statements_applied} of {r['statements']} statements)"
        state = t.rollout_state or "-"
        line = f"{t.name}: {wave}{state}; change {change}; {count(len(t.plans), 'plan')} applied"
        if t.alembic_version is not None:
            now = ", ".join(t.alembic_version) or "base"  # no revision yet, as Alembic says
            was = None if t.alembic_before is None else ", ".join(t.alembic_before) or "base"
            line += f"; alembic_version {was} -> {now}" if was is not None else f"; at {now}"
        if t.last_failure:
            line += f"; last failure: {t.last_failure}"
        _say(line)
        for run in t.in_progress:
            _say(f"  run {run.run_id} {run.state} since {run.started_at:%Y-%m-%d %H:%M:%S}")
        if t.catalog_note:
            _say(f"  {t.catalog_note}")
        for d in t.drift:
            _say(styled("  [yellow]drift[/]: {} ({})", d.object, d.how))
    drifting = [t.name for t in report.targets if t.drift]
    if drifting:
        _say(
            styled(
                "[yellow]{} from {} peers[/]: {}",
                count(len(drifting), "target") + (" drifts" if len(drifting) == 1 else " drift"),
                "its" if len(drifting) == 1 else "their",
                ", ".join(drifting[:20]),
            )
        )
    if check and bad:
        sys.exit(EXIT_FINDINGS)


@fleet.command("cancel")
@_common
@handle_errors
def fleet_cancel(**kw: Any) -> None:
    """Stop a running rollout; its running targets are cancelled as `pgwarden cancel` does."""
    from pgwarden.fleet.control import cancel_rollout, load_journal_or_fail
    from pgwarden.fleet.journal import journal_path

    _settings, cfg, targets = _load(kw)
    journal = load_journal_or_fail(
        journal_path(cfg.journal_dir, cfg.name, dict(_selector(kw["labels"])))
    )
    result = cancel_rollout(journal, targets)
    for line in result.lines:
        _say(line)
    if result.state == "not-running":
        sys.exit(EXIT_FINDINGS)


COMMANDS = (fleet,)
