"""Metric-versus-reader agreement for the severity-weighted clinical score: computed from the
report texts of a metric table, reported next to the text metrics, with Kendall's tau against
the readers' accuracy and safety ratings."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from metrics.clinical import score_findings
from studies.reader_stats.data import JudgmentsError, prepare_judgments
from studies.reader_stats.metric_agreement import metric_agreement

SITES = ["cecum", "ascending colon", "transverse colon", "sigmoid colon", "rectum"]
# Reports from right to badly wrong: the size class, the segment, the lesion itself.
VARIANTS = [
    "A {size} mm sessile polyp in the {site}. Pathology: tubular adenoma.",
    "A {size} mm sessile polyp in the {far}. Pathology: tubular adenoma.",
    "A {wrong} mm sessile polyp in the {site}. Pathology: tubular adenoma.",
    "No polyps.",
    "",
]


def _world(n_cases: int = 30) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(3)
    metric_rows, judgments = [], []
    for i in range(n_cases):
        size = 4 + i % 14
        fill = {
            "size": size,
            "site": SITES[i % 5],
            "far": SITES[(i + 3) % 5],
            "wrong": 6 if size >= 10 else 14,
        }
        reference = VARIANTS[0].format(**fill)
        picks = rng.choice(len(VARIANTS), size=2, replace=False)
        texts = {"x": VARIANTS[picks[0]].format(**fill), "y": VARIANTS[picks[1]].format(**fill)}
        scores = {}
        for system, text in texts.items():
            scores[system] = score_findings(text, reference).score
            metric_rows.append(
                {
                    "case": f"c{i}",
                    "system": system,
                    "report": text,
                    "reference": reference,
                    # A text metric that knows nothing of the findings.
                    "bleu_4": float(rng.random()),
                }
            )
        rating = {s: int(np.clip(round(1 + 4 * scores[s]), 1, 5)) for s in texts}
        judgments.append(
            {
                "rater": "r1",
                "case": f"c{i}",
                "system_a": "x",
                "system_b": "y",
                "winner": "tie"
                if scores["x"] == scores["y"]
                else ("a" if scores["x"] > scores["y"] else "b"),
                "likert_a_accuracy": rating["x"],
                "likert_b_accuracy": rating["y"],
                "likert_a_safety": rating["x"],
                "likert_b_safety": rating["y"],
            }
        )
    return prepare_judgments(pd.DataFrame(judgments)), pd.DataFrame(metric_rows)


def test_clinical_score_from_the_texts_next_to_the_text_metrics_with_rating_taus() -> None:
    judgments, metric_table = _world()
    table = metric_agreement(judgments, metric_table, n_resamples=100, seed=2).set_index("metric")
    assert list(table.index) == ["bleu_4", "clinical"]
    clinical = table.loc["clinical"]
    # The readers' ratings follow the clinical score here; the random text metric does not.
    assert clinical["agreement"] == 1.0
    assert clinical["tau_accuracy"] > 0.8 and clinical["tau_safety"] > 0.8
    assert clinical["tau_accuracy_low"] <= clinical["tau_accuracy"] <= clinical["tau_accuracy_high"]
    assert abs(table.loc["bleu_4", "tau_accuracy"]) < 0.4
    # tau-b between each rated report's score and its rating, both sides stacked.
    scores = {
        (r.case, r.system): score_findings(r.report, r.reference).score
        for r in metric_table.itertuples()
    }
    x = [scores[(c, s)] for c, s in zip(judgments["case"], judgments["system_a"], strict=True)]
    x += [scores[(c, s)] for c, s in zip(judgments["case"], judgments["system_b"], strict=True)]
    y = list(judgments["likert_a_accuracy"]) + list(judgments["likert_b_accuracy"])
    assert clinical["tau_accuracy"] == pytest.approx(stats.kendalltau(x, y).statistic)
    assert clinical["n_rated_accuracy"] == 2 * len(judgments)


def test_clinical_score_from_ground_truth_findings_and_a_bad_findings_cell() -> None:
    judgments, metric_table = _world(12)
    truth = {"no_polyps": True, "lesions": []}
    with_truth = metric_table.drop(columns="reference").assign(findings=json.dumps(truth))
    table = metric_agreement(judgments, with_truth, n_resamples=0).set_index("metric")
    assert "clinical" in table.index
    bad = with_truth.assign(findings='{"lesions": [{"location": "stomach"}]}')
    with pytest.raises(JudgmentsError, match=r"row 1: .*location"):
        metric_agreement(judgments, bad, n_resamples=0)
    broken = with_truth.assign(findings="{not json")
    with pytest.raises(JudgmentsError, match="row 1: 'findings' is not JSON"):
        metric_agreement(judgments, broken, n_resamples=0)


def test_the_study_metrics_table_shows_tau_per_criterion() -> None:
    from studies.reader_stats.analysis import AnalysisSettings, analyze_study
    from studies.reader_stats.tables import metric_table

    judgments, metrics = _world(16)
    analysis = analyze_study(judgments, AnalysisSettings(n_resamples=50), metric_table=metrics)
    table = metric_table(analysis)
    assert list(table.display["Metric"]) == ["bleu_4", "clinical"]
    assert {"tau vs accuracy [CI]", "tau vs safety [CI]"} <= set(table.display.columns)
    assert "severity-weighted" in " ".join(table.notes)
