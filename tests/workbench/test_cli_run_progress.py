"""`medvision run`'s progress: plain lines for a log (each stage, every tenth of the cases or
every 30 s), and a live line with the time left on a terminal.

At ebb17df a run without a terminal printed nothing until it finished, and on a terminal the
bar moved per chunk of 8 with no estimate of the time left.
"""

from __future__ import annotations

import io

from rich.console import Console

from studies.systems.runs import RunProgress, duration_text
from workbench.commands.runs import LiveProgress, PlainProgress, _live_bar


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _generating(done: int, total: int = 100, seconds_per_case: float = 2.0) -> RunProgress:
    return RunProgress("vlm", "generating", done, total, done, done * seconds_per_case)


def test_plain_lines_come_at_each_stage_every_tenth_of_the_cases_or_every_30_s() -> None:
    lines: list[str] = []
    clock = Clock()
    plain = PlainProgress(lines.append, clock=clock)
    plain(RunProgress("vlm", "preparing", 0, 100))
    plain(RunProgress("vlm", "loading", 0, 100))
    plain(RunProgress("vlm", "generating", 0, 100))
    for done in range(1, 26):
        clock.now += 0.5
        plain(_generating(done))
    assert lines[:3] == [
        "vlm: preparing 100 cases (reading the cache and media)",
        "vlm: 0/100 cases, loading the system",
        "vlm: 0/100 cases, generating the first cases",
    ]
    # Every tenth of the cases: 10 and 20 (12.5 s passed, under 30 s).
    assert lines[3:] == [
        "vlm: 10/100 cases, 2.0 s per case, about 3 min 00 s left",
        "vlm: 20/100 cases, 2.0 s per case, about 2 min 40 s left",
    ]
    # A slow stretch: a line after 30 s even with fewer cases done.
    clock.now += 31
    plain(_generating(21 + 5))
    assert lines[-1].startswith("vlm: 26/100 cases")
    plain(RunProgress("vlm", "finished", 100, 100, 100, 200.0))
    assert lines[-1] == "vlm: 100/100 cases, finished"


def test_the_terminal_line_moves_by_the_case_with_the_time_left() -> None:
    import workbench.commands.runs as runs_command

    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=120)
    saved = runs_command.console
    runs_command.console = console
    try:
        with _live_bar() as bar:
            live = LiveProgress(bar)
            live(_generating(3, total=8, seconds_per_case=1.5))
            bar.refresh()
            task = bar.tasks[0]
            assert (task.completed, task.total) == (3, 8)
            assert task.fields["status"] == "3/8 cases, 1.5 s per case, about 7.5 s left"
    finally:
        runs_command.console = saved
    assert "about 7.5 s left" in screen.getvalue()


def test_durations_read_as_people_say_them() -> None:
    assert duration_text(0.04) == "0.04 s"
    assert duration_text(7.5) == "7.5 s"
    assert duration_text(42) == "42 s"
    assert duration_text(185) == "3 min 05 s"
    assert duration_text(3720) == "1 h 02 min"
    assert duration_text(None) == ""
