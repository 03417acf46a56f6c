"""Typed entry points of `pgwarden apply`: apply, resume, status, cancel.

They return results and emit events; they never print. `cli/apply.py`
renders the events and maps results and errors to exit codes. Each command
lives in its own module (`run`, `resume`, `status`, `cancel`, `policy`); this module is
the one place library users import them from.
"""

from __future__ import annotations

from pgwarden.apply.cancel import CancelResult, cancel_run
from pgwarden.apply.policy import (
    ApplyResult,
    GuardPolicy,
    Limits,
    RunOptions,
    StepPreview,
    derive_lock_policy,
    preview,
)
from pgwarden.apply.resume import resume_run
from pgwarden.apply.run import apply_plan
from pgwarden.apply.status import RunStatus, StatusReport, StepStatus, status

__all__ = [
    "ApplyResult",
    "CancelResult",
    "GuardPolicy",
    "Limits",
    "RunOptions",
    "RunStatus",
    "StatusReport",
    "StepPreview",
    "StepStatus",
    "apply_plan",
    "cancel_run",
    "derive_lock_policy",
    "preview",
    "resume_run",
    "status",
]
