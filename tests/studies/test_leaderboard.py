"""Leaderboard over real store rows (SQLite and PostgreSQL), exports and the CLI."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from metrics.base import CaseTexts, MetricOptions, MetricScores, TextMetric
from metrics.bertscore import BertScoreConfig
from metrics.registry import register, unregister
from metrics.significance import Aggregate
from metrics.text import score_texts
from studies.leaderboard.build import (
    LeaderboardConfig,
    LeaderboardError,
    build_leaderboard,
    case_detail,
    metric_choices,
)
from studies.leaderboard.tables import export_leaderboard
from studies.store.db import Store
from studies.store.schema import Benchmark, Case, Generation, Run, System

SITES = ["cecum", "ascending colon", "transverse colon", "descending colon", "sigmoid", "rectum"]
WRONG = ["rectum", "sigmoid", "cecum", "hepatic flexure", "ascending colon", "transverse colon"]
FAST_METRICS = ["bleu", "rouge_l", "cider", "rouge", "clinical"]


def _reference(i: int) -> str:
    size = 3 + (i * 5) % 14
    return (
        f"A {size} mm sessile polyp in the {SITES[i % 6]}, removed with cold snare. "
        f"Bowel preparation was adequate."
    )


def populate(store: Store, n_cases: int = 13, synthetic: bool = True) -> None:
    """A benchmark with three systems: a perfect copy, a baseline and a wrong one."""
    with store.session() as session:
        bench = Benchmark(
            name="colon-lb", loader="test", root="/tmp", task="report", synthetic=synthetic
        )
        session.add(bench)
        session.flush()
        cases = []
        for i in range(n_cases):
            findings = None
            if i == 0:
                findings = {
                    "no_polyps": False,
                    "polyp_count": 1,
                    "lesions": [{"size_mm": 3, "location": "cecum", "paris": "0-Is"}],
                    "bbps_total": None,
                    "resection": ["cold_snare"],
                    "surveillance_years": None,
                }
            case = Case(
                benchmark_id=bench.id,
                case_key=f"case-{i:02d}",
                split="test",
                modality="image",
                media=[],
                references=[_reference(i)],
                findings=findings,
                content_hash=f"{i:064d}",
            )
            session.add(case)
            cases.append(case)
        other_split = Case(
            benchmark_id=bench.id,
            case_key="train-00",
            split="train",
            modality="image",
            references=["x"],
            content_hash="f" * 64,
        )
        session.add(other_split)
        systems = {}
        for name in ("copy", "baseline", "wrong"):
            system = System(name=name, kind="test", fingerprint=f"fp-{name}")
            session.add(system)
            systems[name] = system
        session.flush()
        for name, system in systems.items():
            run = Run(system_id=system.id, benchmark_id=bench.id, split="test", status="done")
            session.add(run)
            session.flush()
            for i, case in enumerate(cases):
                if name == "wrong" and i == n_cases - 1:
                    continue  # one case this system never generated
                size = 3 + (i * 5) % 14
                if name == "copy":
                    text = _reference(i)
                elif name == "baseline":
                    site = SITES[i % 6] if i % 2 else WRONG[i % 6]
                    text = f"A {size} mm polyp in the {site}. Preparation adequate."
                else:
                    text = f"A {size + 9} mm pedunculated polyp in the {WRONG[i % 6]}."
                session.add(
                    Generation(
                        system_fingerprint=system.fingerprint,
                        system_id=system.id,
                        case_id=case.id,
                        prompt_hash="p",
                        run_id=run.id,
                        text=text,
                    )
                )


def _config(**overrides) -> LeaderboardConfig:
    values = dict(
        benchmark="colon-lb",
        baseline="baseline",
        metrics=FAST_METRICS,
        n_resamples=200,
        n_permutations=200,
        seed=5,
    )
    values.update(overrides)
    return LeaderboardConfig(**values)


def test_leaderboard_scores_compares_and_exports(store: Store) -> None:
    populate(store)
    steps = []
    board = build_leaderboard(store, _config(), progress=lambda m, f: steps.append((m, f)))
    assert steps[-1] == ("done", 1.0)
    assert board.systems == ["baseline", "copy", "wrong"]
    assert board.n_cases == 12  # the case "wrong" lacks is left out for every system
    assert board.dropped == {"wrong": 1}
    assert board.synthetic is True
    assert board.metrics[:4] == ["BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4"]
    assert "clinical" in board.metrics and "CIDEr" in board.metrics
    assert board.metrics[-7:-5] == ["clinical", "clinical-F1"]  # then detection, description
    from metrics.clinical import score_clinical

    truth = [c.findings if c.findings else c.references[0] for c in board.cases]
    micro = score_clinical([c.outputs["wrong"] for c in board.cases], truth).micro["f1"]
    assert board.row("clinical-F1", "wrong").estimate == pytest.approx(micro)
    assert board.row("clinical-F1", "copy").estimate == pytest.approx(1.0)

    # Point estimates are the metric libraries' corpus scores on the same cases.
    refs = [c.references for c in board.cases]
    for system in board.systems:
        direct = score_texts([c.outputs[system] for c in board.cases], refs, ["bleu", "cider"])
        assert board.row("BLEU-4", system).estimate == pytest.approx(
            direct.results["BLEU-4"].corpus, rel=1e-12
        )
        assert board.row("CIDEr", system).estimate == pytest.approx(
            direct.results["CIDEr"].corpus, rel=1e-12
        )
    for row in board.rows:
        assert row.low <= row.estimate + 1e-12 and row.estimate <= row.high + 1e-12
    base = board.row("BLEU-4", "baseline")
    assert base.diff is None and base.p_value is None
    copy = board.row("clinical", "copy")
    assert copy.estimate == pytest.approx(1.0)
    assert copy.diff > 0 and copy.diff_low > 0
    assert copy.p_corrected < 0.05 and copy.mark
    wrong = board.row("clinical", "wrong")
    assert wrong.diff < 0 and wrong.mark
    assert board.row("BLEU-4", "copy").p_corrected >= board.row("BLEU-4", "copy").p_value

    # Exports: one row per metric and system, a footer saying how the table was made.
    text = export_leaderboard(board, "csv", table="long")
    body = [line for line in text.splitlines() if not line.startswith("#")]
    rows = list(csv.DictReader(io.StringIO("\n".join(body))))
    assert len(rows) == len(board.metrics) * 3
    assert float(rows[0]["estimate"]) == pytest.approx(board.rows[0].estimate)
    # The paper table's CSV: one row per system, the same numbers.
    paper = export_leaderboard(board, "csv")
    wide = list(
        csv.DictReader(
            io.StringIO("\n".join(line for line in paper.splitlines() if not line.startswith("#")))
        )
    )
    assert [r["system"] for r in wide] == board.systems
    assert float(wide[1]["BLEU-4 ci_low"]) == board.row("BLEU-4", "copy").low
    footer = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    assert "CIDEr with each resample's document frequencies" in footer
    for needle in ("seed 5", "200 resamples", "200 permutations", "Holm", "n = 12", "SYNTHETIC"):
        assert needle in footer
    assert "pycocoevalcap:1.2" in footer and "rouge-score:0.1.2" in footer
    assert "Research software, not a medical device" in footer

    latex = export_leaderboard(board, "latex", table="long")
    for needle in ("\\toprule", "\\midrule", "\\bottomrule", "synthetic data", "seed 5"):
        assert needle in latex
    assert "BLEU-4" in latex and "rouge\\_score" not in latex and "findings:v1" in latex

    markdown = export_leaderboard(board, "markdown", table="long")
    assert markdown.startswith("| Metric | System | Score | 95% CI |")
    assert "baseline (baseline)" in markdown and "Research software" in markdown

    data = json.loads(export_leaderboard(board, "json"))
    assert data["settings"]["seed"] == 5 and data["settings"]["n_resamples"] == 200
    assert data["synthetic"] is True and data["n_cases"] == 12
    assert len(data["rows"]) == len(board.rows)
    with pytest.raises(LeaderboardError, match="unknown format"):
        export_leaderboard(board, "xlsx")


def test_same_seed_same_table_and_case_drill_down(sqlite_store: Store) -> None:
    populate(sqlite_store)
    one = build_leaderboard(sqlite_store, _config(metrics=["rouge", "clinical"]))
    two = build_leaderboard(sqlite_store, _config(metrics=["rouge", "clinical"]))
    assert [vars(r) for r in one.rows] == [vars(r) for r in two.rows]
    exact = build_leaderboard(sqlite_store, _config(metrics=["cider"]))
    fixed = build_leaderboard(
        sqlite_store, _config(metrics=["cider"], cider_resampling="fixed-idf")
    )
    for system in exact.systems:
        # Same point estimate; the intervals differ in how the resamples are scored.
        assert exact.row("CIDEr", system).estimate == pytest.approx(
            fixed.row("CIDEr", system).estimate, rel=1e-12
        )
    assert exact.row("CIDEr", "baseline").low != fixed.row("CIDEr", "baseline").low
    assert "full set's document frequencies" in " ".join(fixed.footer())
    detail = case_detail(one, "case-00")
    assert detail["truth_source"] == "case findings"
    assert detail["truth_findings"]["lesions"][0]["location"] == "cecum"
    assert detail["systems"]["copy"]["errors"] == []
    kinds = {e["kind"] for e in detail["systems"]["wrong"]["errors"]}
    assert {"wrong_location", "wrong_size_class", "wrong_morphology"} <= kinds
    assert detail["systems"]["wrong"]["scores"]["clinical"] < 1.0
    assert np.isclose(detail["systems"]["copy"]["scores"]["clinical"], 1.0)
    with pytest.raises(LeaderboardError, match="not in this leaderboard"):
        case_detail(one, "case-99")


def test_clinical_metric_is_skipped_for_other_tasks(sqlite_store: Store) -> None:
    populate(sqlite_store)
    with sqlite_store.session() as session:
        session.query(Benchmark).filter_by(name="colon-lb").one().task = "cxr-report"
    board = build_leaderboard(sqlite_store, _config(metrics=["rouge", "clinical"]))
    assert "clinical" not in board.metrics and "rouge1" in board.metrics
    assert "does not apply to 'cxr-report'" in board.unavailable["clinical"]
    assert any("does not apply" in line for line in board.footer())
    with pytest.raises(LeaderboardError, match="no metric left"):
        build_leaderboard(sqlite_store, _config(metrics=["clinical"]))


def test_generations_are_found_by_fingerprint_without_a_run(store: Store) -> None:
    populate(store)
    with store.session() as session:
        bench = session.query(Benchmark).filter_by(name="colon-lb").one()
        system = System(name="cached", kind="test", fingerprint="fp-cached")
        session.add(system)
        for case in session.query(Case).filter_by(benchmark_id=bench.id, split="test"):
            session.add(
                Generation(
                    system_fingerprint="fp-cached",
                    case_id=case.id,
                    prompt_hash="q",
                    text=case.references[0],
                )
            )
    board = build_leaderboard(store, _config(metrics=["clinical"], systems=["baseline", "cached"]))
    assert board.systems == ["baseline", "cached"]
    assert board.n_cases == 13
    assert board.row("clinical", "cached").estimate == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"benchmark": "nope"}, "no benchmark named 'nope'; known: colon-lb"),
        ({"baseline": "ghost"}, "baseline 'ghost' is not among the systems"),
        ({"systems": ["copy", "ghost"]}, r"system\(s\) \['ghost'\]"),
        ({"split": "val"}, "no cases in split 'val'"),
        ({"metrics": ["bleu", "bleurt"]}, r"unknown metric\(s\) \['bleurt'\]"),
        ({"correction": "bonferroni"}, "unknown correction"),
        ({"cider_resampling": "approx"}, "unknown CIDEr resampling"),
        ({"n_resamples": 3}, "at least 10"),
        (
            {
                "metrics": ["bertscore"],
                "bertscore": BertScoreConfig(model="/nonexistent/model", num_layers=6),
            },
            "scoring 'baseline' failed",
        ),
    ],
)
def test_bad_requests_are_named(sqlite_store: Store, overrides: dict, message: str) -> None:
    populate(sqlite_store)
    with pytest.raises(LeaderboardError, match=message):
        build_leaderboard(sqlite_store, _config(**overrides))


def test_cli_leaderboard(tmp_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench.cli import app

    url = f"sqlite:///{tmp_home / 'lb.db'}"
    monkeypatch.setenv("MEDVISION_DATABASE_URL", url)
    store = Store(url)
    try:
        populate(store, synthetic=False)
    finally:
        store.dispose()
    runner = CliRunner()
    out_file = tmp_home / "board.tex"
    result = runner.invoke(
        app,
        [
            "leaderboard",
            "--benchmark",
            "colon-lb",
            "--baseline",
            "baseline",
            "--format",
            "latex",
            "--metrics",
            "rouge,clinical",
            "--bootstrap",
            "100",
            "--permutations",
            "100",
            "--seed",
            "3",
            "--output",
            str(out_file),
        ],
    )
    assert result.exit_code == 0, result.output
    tex = out_file.read_text()
    assert "\\toprule" in tex and "seed 3" in tex and "SYNTHETIC" not in tex
    result = runner.invoke(
        app,
        ["leaderboard", "--benchmark", "colon-lb", "--baseline", "nobody", "--format", "csv"],
    )
    assert result.exit_code == 2
    assert "baseline 'nobody' is not among the systems" in result.output
    result = runner.invoke(
        app, ["leaderboard", "--benchmark", "colon-lb", "--baseline", "x", "--format", "pdf"]
    )
    assert result.exit_code == 2 and "--format 'pdf'" in result.output


class WordRecall(TextMetric):
    """A metric registered only here: reference words found in the candidate, micro-averaged
    (its corpus score is the ratio of summed counts, not the mean of per-case ratios)."""

    group = "word_recall"
    columns = ("word-recall", "word-recall-hits")
    table_columns = ("word-recall",)

    def score(self, texts: CaseTexts) -> MetricScores:
        stats = np.array(
            [
                [sum(w in set(c.lower().split()) for w in r[0].lower().split()), len(r[0].split())]
                for c, r in zip(texts.candidates, texts.references, strict=True)
            ],
            dtype=np.float64,
        )
        return MetricScores(
            per_case={"word-recall": stats[:, 0] / stats[:, 1], "word-recall-hits": stats[:, 0]},
            corpus={"word-recall": float(stats[:, 0].sum() / stats[:, 1].sum())},
            stats=stats,
        )

    def signature(self, column: str, options: MetricOptions) -> str:
        return f"{column}|tok:lowercase-whitespace|refs:first|corpus:summed-counts"

    def aggregate(self, column: str) -> Aggregate:
        return RATIO


class _Ratio(Aggregate):
    label = "ratio of summed counts"

    def __call__(self, sums: np.ndarray, n_cases: int) -> np.ndarray:
        sums = np.atleast_2d(sums)
        return sums[:, 0] / sums[:, 1]


RATIO = _Ratio()


@pytest.fixture
def word_recall() -> Iterator[WordRecall]:
    metric = WordRecall()
    register(metric)
    try:
        yield metric
    finally:
        unregister(metric.group)
    assert metric.group not in metric_choices()


def test_a_metric_group_registered_once_is_offered_scored_and_exported(
    sqlite_store: Store, word_recall: WordRecall
) -> None:
    """Registering a metric is the only step: the leaderboard offers it, resamples it with
    its own aggregate and exports it with a CI (before the registry, a group missing from
    the leaderboard's own copy of the group list raised KeyError)."""
    assert "word_recall" in metric_choices()
    populate(sqlite_store)
    board = build_leaderboard(sqlite_store, _config(metrics=["bleu", "word_recall"]))
    assert board.metrics == ["BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "word-recall"]
    cands = {s: [c.outputs[s] for c in board.cases] for s in board.systems}
    refs = [c.references for c in board.cases]
    for system in board.systems:
        direct = score_texts(cands[system], refs, ["word_recall"])
        row = board.row("word-recall", system)
        assert row.estimate == pytest.approx(direct.results["word-recall"].corpus, rel=1e-12)
        assert row.low <= row.estimate <= row.high
        assert board.per_case[system]["word-recall"] == pytest.approx(
            direct.results["word-recall"].per_case.tolist()
        )
    copy, wrong = board.row("word-recall", "copy"), board.row("word-recall", "wrong")
    assert copy.estimate == pytest.approx(1.0) and copy.diff > 0 and copy.p_value is not None
    assert wrong.diff < 0 and wrong.diff_low <= wrong.diff <= wrong.diff_high
    # The corpus score is the metric's own aggregate, not the mean of per-case ratios.
    per_case = np.array(board.per_case["wrong"]["word-recall"])
    assert wrong.estimate != pytest.approx(per_case.mean(), rel=1e-6)
    assert board.comparisons["word-recall"].aggregate == "ratio of summed counts"
    signature = "word-recall|tok:lowercase-whitespace|refs:first|corpus:summed-counts"
    assert board.signatures["word-recall"] == signature

    csv_rows = [
        r
        for r in csv.DictReader(
            io.StringIO(
                "\n".join(
                    line
                    for line in export_leaderboard(board, "csv", table="long").splitlines()
                    if not line.startswith("#")
                )
            )
        )
        if r["metric"] == "word-recall"
    ]
    assert [r["system"] for r in csv_rows] == board.systems
    assert all(float(r["ci_low"]) <= float(r["estimate"]) <= float(r["ci_high"]) for r in csv_rows)
    assert "| word-recall | wrong |" in export_leaderboard(board, "markdown", table="long")
    assert "word-recall & wrong" in export_leaderboard(board, "latex", table="long")
    data = json.loads(export_leaderboard(board, "json"))
    assert {r["metric"] for r in data["rows"]} >= {"word-recall"}
    assert data["signatures"]["word-recall"] == signature
    assert any(signature in line for line in data["footer"])


def _add_system(store: Store, name: str, text: str) -> None:
    """Another system with the same `text` on every test case of colon-lb."""
    with store.session() as session:
        bench = session.scalar(select(Benchmark).where(Benchmark.name == "colon-lb"))
        system = System(name=name, kind="test", fingerprint=f"fp-{name}")
        session.add(system)
        session.flush()
        run = Run(system_id=system.id, benchmark_id=bench.id, split="test", status="done")
        session.add(run)
        session.flush()
        for case in session.scalars(
            select(Case).where(Case.benchmark_id == bench.id, Case.split == "test")
        ):
            session.add(
                Generation(
                    system_fingerprint=system.fingerprint,
                    system_id=system.id,
                    case_id=case.id,
                    prompt_hash="p",
                    run_id=run.id,
                    text=text,
                )
            )


def test_detection_description_and_surveillance_columns_with_cis(store: Store) -> None:
    from metrics.clinical import score_clinical
    from metrics.registry import METRICS

    populate(store)
    _add_system(store, "silent", "")
    _add_system(store, "gibberish", "0arecopyeed 0arecopy copyeed 0(copyerplastcopyecopy")
    board = build_leaderboard(store, _config(metrics=["clinical"]))
    columns = list(METRICS["clinical"].columns)
    for column in (
        "lesion-precision",
        "lesion-recall",
        "lesion-F1",
        "attribute-accuracy",
        "surveillance-agreement",
    ):
        assert column in columns and column in board.metrics
        assert "ratio of summed per-case counts" in board.comparisons[column].aggregate
        for system in board.systems:
            row = board.row(column, system)
            assert row.low <= row.estimate + 1e-12 and row.estimate <= row.high + 1e-12
            if system != "baseline":
                assert row.p_value is not None and row.diff_low is not None
    # Point estimates are the corpus ratios of the summed per-case counts.
    truth = [c.findings if c.findings else c.references[0] for c in board.cases]
    for system in ("baseline", "wrong"):
        run = score_clinical([c.outputs[system] for c in board.cases], truth)
        assert board.row("lesion-precision", system).estimate == pytest.approx(
            run.detection["precision"]
        )
        assert board.row("lesion-recall", system).estimate == pytest.approx(run.detection["recall"])
        assert board.row("attribute-accuracy", system).estimate == pytest.approx(
            run.attribute_accuracy
        )
    assert board.row("lesion-F1", "copy").estimate == pytest.approx(1.0)
    assert board.row("attribute-accuracy", "copy").estimate == pytest.approx(1.0)
    # No reward for silence: the empty and the gibberish system score 0 on every clinical
    # column, below the baseline wherever it scores (these references give no histology, so
    # the table decides no interval and surveillance agreement is 0 for every system).
    for column in columns:
        for system in ("silent", "gibberish"):
            assert board.row(column, system).estimate == 0.0, (column, system)
            if column != "surveillance-agreement":
                assert board.row(column, "baseline").estimate > 0.0, column
    footer = " ".join(board.footer())
    assert "lesion detection, attribute accuracy and surveillance agreement" in footer
    assert "weights:surveillance=3,management=2,minor=1" in footer

    # The drill-down: the case's detection, description and interval beside the corpus CIs.
    detail = case_detail(board, "case-00")
    copy = detail["systems"]["copy"]["clinical"]
    assert copy["detection"]["recall"] == 1.0 and copy["description"]["accuracy"] == 1.0
    assert set(copy["corpus"]) == set(columns)
    interval = copy["corpus"]["lesion-recall"]
    assert interval["low"] <= interval["estimate"] <= interval["high"]
    silent = detail["systems"]["silent"]["clinical"]
    assert silent["asserts"] is False and silent["score"] == 0.0
    assert silent["detection"]["matched"] == 0 and silent["detection"]["precision"] is None
    assert {e["kind"] for e in detail["systems"]["silent"]["errors"]} >= {"no_assertion"}
    wrong = detail["systems"]["wrong"]
    assert all(e["level"] in ("surveillance", "management", "minor") for e in wrong["errors"])
    # The ceiling its significant errors set is shown beside the score it bounds.
    assert copy["ceiling"] == 1.0
    assert wrong["clinical"]["score"] <= wrong["clinical"]["ceiling"]
