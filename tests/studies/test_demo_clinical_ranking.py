"""The demo check of the clinical metric: on a freshly seeded demo, no system that writes
nothing or gibberish (the tiny random-weight Qwen3-VL) outranks a baseline on any clinical
score of the leaderboard."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from metrics.clinical import asserts_findings, extract_findings
from metrics.registry import METRICS
from model.kinds import kinds_where
from studies.demo.seed import DEMO_BENCHMARK
from studies.leaderboard.build import LeaderboardConfig, build_leaderboard
from studies.store.db import get_store
from studies.systems.registry import list_systems
from workbench.cli import app


@pytest.mark.slow
def test_no_silent_or_gibberish_demo_system_outranks_a_baseline(tmp_home: Path) -> None:
    result = CliRunner().invoke(app, ["demo", "--seed-only"])
    assert result.exit_code == 0, result.output
    store = get_store()
    kinds = {s.name: s.kind for s in list_systems(store)}
    baselines = [
        name for name, kind in kinds.items() if kind in kinds_where(learns_from_train=True)
    ]
    assert sorted(baselines) == ["retrieval-baseline", "template-baseline"]
    board = build_leaderboard(
        store,
        LeaderboardConfig(
            benchmark=DEMO_BENCHMARK,
            baseline=baselines[0],
            metrics=["clinical"],
            n_resamples=200,
            n_permutations=200,
            # The copied reference reports, shown as the ceiling row.
            include_reference=True,
        ),
    )
    # Which systems write nothing or gibberish is read from their reports, not their names.
    silent = [
        system
        for system in board.systems
        if not any(asserts_findings(extract_findings(c.outputs[system])) for c in board.cases)
    ]
    assert {"tiny-qwen3-vl-lora", "tiny-qwen3-vl-base"} <= set(silent)
    assert not set(silent) & set(baselines)
    columns = [c for c in METRICS["clinical"].columns if c in board.metrics]
    assert len(columns) == len(METRICS["clinical"].columns) >= 7
    for column in columns:
        for system in silent:
            for baseline in baselines:
                mute = board.row(column, system).estimate
                base = board.row(column, baseline).estimate
                assert mute <= base, (column, system, mute, baseline, base)
                if base > 0:
                    assert mute < base, (column, system, baseline)
        # The copied reference reports top every clinical column.
        assert board.row(column, "reference").estimate == pytest.approx(1.0)
