"""Leaderboard: every system of a benchmark split scored with 95% CIs against a baseline.

`build_leaderboard(store, config)` loads the cases of a benchmark split and each system's
generations (a run's generations, or the generation cache by system fingerprint), scores
every system in one `score_texts` call, and computes paired bootstrap intervals,
differences to the baseline, approximate-randomization p-values and Holm/BH corrections
over the cases all systems share. `export_leaderboard(board, fmt)` writes CSV, LaTeX
(booktabs), Markdown or JSON, each with a footer saying how the table was made.

Metric groups, the columns a table shows, each column's aggregate and resampling
statistics, signatures and footer notes all come from the metric registry
(`metrics.registry`); a metric is named here only for the request's per-metric settings
(`metric_options`) and the finding metric's drill-down.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

from sqlalchemy import select

from metrics.bertscore import BertScoreConfig
from metrics.clinical import CaseClinicalScore
from metrics.registry import METRICS, column_label, default_groups, metric_groups
from metrics.significance import (
    CORRECTION_LABELS,
    CORRECTIONS,
    FAMILIES,
    Aggregate,
    MetricComparison,
    SignificanceSettings,
    compare_systems,
    significance_mark,
)
from metrics.text import TextScores, score_texts
from model.kinds import kinds_where
from model.notice import RESEARCH_NOTICE
from studies.exports.render import FORMATS as FORMATS
from studies.store.db import Store
from studies.store.schema import Benchmark, Case, Generation, Run, System
from studies.systems.runs import for_current_content, own_split_warnings


class LeaderboardError(ValueError):
    """A leaderboard request that cannot be served (unknown benchmark, system, metric...)."""


@dataclass
class LeaderboardConfig:
    benchmark: str
    baseline: str | None = None
    split: str = "test"
    systems: Sequence[str] | None = None
    metrics: Sequence[str] = field(default_factory=default_groups)
    n_resamples: int = 1000
    n_permutations: int = 1000
    seed: int = 0
    confidence: float = 0.95
    correction: str = "holm"
    # Which comparisons one correction covers: "per-metric" or "all" (metrics.significance).
    family: str = "per-metric"
    # Systems that copy the references (an oracle) are left out unless asked for by name or
    # here; when shown they are a ceiling row, outside every correction family.
    include_reference: bool = False
    bertscore: BertScoreConfig | None = None
    meteor_workers: int | None = None
    # "exact": CIDEr recomputed on every resample with that resample's document
    # frequencies; "fixed-idf": per-case CIDEr with the full set's frequencies (faster).
    cider_resampling: str = "exact"


@dataclass
class CaseRecord:
    case_id: int
    case_key: str
    references: list[str]
    findings: dict[str, Any] | None
    outputs: dict[str, str]


@dataclass
class LeaderboardRow:
    metric: str
    system: str
    estimate: float
    low: float
    high: float
    diff: float | None = None
    diff_low: float | None = None
    diff_high: float | None = None
    p_value: float | None = None
    p_corrected: float | None = None
    mark: str = ""


@dataclass
class Leaderboard:
    benchmark: str
    split: str
    synthetic: bool
    systems: list[str]
    baseline: str | None
    metrics: list[str]
    rows: list[LeaderboardRow]
    comparisons: dict[str, MetricComparison]
    signatures: dict[str, str]
    settings: SignificanceSettings
    cases: list[CaseRecord]
    per_case: dict[str, dict[str, list[float]]]
    clinical: dict[str, list[CaseClinicalScore]] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    cider_resampling: str = "exact"
    # How each metric is recomputed on a resample (from its metric), for the footer.
    resampling_notes: list[str] = field(default_factory=list)
    # Systems that copy the references: shown as ceilings, and those left out of the table.
    ceilings: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)
    # Systems scored on the split they are built from (a baseline on train), by name.
    own_split: dict[str, str] = field(default_factory=dict)
    made_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def n_cases(self) -> int:
        return len(self.cases)

    def row(self, metric: str, system: str) -> LeaderboardRow:
        for row in self.rows:
            if row.metric == metric and row.system == system:
                return row
        raise KeyError((metric, system))

    def footer(self, columns: Sequence[str] | None = None) -> list[str]:
        """How the table was made, one statement per line (signatures and interval notes of
        `columns` only, when given)."""
        shown = set(columns) if columns else set(self.metrics)
        s = self.settings
        correction = "no" if s.correction == "none" else CORRECTION_LABELS[s.correction]
        pct = int(round(s.confidence * 100))
        tests = {c.test for c in self.comparisons.values()}
        mcnemar = [m for m, c in self.comparisons.items() if c.test.startswith("McNemar")]
        lines = [
            f"Benchmark {self.benchmark}, split {self.split}, n = {self.n_cases} cases "
            "scored for every system" + (" (SYNTHETIC data)" if self.synthetic else "") + ".",
            f"Systems: {', '.join(self.systems)}; baseline: {self.baseline or 'none'}.",
            f"Intervals: {pct}% paired bootstrap percentile intervals over "
            f"cases, {s.n_resamples} resamples, seed {s.seed}"
            + "".join(f"; {note}" for note in self.resampling_notes)
            + ".",
        ]
        biased = [m for m, c in self.comparisons.items() if c.interval_method != "percentile"]
        if biased:
            lines.append(
                f"{', '.join(column_label(m) for m in biased)}: bias-corrected (BC) percentile "
                "intervals, since a resample repeats cases and so shifts the score."
            )
        lines.append(
            "p-values: paired "
            + (
                "approximate randomization against the baseline, "
                f"{s.n_permutations} permutations (seeds derived from {s.seed})"
                if "approximate randomization" in tests
                else "tests against the baseline"
            )
            + (
                f"; McNemar's test (exact binomial below 25 discordant cases) for the yes/no "
                f"per-case columns {', '.join(column_label(m) for m in mcnemar)}"
                if mcnemar
                else ""
            )
            + f"; {correction} correction, family {FAMILIES[s.family]}"
            + (f", without {', '.join(self.ceilings)}" if self.ceilings else "")
            + "; marks on corrected p: * < 0.05, ** < 0.01, *** < 0.001."
        )
        if any(c.differences for c in self.comparisons.values()):
            lines.append(
                f"The {pct}% intervals are unadjusted (each at {pct}% on its own, no "
                "multiplicity correction): a difference interval that excludes 0 can sit "
                f"next to a non-significant {correction}-corrected p."
            )
        if self.ceilings:
            lines.append(
                f"{', '.join(self.ceilings)}: copies the reference reports (a ceiling, not a "
                "contender); its p-values are uncorrected and outside the correction family."
            )
        if self.left_out:
            lines.append(
                f"Left out: {', '.join(self.left_out)} (copies the reference reports; "
                "include it with the reference option)."
            )
        missing = [
            m
            for m, c in self.comparisons.items()
            if c.interval_method != "percentile"
            and any(i.note for i in [*c.systems.values(), *c.differences.values()])
        ]
        if missing:
            lines.append(
                f"{', '.join(column_label(m) for m in missing)}: some intervals are not given "
                "(below); CIDEr's fixed-idf resampling gives intervals from per-case scores."
            )
        for metric, comparison in self.comparisons.items():
            if metric not in shown:
                continue
            for system, interval in comparison.systems.items():
                if interval.note:
                    lines.append(f"{column_label(metric)}, {system}: no interval: {interval.note}.")
            for system, interval in comparison.differences.items():
                if interval.note:
                    lines.append(
                        f"{column_label(metric)}, {system} minus {self.baseline}: no interval: "
                        f"{interval.note}."
                    )
        for metric in self.metrics:
            if metric in shown:
                lines.append(f"{column_label(metric)}: {self.signatures.get(metric, '')}")
        for key, note in self.unavailable.items():
            lines.append(f"{key}: {note}")
        for system, n in self.dropped.items():
            lines.append(f"{system}: {n} case(s) without a generation left out of every system")
        for system, warning in self.own_split.items():
            lines.append(f"WARNING: {system}: {warning}.")
        lines.append(f"Made by med-vision-workbench {_version()} at {self.made_at}.")
        lines.append(RESEARCH_NOTICE)
        return lines

    def as_dict(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark,
            "split": self.split,
            "synthetic": self.synthetic,
            "systems": self.systems,
            "baseline": self.baseline,
            "metrics": self.metrics,
            "n_cases": self.n_cases,
            # A bound with no interval (NaN) is null: JSON has no NaN.
            "rows": [
                {k: None if isinstance(v, float) and v != v else v for k, v in vars(r).items()}
                for r in self.rows
            ],
            "signatures": self.signatures,
            "settings": {**self.settings.as_dict(), "cider_resampling": self.cider_resampling},
            "unavailable": self.unavailable,
            "labels": {m: column_label(m) for m in self.metrics},
            "tests": {m: c.test for m, c in self.comparisons.items()},
            "ceilings": self.ceilings,
            "left_out": self.left_out,
            "made_at": self.made_at,
            "footer": self.footer(),
            "research_use": RESEARCH_NOTICE,
        }


def _version() -> str:
    try:
        return metadata.version("med-vision-workbench")
    except metadata.PackageNotFoundError:
        return "unreleased"


# --- loading ----------------------------------------------------------------------------


# Kinds whose systems copy the references: ceilings, left out of tables and families by default.
CEILING_KINDS = kinds_where(copies_reference=True)


def _load(
    store: Store, config: LeaderboardConfig
) -> tuple[
    tuple[str, bool, str, list[str], list[str]], list[str], list[CaseRecord], dict[str, int]
]:
    with store.session() as session:
        benchmark = session.scalar(select(Benchmark).where(Benchmark.name == config.benchmark))
        if benchmark is None:
            names = session.scalars(select(Benchmark.name).order_by(Benchmark.name)).all()
            raise LeaderboardError(
                f"no benchmark named {config.benchmark!r}; known: {', '.join(names) or 'none'}"
            )
        cases = session.scalars(
            select(Case)
            .where(Case.benchmark_id == benchmark.id, Case.split == config.split)
            .order_by(Case.case_key)
        ).all()
        if not cases:
            raise LeaderboardError(
                f"benchmark {config.benchmark!r} has no cases in split {config.split!r}"
            )
        case_ids = [c.id for c in cases]
        runs = session.scalars(
            select(Run).where(Run.benchmark_id == benchmark.id, Run.split == config.split)
        ).all()
        system_ids = {r.system_id for r in runs}
        generations = for_current_content(
            session.scalars(
                select(Generation)
                .where(Generation.case_id.in_(case_ids))
                .order_by(Generation.created_at, Generation.id)
            ),
            cases,
        )
        fingerprints = {g.system_fingerprint for g in generations}
        systems = session.scalars(
            select(System).where(
                (System.id.in_(system_ids)) | (System.fingerprint.in_(fingerprints))
            )
        ).all()
        by_name = {s.name: s for s in systems}
        if config.systems:
            missing = [name for name in config.systems if name not in by_name]
            if missing:
                raise LeaderboardError(
                    f"system(s) {missing} have no runs or generations on {config.benchmark!r} "
                    f"split {config.split!r}; available: {', '.join(sorted(by_name)) or 'none'}"
                )
            chosen = [by_name[name] for name in config.systems]
        else:
            chosen = sorted(systems, key=lambda s: s.name)
            if not config.include_reference:
                chosen = [s for s in chosen if s.kind not in CEILING_KINDS]
        ceiling = {s.name for s in systems if s.kind in CEILING_KINDS}
        if config.baseline in ceiling and config.baseline not in {s.name for s in chosen}:
            raise LeaderboardError(
                f"baseline {config.baseline!r} copies the reference reports (a ceiling), which "
                "the table leaves out by default; use --include-reference to compare against it"
            )
        if config.baseline and config.baseline not in {s.name for s in chosen}:
            raise LeaderboardError(
                f"baseline {config.baseline!r} is not among the systems: "
                f"{', '.join(s.name for s in chosen) or 'none'}"
            )
        run_ids = {}
        for run in runs:
            run_ids.setdefault(run.system_id, set()).add(run.id)
        outputs: dict[str, dict[int, str]] = {s.name: {} for s in chosen}
        for system in chosen:
            own_runs = run_ids.get(system.id, set())
            for g in generations:  # later generations overwrite earlier ones
                if g.system_fingerprint == system.fingerprint or (
                    g.run_id is not None and g.run_id in own_runs
                ):
                    outputs[system.name][g.case_id] = g.text
        complete = [
            c for c in cases if c.references and all(c.id in outputs[s.name] for s in chosen)
        ]
        dropped = {
            s.name: sum(1 for c in cases if c.id not in outputs[s.name])
            for s in chosen
            if any(c.id not in outputs[s.name] for c in cases)
        }
        records = [
            CaseRecord(
                c.id,
                c.case_key,
                [str(r) for r in c.references],
                c.findings,
                {s.name: outputs[s.name][c.id] for s in chosen},
            )
            for c in complete
        ]
        names = [s.name for s in chosen]
        ceilings = [s.name for s in chosen if s.kind in CEILING_KINDS]
        left_out = sorted(
            s.name for s in systems if s.kind in CEILING_KINDS and s.name not in names
        )
        header = (benchmark.name, bool(benchmark.synthetic), benchmark.task, ceilings, left_out)
    if not names:
        raise LeaderboardError(
            f"no system has runs or generations on {config.benchmark!r} split {config.split!r}"
        )
    if not records:
        raise LeaderboardError(
            "no case has a reference and a generation from every chosen system; "
            "run the systems on the benchmark first"
        )
    return header, names, records, dropped


# --- scoring ----------------------------------------------------------------------------


def metric_choices() -> tuple[str, ...]:
    """The metric groups a leaderboard offers: every registered one, in table order."""
    return metric_groups()


def default_metrics() -> tuple[str, ...]:
    """The metric groups a leaderboard computes when none is chosen."""
    return default_groups()


def metric_options(config: LeaderboardConfig) -> dict[str, Any]:
    """Per-metric settings of a request, keyed by metric group."""
    return {
        "bertscore": config.bertscore,
        "meteor": config.meteor_workers,
        "cider": config.cider_resampling,
    }


def build_leaderboard(
    store: Store,
    config: LeaderboardConfig,
    progress: Callable[[str, float], None] | None = None,
) -> Leaderboard:
    """Score every system of the benchmark split and compare it with the baseline."""
    groups = list(dict.fromkeys(config.metrics))
    unknown = [g for g in groups if g not in METRICS]
    if unknown:
        raise LeaderboardError(f"unknown metric(s) {unknown}; choose from {list(METRICS)}")
    if config.correction not in CORRECTIONS:
        raise LeaderboardError(
            f"unknown correction {config.correction!r}; use one of {', '.join(CORRECTIONS)}"
        )
    options = metric_options(config)
    for metric in METRICS.values():
        try:
            metric.check_options(options)
        except ValueError as exc:
            raise LeaderboardError(str(exc)) from exc
    if config.family not in FAMILIES:
        raise LeaderboardError(
            f"unknown correction family {config.family!r}; use one of {', '.join(FAMILIES)}"
        )
    if config.n_resamples < 10 or config.n_permutations < 10:
        raise LeaderboardError("use at least 10 bootstrap resamples and 10 permutations")
    (benchmark_name, synthetic, task, ceilings, left_out), systems, cases, dropped = _load(
        store, config
    )
    skipped: dict[str, str] = {}
    for group in list(groups):
        metric = METRICS[group]
        if metric.tasks is not None and task not in metric.tasks:
            groups.remove(group)
            skipped[group] = (
                f"not computed: {metric.description or group} does not apply to {task!r} benchmarks"
            )
    if not groups:
        raise LeaderboardError(f"no metric left to compute for a {task!r} benchmark")
    baseline = config.baseline or next((s for s in systems if s not in ceilings), systems[0])
    report = progress or (lambda _msg, _frac: None)
    texts: dict[str, TextScores] = {}
    references = [c.references for c in cases]
    findings = [c.findings for c in cases]
    steps = len(systems) + 1
    for index, system in enumerate(systems):
        report(f"scoring {system}", index / steps)
        candidates = [c.outputs[system] for c in cases]
        try:
            texts[system] = score_texts(
                candidates, references, groups, findings=findings, options=options
            )
        except (OSError, RuntimeError, ValueError) as exc:
            # A model that is not on disk, Java missing, a bad BERTScore setting.
            raise LeaderboardError(f"scoring {system!r} failed: {exc}") from exc
    report("resampling", len(systems) / steps)
    metric_inputs: dict[str, tuple[Aggregate, dict[str, Any]]] = {}
    binary: dict[str, dict[str, Any]] = {}
    signatures: dict[str, str] = {}
    unavailable: dict[str, str] = dict(skipped)
    per_case: dict[str, dict[str, list[float]]] = {s: {} for s in systems}
    notes: list[str] = []
    first = texts[systems[0]]
    for group in groups:
        metric = METRICS[group]
        note = metric.resampling_note(options)
        if note:
            notes.append(note)
        for column in metric.shown_columns:
            if column not in first.results:  # e.g. SPICE without its models
                continue
            metric_inputs[column] = metric.resampling(column, texts, options)
            outcomes = {s: metric.binary_outcomes(column, texts[s]) for s in systems}
            if all(v is not None for v in outcomes.values()):
                binary[column] = outcomes
            signatures[column] = first.results[column].signature
            for s in systems:
                per_case[s][column] = texts[s].results[column].per_case.tolist()
    for s in systems:
        unavailable.update(texts[s].unavailable)
    settings = SignificanceSettings(
        n_resamples=config.n_resamples,
        n_permutations=config.n_permutations,
        seed=config.seed,
        confidence=config.confidence,
        correction=config.correction,
        family=config.family,
    )
    comparisons = compare_systems(
        metric_inputs,
        baseline,
        settings,
        binary=binary,
        outside_family=[s for s in ceilings if s != baseline],
    )
    rows: list[LeaderboardRow] = []
    for metric_name, comparison in comparisons.items():
        for system in systems:
            interval = comparison.systems[system]
            row = LeaderboardRow(
                metric_name, system, interval.estimate, interval.low, interval.high
            )
            if system != baseline:
                diff = comparison.differences[system]
                row.diff, row.diff_low, row.diff_high = diff.estimate, diff.low, diff.high
                row.p_value = comparison.p_values[system]
                row.p_corrected = comparison.p_corrected[system]
                # A ceiling is no hypothesis: its uncorrected p gets no mark.
                row.mark = "" if system in ceilings else significance_mark(row.p_corrected)
            rows.append(row)
    report("done", 1.0)
    return Leaderboard(
        benchmark=benchmark_name,
        split=config.split,
        synthetic=synthetic,
        systems=systems,
        baseline=baseline,
        metrics=list(comparisons),
        rows=rows,
        comparisons=comparisons,
        signatures=signatures,
        settings=settings,
        cases=cases,
        per_case=per_case,
        # The finding metric's per-case records (errors, findings) for the drill-down.
        clinical={
            s: texts[s].details["clinical"] for s in systems if "clinical" in texts[s].details
        },
        unavailable=unavailable,
        dropped=dropped,
        cider_resampling=config.cider_resampling,
        resampling_notes=notes,
        ceilings=ceilings,
        left_out=left_out,
        own_split=own_split_warnings(store, systems, config.split),
    )


# --- drill-down -------------------------------------------------------------------------


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def clinical_case_summary(board: Leaderboard, system: str, index: int) -> dict[str, Any] | None:
    """The finding metric on one case, detection and description apart, next to the
    system's corpus score with its interval for every clinical column of the board."""
    records = board.clinical.get(system)
    if not records:
        return None
    record: CaseClinicalScore = records[index]
    tp, n_report, n_reference = record.detection
    correct, stated = record.description
    agree, decided = record.surveillance
    corpus = {}
    for column in METRICS["clinical"].columns:
        if column in board.comparisons:
            interval = board.comparisons[column].systems[system]
            corpus[column] = {
                "estimate": interval.estimate,
                "low": interval.low,
                "high": interval.high,
            }
    return {
        "score": record.score,
        "asserts": record.asserts,
        "matched_findings": record.matched_findings,
        "weighted_errors": record.weighted_errors,
        "ceiling": record.ceiling,
        "detection": {
            "matched": tp,
            "report_lesions": n_report,
            "reference_lesions": n_reference,
            "precision": _ratio(tp, n_report),
            "recall": _ratio(tp, n_reference),
            "f1": _ratio(2 * tp, n_report + n_reference),
        },
        "description": {"correct": correct, "stated": stated, "accuracy": _ratio(correct, stated)},
        "surveillance": {
            "report": record.candidate_interval.get("summary"),
            "reference": record.reference_interval.get("summary"),
            "agree": bool(agree) if decided else None,
        },
        "corpus": corpus,
    }


def case_detail(board: Leaderboard, case_key: str) -> dict[str, Any]:
    """One case: references, each system's text, per-metric scores and graded finding errors,
    and the finding metric's detection, description and surveillance parts with the corpus
    intervals beside them."""
    keys = [c.case_key for c in board.cases]
    if case_key not in keys:
        raise LeaderboardError(f"case {case_key!r} is not in this leaderboard")
    index = keys.index(case_key)
    case = board.cases[index]
    systems = {}
    for system in board.systems:
        clinical = board.clinical.get(system)
        systems[system] = {
            "text": case.outputs[system],
            "scores": {m: board.per_case[system][m][index] for m in board.metrics},
            "errors": [e.as_dict() for e in clinical[index].errors] if clinical else [],
            "findings": clinical[index].candidate if clinical else None,
            "clinical": clinical_case_summary(board, system, index),
        }
    truth = None
    if board.clinical:
        truth = next(iter(board.clinical.values()))[index].reference
    return {
        "case_key": case.case_key,
        "references": case.references,
        "truth_findings": truth,
        "truth_source": "case findings" if case.findings else "first reference (extracted)",
        "systems": systems,
    }


# --- choices for the app ----------------------------------------------------------------


def leaderboard_choices(store: Store) -> dict[str, dict[str, Any]]:
    """Per benchmark: its splits, synthetic flag and the systems with generations on it."""
    out: dict[str, dict[str, Any]] = {}
    with store.session() as session:
        for bench in session.scalars(select(Benchmark).order_by(Benchmark.name)):
            splits = sorted(
                set(session.scalars(select(Case.split).where(Case.benchmark_id == bench.id)))
            )
            fingerprints = set(
                session.scalars(
                    select(Generation.system_fingerprint)
                    .join(Case, Case.id == Generation.case_id)
                    .where(Case.benchmark_id == bench.id)
                )
            )
            run_systems = set(
                session.scalars(select(Run.system_id).where(Run.benchmark_id == bench.id))
            )
            names = sorted(
                session.scalars(
                    select(System.name).where(
                        System.fingerprint.in_(fingerprints) | System.id.in_(run_systems)
                    )
                )
            )
            out[bench.name] = {"splits": splits, "synthetic": bench.synthetic, "systems": names}
    return out


def finding_rows(findings: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Lesions of a findings dict as table rows (for side-by-side display)."""
    if not findings:
        return []
    return [
        {"lesion": i + 1, **{k: v for k, v in lesion.items() if k != "dysplasia" or v}}
        for i, lesion in enumerate(findings.get("lesions") or [])
    ]
