"""Paired bootstrap and approximate randomization: exactness, null calibration, coverage."""

from __future__ import annotations

import numpy as np
import pytest
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from scipy import stats
from statsmodels.stats.multitest import multipletests

from metrics import significance as sig
from metrics.bleu import bleu_aggregate, bleu_stats
from metrics.cider import cider_scores

WORDS = "polyp sessile cecum sigmoid rectum mm snare cold removed the a in with no seen".split()


def _corpus(seed: int, n: int) -> tuple[list[str], list[list[str]]]:
    rng = np.random.default_rng(seed)
    cands = [" ".join(rng.choice(WORDS, size=rng.integers(3, 15))) for _ in range(n)]
    refs = [
        [" ".join(rng.choice(WORDS, size=rng.integers(3, 15))) for _ in range(rng.integers(1, 3))]
        for _ in range(n)
    ]
    return cands, refs


def test_bleu_and_cider_point_estimates_equal_pycocoevalcap() -> None:
    cands, refs = _corpus(1, 40)
    gts = {i: r for i, r in enumerate(refs)}
    res = {i: [c] for i, c in enumerate(cands)}
    bleu_stats_matrix = np.stack([bleu_stats(c, r) for c, r in zip(cands, refs, strict=True)])
    want_bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    want_cider, _ = Cider().compute_score(gts, res)
    settings = sig.SignificanceSettings(n_resamples=50, seed=3)
    metrics = {f"BLEU-{k}": (bleu_aggregate(k), {"s": bleu_stats_matrix}) for k in range(1, 5)}
    metrics["CIDEr"] = (sig.MEAN, {"s": cider_scores(cands, refs)})
    table = sig.paired_bootstrap_many(metrics, None, settings)
    for k in range(1, 5):
        assert table[f"BLEU-{k}"].systems["s"].estimate == pytest.approx(
            want_bleu[k - 1], rel=1e-12
        )
    assert table["CIDEr"].systems["s"].estimate == pytest.approx(want_cider, rel=1e-12)


def test_a_resample_recomputes_corpus_bleu_not_an_average() -> None:
    cands, refs = _corpus(2, 30)
    matrix = np.stack([bleu_stats(c, r) for c, r in zip(cands, refs, strict=True)])
    counts = sig.resample_counts(30, 1, np.random.default_rng(0))[0]
    picked = [i for i in range(30) for _ in range(int(counts[i]))]
    gts = {j: refs[i] for j, i in enumerate(picked)}
    res = {j: [cands[i]] for j, i in enumerate(picked)}
    want, _ = Bleu(4).compute_score(gts, res, verbose=0)
    got = bleu_aggregate(4)(counts @ matrix, 30)[0]
    assert got == pytest.approx(want[3], rel=1e-12)


def test_approximate_randomization_is_uniform_under_the_null() -> None:
    rng = np.random.default_rng(11)
    p_values = []
    for draw in range(300):
        truth = rng.normal(0.5, 0.2, size=60)
        a = truth + rng.normal(0, 0.1, size=60)
        b = truth + rng.normal(0, 0.1, size=60)
        p_values.append(sig.approximate_randomization(a, b, n_permutations=499, seed=draw))
    assert stats.kstest(p_values, "uniform").pvalue > 0.01
    assert 0.02 < np.mean(np.array(p_values) < 0.05) < 0.09


def test_approximate_randomization_finds_a_real_difference() -> None:
    rng = np.random.default_rng(5)
    base = rng.normal(0.5, 0.1, size=80)
    better = base + 0.05 + rng.normal(0, 0.02, size=80)
    assert sig.approximate_randomization(better, base, n_permutations=999, seed=1) == 1 / 1000
    cands, refs = _corpus(4, 50)
    matrix = np.stack([bleu_stats(c, r) for c, r in zip(cands, refs, strict=True)])
    p = sig.approximate_randomization(matrix, matrix, aggregate=bleu_aggregate(4), seed=2)
    assert p == 1.0  # identical systems: every permutation is as extreme


def test_bootstrap_interval_coverage_is_near_nominal() -> None:
    rng = np.random.default_rng(21)
    covered = 0
    trials = 300
    for trial in range(trials):
        sample = rng.exponential(1.0, size=120)  # skewed, true mean 1.0
        settings = sig.SignificanceSettings(n_resamples=600, seed=trial)
        interval = sig.paired_bootstrap({"s": sample}, settings=settings).systems["s"]
        covered += interval.low <= 1.0 <= interval.high
    assert 0.90 <= covered / trials <= 0.98


def test_difference_interval_and_determinism() -> None:
    rng = np.random.default_rng(8)
    base = rng.normal(0.4, 0.1, 200)
    other = base + 0.1
    settings = sig.SignificanceSettings(n_resamples=400, seed=9)
    one = sig.paired_bootstrap({"b": base, "o": other}, baseline="b", settings=settings)
    two = sig.paired_bootstrap({"b": base, "o": other}, baseline="b", settings=settings)
    assert one.as_dict() == two.as_dict()
    diff = one.differences["o"]
    assert diff.estimate == pytest.approx(0.1)
    assert diff.low == pytest.approx(0.1) and diff.high == pytest.approx(0.1)  # paired
    three = sig.paired_bootstrap(
        {"b": base, "o": other},
        baseline="b",
        settings=sig.SignificanceSettings(n_resamples=400, seed=10),
    )
    assert three.systems["b"].low != one.systems["b"].low


def test_corrections_match_statsmodels() -> None:
    p = [0.01, 0.04, 0.03, 0.2]
    assert sig.correct_p_values(p, "holm") == pytest.approx(
        list(multipletests(p, method="holm")[1])
    )
    assert sig.correct_p_values(p, "bh") == pytest.approx(
        list(multipletests(p, method="fdr_bh")[1])
    )
    assert sig.correct_p_values(p, "none") == p
    with pytest.raises(ValueError, match="unknown correction"):
        sig.correct_p_values(p, "bonferroni-ish")


def test_compare_systems_fills_p_values_and_corrections() -> None:
    rng = np.random.default_rng(3)
    base = rng.normal(0.5, 0.1, 100)
    systems = {"base": base, "same": base + rng.normal(0, 0.01, 100), "better": base + 0.08}
    settings = sig.SignificanceSettings(n_resamples=300, n_permutations=300, seed=4)
    table = sig.compare_systems({"m": (sig.MEAN, systems)}, "base", settings)
    row = table["m"]
    assert set(row.p_values) == {"same", "better"}
    assert row.p_values["better"] < 0.01
    assert row.p_corrected["better"] >= row.p_values["better"]
    assert sig.significance_mark(row.p_corrected["better"]) in {"**", "***"}
    assert sig.significance_mark(0.5) == ""
    assert settings.as_dict()["seed"] == 4 and settings.as_dict()["n_resamples"] == 300


def test_mismatched_cases_are_refused() -> None:
    with pytest.raises(ValueError, match="same cases"):
        sig.paired_bootstrap({"a": np.ones(3), "b": np.ones(4)})
    with pytest.raises(ValueError, match="baseline system 'z'"):
        sig.paired_bootstrap({"a": np.ones(3)}, baseline="z")


def test_micro_f1_is_recomputed_from_summed_counts() -> None:
    from metrics.clinical import score_clinical

    refs = [
        f"A {3 + i % 9} mm sessile polyp in the {s}."
        for i, s in enumerate(["cecum", "rectum"] * 10)
    ]
    cands = [f"A {3 + i % 5} mm polyp in the {s}." for i, s in enumerate(["cecum", "sigmoid"] * 10)]
    result = score_clinical(cands, refs)
    counts = np.array(
        [
            [sum(c.counts[a][k] for a in c.counts if a != "lesion") for k in range(3)]
            for c in result.per_case
        ],
        dtype=float,
    )
    point = sig.paired_bootstrap(
        {"s": counts}, aggregate=sig.MICRO_F1, settings=sig.SignificanceSettings(n_resamples=20)
    )
    assert point.systems["s"].estimate == pytest.approx(result.micro["f1"])
    weights = sig.resample_counts(20, 1, np.random.default_rng(1))[0]
    picked = [i for i in range(20) for _ in range(int(weights[i]))]
    again = score_clinical([cands[i] for i in picked], [refs[i] for i in picked])
    assert sig.MICRO_F1(weights @ counts, 20)[0] == pytest.approx(again.micro["f1"])


def test_cider_is_recomputed_with_each_resamples_document_frequencies() -> None:
    from metrics.cider import CiderReferences, CiderResampler

    cands, refs = _corpus(6, 35)
    resampler = CiderResampler(cands, refs)
    full, per_case = Cider().compute_score(
        {i: r for i, r in enumerate(refs)}, {i: [c] for i, c in enumerate(cands)}
    )
    assert resampler.scores(np.ones((1, 35)))[0] == pytest.approx(full, rel=1e-12)
    weights = sig.resample_counts(35, 4, np.random.default_rng(2))
    got = resampler.scores(weights)
    for row, value in zip(weights, got, strict=True):
        picked = [i for i in range(35) for _ in range(int(row[i]))]
        want, _ = Cider().compute_score(
            {j: refs[i] for j, i in enumerate(picked)},
            {j: [cands[i]] for j, i in enumerate(picked)},
        )
        assert value == pytest.approx(want, rel=1e-10)
        # Not the same as averaging the full-set per-case scores over the resample.
        assert value != pytest.approx(float(row @ per_case) / 35, rel=1e-6)

    other_cands, _ = _corpus(7, 35)
    shared = CiderReferences(refs)
    first, second = CiderResampler(cands, shared), CiderResampler(other_cands, shared)
    # The shared reference side caches per resample set; alternating calls stay exact.
    np.testing.assert_allclose(first.scores(weights), got, rtol=1e-12)
    np.testing.assert_allclose(
        second.scores(weights), CiderResampler(other_cands, refs).scores(weights), rtol=1e-12
    )
    np.testing.assert_allclose(first.scores(weights[:2]), got[:2], rtol=1e-12)
    fast = CiderResampler(cands, CiderReferences(refs, dtype=np.float32))
    np.testing.assert_allclose(fast.scores(weights), got, rtol=1e-5)
    systems = {
        "a": sig.ResampledMetric(per_case, first.scores),
        "b": sig.ResampledMetric(cider_scores(other_cands, refs), second.scores),
    }
    settings = sig.SignificanceSettings(n_resamples=150, n_permutations=150, seed=1)
    table = sig.compare_systems({"CIDEr": (sig.RESAMPLED, systems)}, "a", settings)
    row = table["CIDEr"]
    assert row.systems["a"].estimate == pytest.approx(full)
    assert row.systems["a"].low <= full <= row.systems["a"].high
    assert 0 < row.p_values["b"] <= 1
    assert "document frequencies" in row.aggregate


def test_exact_cider_intervals_equal_pycocoevalcap_run_on_every_resample() -> None:
    """Bootstrap intervals with CIDEr recomputed per resample, against brute force."""
    from metrics.cider import CiderReferences, CiderResampler

    n, n_resamples = 25, 60
    cands_a, refs = _corpus(11, n)
    cands_b, _ = _corpus(12, n)
    # A phrase in every reference (idf 0 in every resample) and several references per case.
    refs = [[f"colonoscopy report {r}" for r in rs] for rs in refs]
    systems = {"a": cands_a, "b": cands_b}
    settings = sig.SignificanceSettings(n_resamples=n_resamples, seed=3)
    tables = {}
    for dtype in (np.float64, np.float32):
        shared = CiderReferences(refs, dtype=dtype)
        metric = {
            s: sig.ResampledMetric(cider_scores(c, refs), CiderResampler(c, shared).scores)
            for s, c in systems.items()
        }
        tables[dtype] = sig.paired_bootstrap_many(
            {"CIDEr": (sig.RESAMPLED, metric)}, "a", settings
        )["CIDEr"]

    # The same resamples (one draw from the seeded generator), pycocoevalcap on each list.
    counts = sig.resample_counts(n, n_resamples, np.random.default_rng(settings.seed))
    drawn = {}
    for s, cands in systems.items():
        values = []
        for row in counts:
            picked = [i for i in range(n) for _ in range(int(row[i]))]
            value, _ = Cider().compute_score(
                {j: refs[i] for j, i in enumerate(picked)},
                {j: [cands[i]] for j, i in enumerate(picked)},
            )
            values.append(value)
        drawn[s] = np.array(values)
    want = {s: sig._percentile(v, 0.95) for s, v in drawn.items()}
    want_diff = sig._percentile(drawn["b"] - drawn["a"], 0.95)
    for dtype, rel in ((np.float64, 1e-9), (np.float32, 1e-5)):
        table = tables[dtype]
        for s in systems:
            got = table.systems[s]
            assert (got.low, got.high) == pytest.approx(want[s], rel=rel)
        diff = table.differences["b"]
        assert (diff.low, diff.high) == pytest.approx(want_diff, rel=rel, abs=rel)
