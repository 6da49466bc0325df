"""Every paper figure as a browser shows its SVG download: the leaderboard's forest plot and
the reader study's Bradley-Terry strengths, win-rate matrix, Likert distributions,
inter-rater agreement and metric-versus-reader agreement. Each is opened in Debian's
chromium (`make browser`) and its screenshot kept in docs/figures/ (written when missing,
or always with MEDVISION_UPDATE_SCREENSHOT=1).
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
from support.reader_world import build_world, set_report, synthetic_report

from studies.exports.figures import figure_bytes
from studies.leaderboard.build import LeaderboardConfig, build_leaderboard
from studies.leaderboard.figures import leaderboard_figures
from studies.reader_stats import tables as reader_tables
from studies.reader_stats.analysis import AnalysisSettings, analyze_study
from studies.reader_stats.simulation import simulate_judgments
from studies.store.db import Store

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
FIGURES = ROOT / "docs" / "figures"
FOREST_COLUMNS = ["BLEU-4", "ROUGE-L", "CIDEr", "clinical", "lesion-F1", "surveillance-agreement"]


def _figures(tmp_path: Path) -> dict:
    store = Store(f"sqlite:///{tmp_path / 'lb.db'}")
    try:
        world = build_world(store, tmp_path / "bench", n_cases=16)
        # Mixed quality per case, so that the intervals have some width.
        for index, key in enumerate(world.case_keys):
            set_report(store, "sys-alpha", key, synthetic_report(index, 2 - (index % 3 == 0)))
            set_report(store, "sys-beta", key, synthetic_report(index, 1 + (index % 2)))
        board = build_leaderboard(
            store,
            LeaderboardConfig(
                benchmark=world.benchmark,
                baseline=world.systems[-1],
                metrics=["bleu", "rouge_l", "cider", "clinical"],
                n_resamples=200,
                n_permutations=200,
            ),
        )
    finally:
        store.dispose()
    study = simulate_judgments(
        {"lora_v2": 0.8, "base": 0.0, "template": -0.7},
        n_cases=15,
        raters=3,
        raters_per_item=2,
        tie_nu=0.4,
        seed=41,
    )
    metric = pd.DataFrame(
        [
            {"case": c, "system": s, "bleu_4": (i * 7 + j * 3) % 10 / 10.0}
            for i, c in enumerate(study["case"].unique())
            for j, s in enumerate(("lora_v2", "base", "template"))
        ]
    )
    analysis = analyze_study(
        study, AnalysisSettings(n_resamples=200, seed=7, comparator="base"), metric_table=metric
    )
    return {**leaderboard_figures(board, FOREST_COLUMNS), **reader_tables.study_figures(analysis)}


def test_every_figure_renders_in_a_browser_and_lands_in_docs(tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: run `make browser` (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    figures = _figures(tmp_path)
    assert set(figures) == {
        "forest_differences",
        "bt_estimates",
        "win_matrix",
        "likert_distribution",
        "agreement",
        "metric_agreement",
    }
    update = bool(os.environ.get("MEDVISION_UPDATE_SCREENSHOT"))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        for name, figure in figures.items():
            svg = tmp_path / f"{name}.svg"
            svg.write_bytes(figure_bytes(figure, "svg"))
            html = tmp_path / f"{name}.html"
            html.write_text(
                f'<html><body style="margin:0;background:white"><img id="f" src="{svg.name}">'
                "</body></html>",
                encoding="utf-8",
            )
            page.goto(html.as_uri())
            image = page.locator("#f")
            width = image.evaluate("img => img.complete ? img.naturalWidth : 0")
            assert width > 100, f"{name}: the browser could not draw the SVG"
            shot = tmp_path / f"{name}.png"
            image.screenshot(path=str(shot))
            target = FIGURES / f"{name}.png"
            if update or not target.exists():
                FIGURES.mkdir(parents=True, exist_ok=True)
                target.write_bytes(shot.read_bytes())
        browser.close()
