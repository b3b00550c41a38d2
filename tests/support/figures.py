"""Figures the tests measure (latencies, counts), printed together at the end of every run.

A test asks for the `figures` fixture and records what it measured; `make test` then ends with a
"figures" section, so CI's log carries the numbers the closing notes quote, without `-s`.

    def test_x(figures: Figures) -> None:
        figures.record("settings obeyed by serve #2", f"{seconds:.2f} s")
"""

from __future__ import annotations

import dataclasses

import pytest

_recorded: list[tuple[str, str, str]] = []


@dataclasses.dataclass(frozen=True, slots=True)
class Figures:
    test_id: str

    def record(self, name: str, value: str) -> None:
        _recorded.append((self.test_id, name, value))


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Figures:
    return Figures(request.node.nodeid)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _recorded:
        return
    terminalreporter.write_sep("=", "figures measured by the tests")
    current = ""
    for test_id, name, value in _recorded:
        if test_id != current:
            terminalreporter.write_line(test_id)
            current = test_id
        terminalreporter.write_line(f"    {name}: {value}")
