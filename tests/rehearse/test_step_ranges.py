"""RH102's state names the committed and undone steps as ranges, not one by one."""

from __future__ import annotations

import pytest

from pgwarden.rehearse.trace import step_ranges


@pytest.mark.parametrize(
    ("indexes", "said"),
    [
        ([4], "step 4"),
        ([0, 1], "steps 0-1"),
        (list(range(92)), "steps 0-91"),
        ([0, 1, 2, 3, 5, 7, 8, 9], "steps 0-3, 5, 7-9"),
        ([9, 2, 3, 2], "steps 2-3, 9"),
        ([1, 3], "steps 1, 3"),
    ],
)
def test_step_ranges(indexes: list[int], said: str) -> None:
    assert step_ranges(indexes) == said
