"""Webhook notifications for long commands: started, progress, stuck, failed, cancelled, done.

`attach(settings, command=..., env=..., database_url=...)` gives the command a
`Notifier`, one more observer of its typed events (docs/notify.md).
"""

from pgwarden.notify.config import KINDS, NotifyConfig, Webhook, load_notify_config
from pgwarden.notify.notifier import Notifier, attach, rehearsed_durations

__all__ = [
    "KINDS",
    "Notifier",
    "NotifyConfig",
    "Webhook",
    "attach",
    "load_notify_config",
    "rehearsed_durations",
]
