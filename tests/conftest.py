"""Shared test helpers for the gdlab core tests.

``grad_report`` collects the worst relative error of every hand-derived gradient against central finite
differences (and of the other numerical checks); the values are printed in pytest's terminal summary, so a
run shows how close each gradient is, not just that it passed.
"""

from __future__ import annotations

import pytest

_WORST: dict[str, tuple[float, int]] = {}


@pytest.fixture(scope="session")
def grad_report():
    """``grad_report(name, value)``: remember the largest ``value`` seen under ``name`` (printed at the end)."""

    def record(name: str, value: float) -> None:
        worst, count = _WORST.get(name, (0.0, 0))
        _WORST[name] = (max(worst, float(value)), count + 1)

    return record


def pytest_terminal_summary(terminalreporter):
    if not _WORST:
        return
    terminalreporter.section("gdlab numerical checks: worst value over all instances (number of instances)")
    for name, (worst, count) in sorted(_WORST.items()):
        terminalreporter.write_line(f"{name:<58s} {worst:9.2e}  ({count})")

