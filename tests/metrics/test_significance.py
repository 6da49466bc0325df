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
    # Resampled CIDEr sits below the estimate (repeated cases make n-grams commoner), so the
    # intervals are bias-corrected percentile intervals of these resamples.
    point = {s: float(cider_scores(c, refs).mean()) for s, c in systems.items()}
    want = {
        s: sig.bootstrap_interval(v, point[s], 0.95, bias_corrected=True) for s, v in drawn.items()
    }
    want_diff = sig.bootstrap_interval(
        drawn["b"] - drawn["a"], point["b"] - point["a"], 0.95, bias_corrected=True
    )
    for dtype, rel in ((np.float64, 1e-9), (np.float32, 1e-5)):
        table = tables[dtype]
        assert table.interval_method == "bias-corrected percentile"
        for s in systems:
            got = table.systems[s]
            assert (got.low, got.high) == pytest.approx((want[s].low, want[s].high), rel=rel)
            assert got.brackets
        diff = table.differences["b"]
        assert (diff.low, diff.high) == pytest.approx(
            (want_diff.low, want_diff.high), rel=rel, abs=rel
        )


# --- issue 11: intervals that contain their estimate, McNemar, correction families ---------


def test_a_line_separator_in_a_generation_keeps_cider_resamples_on_their_cases() -> None:
    """A generation holding U+2028 or a form feed was split into two PTB lines, so every
    later text moved one case on: the exact CIDEr resamples scored each candidate against
    another case's reference and gave [0.0000, 0.0000] around an estimate of 0.1551."""
    from metrics.registry import METRICS
    from metrics.text import score_texts

    n = 12
    refs = [[f"a {3 + i} mm sessile polyp in the {WORDS[i % 5]} removed"] for i in range(n)]
    cands = [f"a {3 + i} mm polyp in the {WORDS[i % 5]}" for i in range(n)]
    cands[2] = "a 5 mm polyp\u2028in the cecum"
    cands[5] = "a polyp\x0cremoved"
    runs = {
        "s": score_texts(cands, refs, ["cider"]),
        "t": score_texts(cands[::-1], refs, ["cider"]),
    }
    assert runs["s"].tokens["references"] == runs["t"].tokens["references"]
    assert runs["s"].tokens["candidates"][2] == "a 5 mm polyp in the cecum"
    aggregate, per_system = METRICS["cider"].resampling("CIDEr", runs, {"cider": "exact"})
    for metric in per_system.values():
        # Every case once: the resampled score is the estimate itself.
        assert metric.resample(np.ones((1, n)))[0] == pytest.approx(metric.estimate(), rel=1e-5)
    table = sig.paired_bootstrap_many(
        {"CIDEr": (aggregate, per_system)}, "t", sig.SignificanceSettings(n_resamples=200)
    )["CIDEr"]
    for interval in [*table.systems.values(), *table.differences.values()]:
        assert interval.brackets, interval


def test_resampled_cider_intervals_contain_the_estimate_or_say_why() -> None:
    """Percentile intervals of exact-resampled CIDEr can miss the estimate (a resample repeats
    cases, so its n-grams look commoner and its CIDEr lower): one of these small corpora gave
    0.930 with [0.199, 0.930) before. Now each interval contains its estimate, or has NaN
    bounds and a note saying why."""
    from metrics.cider import CiderReferences, CiderResampler

    rng = np.random.default_rng(0)
    words = "a b c d e f g h polyp mm cecum rectum sigmoid".split()
    checked = 0
    for trial in range(210):
        n = int(rng.integers(4, 14))
        refs = [[" ".join(rng.choice(words, rng.integers(3, 12)))] for _ in range(n)]
        cands = [" ".join(rng.choice(words, rng.integers(0, 12))) for _ in range(n)]
        if trial % 3 == 0:
            cands = [cands[0]] * n
        if trial < 200:
            continue  # the draws before the corpus that showed the defect
        metric = sig.ResampledMetric(
            cider_scores(cands, refs),
            CiderResampler(cands, CiderReferences(refs, dtype=np.float32)).scores,
        )
        table = sig.paired_bootstrap_many(
            {"CIDEr": (sig.RESAMPLED, {"s": metric})},
            None,
            sig.SignificanceSettings(n_resamples=500, seed=1),
        )["CIDEr"]
        interval = table.systems["s"]
        assert interval.estimate == pytest.approx(metric.estimate())
        assert interval.brackets or (np.isnan(interval.low) and interval.note), interval
        checked += 1
    assert checked == 10

    # All resamples on one side: no interval, and the note says so.
    interval = sig.bootstrap_interval(np.zeros(100), 0.155, 0.95, bias_corrected=True)
    assert np.isnan(interval.low) and np.isnan(interval.high)
    assert "above 100.0% of its resampled values" in interval.note
    # A percentile interval that misses its estimate is not shown either.
    interval = sig.bootstrap_interval(np.linspace(0.0, 0.1, 100), 0.5, 0.95)
    assert np.isnan(interval.low) and "does not contain the estimate" in interval.note


@pytest.mark.parametrize(("n", "seed"), [(12, 1), (40, 2), (300, 3)])
def test_mcnemar_equals_statsmodels_exact_below_25_discordant_pairs(n: int, seed: int) -> None:
    from statsmodels.stats.contingency_tables import mcnemar

    rng = np.random.default_rng(seed)
    a = rng.integers(0, 2, n).astype(float)
    b = np.where(rng.random(n) < 0.7, a, 1 - a)
    a[:2] = np.nan  # cases the reference does not decide
    keep = ~np.isnan(a)
    x, y = a[keep], b[keep]
    table = [
        [np.sum((x == 1) & (y == 1)), np.sum((x == 1) & (y == 0))],
        [np.sum((x == 0) & (y == 1)), np.sum((x == 0) & (y == 0))],
    ]
    discordant = table[0][1] + table[1][0]
    want = mcnemar(table, exact=discordant < 25, correction=True).pvalue
    p, variant = sig.mcnemar_test(a, b)
    assert p == pytest.approx(want, rel=1e-12)
    assert variant == ("exact" if discordant < 25 else "chi-square")
    with pytest.raises(ValueError, match="0 or 1"):
        sig.mcnemar_test(np.array([0.5, 1.0]), np.array([1.0, 0.0]))


def test_compare_systems_uses_mcnemar_for_yes_no_columns_and_the_chosen_family() -> None:
    rng = np.random.default_rng(4)
    n = 60
    outcome = {s: (rng.random(n) < q).astype(float) for s, q in (("base", 0.4), ("x", 0.8))}
    outcome["copy"] = np.ones(n)
    scores = {s: rng.random(n) for s in outcome}
    metrics = {
        "agree": (sig.MEAN, outcome),
        "score": (sig.MEAN, scores),
    }
    settings = sig.SignificanceSettings(n_resamples=50, n_permutations=50, family="all")
    table = sig.compare_systems(
        metrics, "base", settings, binary={"agree": outcome}, outside_family=["copy"]
    )
    assert table["agree"].test.startswith("McNemar")
    assert table["score"].test == "approximate randomization"
    assert table["agree"].p_values["x"] == sig.mcnemar_test(outcome["x"], outcome["base"])[0]
    # One Holm family over both metrics, without the copied references.
    family = [table["agree"].p_values["x"], table["score"].p_values["x"]]
    want = multipletests(family, method="holm")[1]
    assert [table["agree"].p_corrected["x"], table["score"].p_corrected["x"]] == pytest.approx(want)
    assert table["agree"].p_corrected["copy"] == table["agree"].p_values["copy"]
    per_metric = sig.compare_systems(
        metrics, "base", sig.SignificanceSettings(n_resamples=50, n_permutations=50)
    )
    want = multipletests([per_metric["score"].p_values[s] for s in ("x", "copy")], method="holm")[1]
    assert [per_metric["score"].p_corrected[s] for s in ("x", "copy")] == pytest.approx(want)
    with pytest.raises(ValueError, match="unknown correction family 'pairs'"):
        sig.compare_systems(metrics, "base", sig.SignificanceSettings(family="pairs"))
