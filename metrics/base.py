"""The text-metric interface: what one metric declares and computes, and the records it fills.

A metric (one module each, registered once in `metrics.registry`) is a `TextMetric`: its
group name, the columns it produces and the ones a table shows, per-case scores with the
corpus score, the corpus aggregate of its per-case sufficient statistics and the
resampling statistics the paired bootstrap needs (`metrics.significance.Aggregate`), and
a signature per column naming library version, tokenisation and settings.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from metrics.significance import MEAN, Aggregate

# Per-metric settings, keyed by metric group (e.g. "bertscore" -> BertScoreConfig,
# "meteor" -> worker count, "cider" -> resampling mode); a metric reads its own key.
MetricOptions = Mapping[str, Any]
PTB_SIGNATURE = "tok:ptb(corenlp-3.4.1,lowercase,no-punct)"


def library_version(package: str) -> str:
    """The installed version of a metric library ("missing" when it is not installed)."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "missing"


def package_dir(package: str) -> Path:
    """The folder of an installed package, found without importing it."""
    spec = find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"{package} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def coco_dir() -> Path:
    """pycocoevalcap's folder: its Java tokenizer, METEOR and SPICE live there."""
    return package_dir("pycocoevalcap")


# --- what a run's scoring shares -------------------------------------------------------


def ngrams(words: list[str], n: int) -> dict[tuple[str, ...], int]:
    """Counts of every 1..n-gram of `words`."""
    counts: dict[tuple[str, ...], int] = {}
    for k in range(1, n + 1):
        for i in range(len(words) - k + 1):
            gram = tuple(words[i : i + k])
            counts[gram] = counts.get(gram, 0) + 1
    return counts


class NgramCache:
    """1..4-gram counts per tokenised text, computed once and shared by BLEU and CIDEr."""

    def __init__(self, n: int = 4) -> None:
        self.n = n
        self._counts: dict[str, dict[tuple[str, ...], int]] = {}

    def __call__(self, text: str) -> dict[tuple[str, ...], int]:
        found = self._counts.get(text)
        if found is None:
            found = self._counts[text] = ngrams(text.split(), self.n)
        return found


@dataclass
class CaseTexts:
    """The texts of one run as every metric reads them.

    `tok_candidates` / `tok_references` are the shared PTB pass (filled when a metric
    with `uses_ptb_tokens` is scored); `findings` are the cases' ground-truth findings
    where known (None: the first reference stands in).
    """

    candidates: list[str]
    references: list[list[str]]
    options: MetricOptions = field(default_factory=dict)
    findings: list[dict[str, Any] | None] | None = None
    tok_candidates: list[str] = field(default_factory=list)
    tok_references: list[list[str]] = field(default_factory=list)
    grams: NgramCache = field(default_factory=NgramCache)

    @property
    def n_cases(self) -> int:
        return len(self.candidates)


@dataclass
class MetricScores:
    """What one metric returns for a run.

    `per_case`: column -> per-case scores; `corpus`: column -> corpus score where it is
    not the mean of the per-case scores; `stats`: per-case sufficient statistics
    (cases x d) when the corpus score is computed from their sums; `detail`: per-case
    records a drill-down view reads (e.g. finding errors).
    """

    per_case: dict[str, np.ndarray]
    corpus: dict[str, float] = field(default_factory=dict)
    stats: np.ndarray | None = None
    unavailable: dict[str, str] = field(default_factory=dict)
    detail: Any = None


@dataclass
class MetricResult:
    name: str
    corpus: float
    per_case: np.ndarray
    signature: str


@dataclass
class TextScores:
    """Scores of one run: per column a corpus score, per-case scores and a signature."""

    n_cases: int
    results: dict[str, MetricResult]
    # metric group -> why it could not be computed (e.g. SPICE without Stanford CoreNLP)
    unavailable: dict[str, str] = field(default_factory=dict)
    # metric group -> per-case sufficient statistics (e.g. "bleu" -> (n, 2 + 2 * 4) of
    # [testlen, reflen, guess_1..n, correct_1..n]).
    stats: dict[str, np.ndarray] = field(default_factory=dict)
    # Token lists after the shared PTB pass (kept for resampling and inspection).
    tokens: dict[str, Any] = field(default_factory=dict)
    # metric group -> its per-case records (see MetricScores.detail).
    details: dict[str, Any] = field(default_factory=dict)
    # Wall-clock seconds per step (slow external metrics run alongside the others).
    timings: dict[str, float] = field(default_factory=dict)

    def per_case(self) -> dict[str, list[float]]:
        return {name: r.per_case.tolist() for name, r in self.results.items()}

    def corpus(self) -> dict[str, float]:
        return {name: r.corpus for name, r in self.results.items()}

    def signatures(self) -> dict[str, str]:
        return {name: r.signature for name, r in self.results.items()}


# --- the interface -----------------------------------------------------------------------

# What the paired bootstrap takes for one column: the aggregate and, per system, the
# per-case statistics (or a `ResampledMetric`).
Resampling = tuple[Aggregate, dict[str, Any]]


class TextMetric(ABC):
    """One metric group. Subclasses set the class attributes and implement `score`."""

    group: ClassVar[str]  # registry key and the name users choose, e.g. "bleu"
    columns: ClassVar[tuple[str, ...]]  # every column `score` produces
    # The columns a leaderboard shows (None: all); variants stay in per-case data.
    table_columns: ClassVar[tuple[str, ...] | None] = None
    # Scored when no metric group is named.
    default: ClassVar[bool] = False
    # Needs the shared PTB pass (CaseTexts.tok_candidates / tok_references).
    uses_ptb_tokens: ClassVar[bool] = False
    # A slow external process: started before, and joined after, the other metrics.
    runs_alongside: ClassVar[bool] = False
    # Benchmark tasks the metric applies to (None: every task), and its name in the
    # message when it does not.
    tasks: ClassVar[tuple[str, ...] | None] = None
    description: ClassVar[str] = ""
    # Column -> the name every table, page and figure prints (the column itself when not
    # listed): one naming scheme, so two variants of one score say whose they are.
    labels: ClassVar[Mapping[str, str]] = {}

    def label(self, column: str) -> str:
        """The printed name of `column`."""
        return self.labels.get(column, column)

    @property
    def shown_columns(self) -> tuple[str, ...]:
        return self.table_columns if self.table_columns is not None else self.columns

    def check_options(self, options: MetricOptions) -> None:
        """Raise ValueError naming a bad setting of this metric in `options`."""
        return None

    def prepare(self, texts: CaseTexts) -> None:
        """One-time work before a run is scored (e.g. building a cached index)."""
        return None

    @abstractmethod
    def score(self, texts: CaseTexts) -> MetricScores:
        """Per-case (and, where not the mean, corpus) scores of every column."""

    @abstractmethod
    def signature(self, column: str, options: MetricOptions) -> str:
        """How `column` was computed: library version, tokenisation, settings."""

    def aggregate(self, column: str) -> Aggregate:
        """How summed per-case statistics of `column` become its corpus score."""
        return MEAN

    def resampling(
        self, column: str, runs: Mapping[str, TextScores], options: MetricOptions
    ) -> Resampling:
        """The aggregate and per-system statistics the paired bootstrap resamples.

        The mean resamples per-case scores; any other aggregate resamples the metric's
        per-case sufficient statistics (`TextScores.stats[group]`).
        """
        aggregate = self.aggregate(column)
        if aggregate is MEAN:
            return aggregate, {s: r.results[column].per_case for s, r in runs.items()}
        return aggregate, {s: r.stats[self.group] for s, r in runs.items()}

    def resampling_note(self, options: MetricOptions) -> str | None:
        """How a resample recomputes this metric, for a table footer (None: the mean)."""
        return None

    def binary_outcomes(self, column: str, scores: TextScores) -> np.ndarray | None:
        """Per case 0 or 1 (NaN where the case does not count) when `column` is a share of
        cases with a yes/no outcome whose counted cases do not depend on the system (e.g.
        "the surveillance interval agrees"); None otherwise. The leaderboard tests such
        columns against the baseline with McNemar's test."""
        return None


def as_reference_lists(references: Sequence[str | Sequence[str]]) -> list[list[str]]:
    """One list of reference strings per case (a single string is one reference)."""
    out = []
    for i, refs in enumerate(references):
        as_list = [refs] if isinstance(refs, str) else list(refs)
        if not as_list:
            raise ValueError(f"case {i}: no reference text")
        if not all(isinstance(r, str) for r in as_list):
            raise ValueError(f"case {i}: references must be strings")
        out.append(as_list)
    return out
