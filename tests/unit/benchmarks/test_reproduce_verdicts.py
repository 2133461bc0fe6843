"""The verdict rule of docs/reproductions.md (scripts/reproduce_runs.py): an interval that
cannot tell is never counted as a disagreement, and the report's header states the rule."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[3] / "scripts"
sys.path.insert(0, str(SCRIPTS))

import reproduce_runs as rr  # noqa: E402


@pytest.mark.parametrize(
    ("marks", "expected"),
    [
        (["✓", "✓"], "agrees"),
        (["✓", "~"], "partly"),
        (["✓", "✗"], "partly"),
        (["~", "~"], "inconclusive"),
        (["~", "✗"], "disagrees"),
        (["~", "~", "~"], "inconclusive"),
        (["✗", "✗"], "disagrees"),
        ([], "inconclusive"),
    ],
)
def test_verdict_of_the_marks(marks: list[str], expected: str) -> None:
    assert rr.verdict(marks) == expected


def test_side_marks_an_interval_covering_zero_as_undecided() -> None:
    assert rr.side(-2.0, -1.0, "<") == "✓"
    assert rr.side(1.0, 2.0, "<") == "✗"
    assert rr.side(-1.0, 1.0, "<") == "~"
    assert rr.side(-1.0, 1.0, ">") == "~"


def test_the_committed_report_states_the_rule_it_applies() -> None:
    report = (SCRIPTS.parent / "docs" / "reproductions.md").read_text()
    assert rr.VERDICT_RULE in report
    verdicts = {"agrees", "partly", "inconclusive", "disagrees", "not tested"}
    table = report.split("## Verdicts", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "verdict" not in line]
    assert rows and all(row.rstrip(" |").rsplit("| ", 1)[1] in verdicts for row in rows)
