"""The declared role policy of an environment (`[environments.<env>.roles]`).

Parsed and validated with the rest of the configuration (`settings.RolePolicy`);
this module answers questions about it: which class a role is declared in,
and what that class may do.
"""

from __future__ import annotations

from pgwarden.settings import Environment, RolePolicy, Settings

__all__ = ["CLASSES", "RolePolicy", "class_of", "declared_roles", "policy_for"]

# What each declared class may do (capability kinds, see access/capabilities.py).
CLASSES = ("migration", "application", "readonly", "break_glass", "undeclared")


def policy_for(settings: Settings, env: str | None) -> RolePolicy | None:
    """The role policy declared for `env`, or None."""
    if env is None:
        return None
    declared: Environment | None = settings.environments.get(env)
    return None if declared is None else declared.roles


def class_of(policy: RolePolicy, role: str) -> str:
    """The class `role` is declared in (the most trusted one if several); `undeclared`."""
    if role == policy.migration:
        return "migration"
    if role in policy.break_glass:
        return "break_glass"
    if role in policy.application:
        return "application"
    if role in policy.readonly:
        return "readonly"
    return "undeclared"


def declared_roles(policy: RolePolicy) -> list[str]:
    """Every role the policy names, once each, in the order declared."""
    names = [
        *([policy.migration] if policy.migration else []),
        *policy.application,
        *policy.readonly,
        *policy.break_glass,
        *policy.superusers,
    ]
    return list(dict.fromkeys(names))
