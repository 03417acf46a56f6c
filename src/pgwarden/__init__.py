"""pgwarden: safe PostgreSQL schema changes.

The public API, for library users; the CLI calls the same functions.
`_API` is the one table of what is exported and where it lives; `__all__`
is derived from it, and a test checks the `TYPE_CHECKING` imports match it.
No exported name is also a subpackage's name (`pgwarden.lint` is the package;
the function is `lint_files`): importing the subpackage would replace it.
"""

from __future__ import annotations

# isort: off
import pgwarden._start  # noqa: F401  first: Ctrl-C while the `pgwarden` command starts

# isort: on
from typing import TYPE_CHECKING

from pgwarden.errors import PgwardenError as PgwardenError

if TYPE_CHECKING:  # what static tools see; `X as X` marks an explicit re-export
    from pgwarden.access.audit import AuditReport as AuditReport
    from pgwarden.access.audit import audit as _audit
    from pgwarden.analysis.context import Snapshot as Snapshot
    from pgwarden.analysis.effects import Effects as Effects
    from pgwarden.analysis.effects import LockMode as LockMode
    from pgwarden.analysis.effects import RelationLock as RelationLock
    from pgwarden.apply.api import ApplyResult as ApplyResult
    from pgwarden.apply.api import CancelResult as CancelResult
    from pgwarden.apply.api import GuardPolicy as GuardPolicy
    from pgwarden.apply.api import Limits as Limits
    from pgwarden.apply.api import RunOptions as RunOptions
    from pgwarden.apply.api import StatusReport as StatusReport
    from pgwarden.apply.api import apply_plan as apply_plan
    from pgwarden.apply.api import cancel_run as cancel_run
    from pgwarden.apply.api import resume_run as resume_run
    from pgwarden.apply.api import status as status
    from pgwarden.backup import api as _backup
    from pgwarden.commands import Context as Context
    from pgwarden.commands import explain as explain
    from pgwarden.commands import lint as _lint
    from pgwarden.commands import load_context as load_context
    from pgwarden.commands import load_plan as load_plan
    from pgwarden.commands import stats_dump as stats_dump
    from pgwarden.findings import Finding as Finding
    from pgwarden.findings import Severity as Severity
    from pgwarden.fleet.config import fleet_config as fleet_config
    from pgwarden.fleet.rollout import RolloutOptions as RolloutOptions
    from pgwarden.fleet.rollout import RolloutResult as RolloutResult
    from pgwarden.fleet.rollout import resume_rollout as resume_rollout
    from pgwarden.fleet.rollout import run_rollout as run_rollout
    from pgwarden.fleet.status import fleet_status as fleet_status
    from pgwarden.fleet.targets import load_targets as load_targets
    from pgwarden.lint.engine import LintResult as LintResult
    from pgwarden.notify import Notifier as Notifier
    from pgwarden.notify import attach as _notify_attach
    from pgwarden.pg.cluster import Cluster as Cluster
    from pgwarden.plan import Plan as Plan
    from pgwarden.plan import Step as Step
    from pgwarden.rehearse.api import RehearseOptions as RehearseOptions
    from pgwarden.rehearse.api import rehearse as _rehearse
    from pgwarden.upgrade.check_run import CheckOptions as _UpgradeCheckOptions
    from pgwarden.upgrade.check_run import CheckReport as _UpgradeCheckReport
    from pgwarden.upgrade.check_run import check_upgrade as check_upgrade
    from pgwarden.upgrade.rehearse import RehearseUpgradeOptions as RehearseUpgradeOptions
    from pgwarden.upgrade.rehearse import UpgradeRehearsal as UpgradeRehearsal
    from pgwarden.upgrade.rehearse import rehearse_upgrade as rehearse_upgrade

    lint_files = _lint
    audit_database = _audit
    rehearse_files = _rehearse
    UpgradeCheckOptions = _UpgradeCheckOptions
    UpgradeCheckReport = _UpgradeCheckReport
    create_backup = _backup.create
    list_backups = _backup.list_backups
    verify_backup = _backup.verify
    restore_backup = _backup.restore
    attach_notifications = _notify_attach

    __version__: str

# public name -> (module, attribute): imported on first use
_API: dict[str, tuple[str, str]] = {
    # lint and explain
    "Context": ("pgwarden.commands", "Context"),
    "explain": ("pgwarden.commands", "explain"),
    "lint_files": ("pgwarden.commands", "lint"),
    "load_context": ("pgwarden.commands", "load_context"),
    "load_plan": ("pgwarden.commands", "load_plan"),
    "stats_dump": ("pgwarden.commands", "stats_dump"),
    "LintResult": ("pgwarden.lint.engine", "LintResult"),
    "Finding": ("pgwarden.findings", "Finding"),
    "Severity": ("pgwarden.findings", "Severity"),
    # the model
    "Plan": ("pgwarden.plan", "Plan"),
    "Step": ("pgwarden.plan", "Step"),
    "Effects": ("pgwarden.analysis.effects", "Effects"),
    "LockMode": ("pgwarden.analysis.effects", "LockMode"),
    "RelationLock": ("pgwarden.analysis.effects", "RelationLock"),
    "Snapshot": ("pgwarden.analysis.context", "Snapshot"),
    # apply
    "apply_plan": ("pgwarden.apply.api", "apply_plan"),
    "resume_run": ("pgwarden.apply.api", "resume_run"),
    "cancel_run": ("pgwarden.apply.api", "cancel_run"),
    "status": ("pgwarden.apply.api", "status"),
    "Limits": ("pgwarden.apply.api", "Limits"),
    "GuardPolicy": ("pgwarden.apply.api", "GuardPolicy"),
    "RunOptions": ("pgwarden.apply.api", "RunOptions"),
    "ApplyResult": ("pgwarden.apply.api", "ApplyResult"),
    "CancelResult": ("pgwarden.apply.api", "CancelResult"),
    "StatusReport": ("pgwarden.apply.api", "StatusReport"),
    # rehearse
    "rehearse_files": ("pgwarden.rehearse.api", "rehearse"),  # takes a Plan, like apply_plan
    "RehearseOptions": ("pgwarden.rehearse.api", "RehearseOptions"),
    # backup
    "create_backup": ("pgwarden.backup.api", "create"),
    "list_backups": ("pgwarden.backup.api", "list_backups"),
    "verify_backup": ("pgwarden.backup.api", "verify"),
    "restore_backup": ("pgwarden.backup.api", "restore"),
    # fleet: one plan over many databases, in waves (docs/fleet.md)
    "fleet_config": ("pgwarden.fleet.config", "fleet_config"),
    "load_targets": ("pgwarden.fleet.targets", "load_targets"),
    "run_rollout": ("pgwarden.fleet.rollout", "run_rollout"),
    "resume_rollout": ("pgwarden.fleet.rollout", "resume_rollout"),
    "RolloutOptions": ("pgwarden.fleet.rollout", "RolloutOptions"),
    "RolloutResult": ("pgwarden.fleet.rollout", "RolloutResult"),
    "fleet_status": ("pgwarden.fleet.status", "fleet_status"),
    # audit: who can change the database, against the role policy (docs/audit.md)
    "audit_database": ("pgwarden.access.audit", "audit"),
    "AuditReport": ("pgwarden.access.audit", "AuditReport"),
    # major-version upgrades: check and rehearse (docs/upgrade.md)
    "check_upgrade": ("pgwarden.upgrade.check_run", "check_upgrade"),
    "UpgradeCheckOptions": ("pgwarden.upgrade.check_run", "CheckOptions"),
    "UpgradeCheckReport": ("pgwarden.upgrade.check_run", "CheckReport"),
    "rehearse_upgrade": ("pgwarden.upgrade.rehearse", "rehearse_upgrade"),
    "RehearseUpgradeOptions": ("pgwarden.upgrade.rehearse", "RehearseUpgradeOptions"),
    "UpgradeRehearsal": ("pgwarden.upgrade.rehearse", "UpgradeRehearsal"),
    # webhook notifications of a long command, an observer to fan out (docs/notify.md)
    "attach_notifications": ("pgwarden.notify", "attach"),
    "Notifier": ("pgwarden.notify", "Notifier"),
    # throwaway clusters
    "Cluster": ("pgwarden.pg.cluster", "Cluster"),
}

__all__ = sorted(["PgwardenError", "__version__", *_API])


def __getattr__(name: str) -> object:
    # Lazy, so that `import pgwarden.guard` never drags in the parser (nor
    # importlib.metadata, 30 ms, into every command).
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("pgwarden")
        except PackageNotFoundError:  # pragma: no cover - running from a source tree
            return "0.0.0"
    target = _API.get(name)
    if target is None:
        raise AttributeError(f"module 'pgwarden' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(target[0]), target[1])
    globals()[name] = value  # later lookups skip __getattr__
    return value
