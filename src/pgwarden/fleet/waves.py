"""Waves: the fleet's targets in order, cut into a canary and the stages after it.

Targets are ordered by the fleet's `order` key (`name`, or a label; numbers
sort as numbers, targets without the label last, ties by name). Each wave
takes, from the targets not yet in a wave: those carrying its `label`, its
`count` first ones, or enough to bring the fleet to its `percent` (cumulative:
`percent = 50` means half the fleet is in waves up to and including this one;
`percent = 100` is the rest). Every target must end up in a wave.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from pgwarden.errors import ConfigError
from pgwarden.fleet.config import FleetConfig
from pgwarden.fleet.targets import Target, select
from pgwarden.fleet.words import count

__all__ = ["Wave", "order_targets", "plan_waves"]


@dataclass(frozen=True, slots=True)
class Wave:
    index: int  # 1-based
    name: str
    targets: tuple[Target, ...]
    parallel: int
    bake_s: float


def _key(value: str | None) -> tuple[int, float, str]:
    if value is None:
        return (2, 0.0, "")
    try:
        return (0, float(value), "")
    except ValueError:
        return (1, 0.0, value)


def order_targets(targets: Sequence[Target], order: str) -> list[Target]:
    """`targets` sorted by `order` (`name` or a label), ties by name."""
    if order == "name":
        return sorted(targets, key=lambda t: t.name)
    return sorted(targets, key=lambda t: (_key(t.label(order)), t.name))


def plan_waves(cfg: FleetConfig, targets: Sequence[Target]) -> list[Wave]:
    """The waves of `cfg` over `targets`; `ConfigError` when a target would be left out."""
    remaining = order_targets(targets, cfg.order)
    total = len(remaining)
    placed = 0
    waves: list[Wave] = []
    for i, spec in enumerate(cfg.waves, 1):
        if spec.label:
            chosen = select(remaining, dict(spec.label))
        elif spec.count is not None:
            chosen = remaining[: spec.count]
        else:
            assert spec.percent is not None
            goal = total if spec.percent >= 100 else math.ceil(total * spec.percent / 100)
            chosen = remaining[: max(0, goal - placed)]
        names = {t.name for t in chosen}
        remaining = [t for t in remaining if t.name not in names]
        placed += len(chosen)
        waves.append(
            Wave(
                i,
                spec.name,
                tuple(chosen),
                spec.parallel or cfg.parallel,
                cfg.bake_s if spec.bake_s is None else spec.bake_s,
            )
        )
    if remaining:
        raise ConfigError(
            f"fleet {cfg.name}: {count(len(remaining), 'target')} "
            f"{'is' if len(remaining) == 1 else 'are'} in no wave "
            f"({', '.join(t.name for t in remaining[:5])}{'…' if len(remaining) > 5 else ''})",
            hint="end the waves with one that takes the rest: percent = 100",
        )
    return waves
