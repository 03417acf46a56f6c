"""The events apply emits: defined in `pgwarden.events`, re-exported here."""

from __future__ import annotations

from pgwarden.events import (
    BackfillBatch,
    Blocker,
    Cancelled,
    Cleanup,
    Event,
    HealthPause,
    LockWait,
    Observer,
    Reconnected,
    ReconnectFailed,
    Reconnecting,
    Retry,
    RunFinished,
    RunStarted,
    StepDone,
    StepFailed,
    StepSkipped,
    StepStarted,
    WatchdogCancel,
    fan_out,
)

__all__ = [
    "BackfillBatch",
    "Blocker",
    "Cancelled",
    "Cleanup",
    "Event",
    "HealthPause",
    "LockWait",
    "Observer",
    "ReconnectFailed",
    "Reconnected",
    "Reconnecting",
    "Retry",
    "RunFinished",
    "RunStarted",
    "StepDone",
    "StepFailed",
    "StepSkipped",
    "StepStarted",
    "WatchdogCancel",
    "fan_out",
]
