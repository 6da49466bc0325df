"""All reader analyses of one judgments table, with the settings and provenance they used."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from studies.exports.synthetic import UNSTATED
from studies.reader_stats import agreement, likert
from studies.reader_stats.bradley_terry import (
    CLUSTERS,
    DEFAULT_CLUSTER,
    DEFAULT_INTERVAL,
    INTERVALS,
    TIE_MODELS,
    BTResult,
    bradley_terry,
)
from studies.reader_stats.data import (
    criteria_of,
    declared_criteria,
    harm_criterion_of,
    is_synthetic,
    synthetic_kind_of,
)
from studies.reader_stats.likert import ModelFit
from studies.reader_stats.metric_agreement import metric_agreement
from studies.reader_stats.pairwise import CORRECTIONS, regular, win_rate_matrix, win_tie_loss


def package_version() -> str:
    try:
        from importlib.metadata import version

        return version("med-vision-workbench")
    except Exception:  # noqa: BLE001 - an uninstalled checkout still analyses
        return "unknown"


@dataclass
class AnalysisSettings:
    """Every choice that changes a number; stored with the results."""

    n_resamples: int = 1000
    seed: int = 0
    level: float = 0.95
    correction: str = "holm"
    tie_model: str = "half"
    both_bad: str = "tie"
    # Bradley-Terry intervals: two-way (case and rater) cluster-robust by default.
    cluster: str = DEFAULT_CLUSTER
    interval: str = DEFAULT_INTERVAL
    style: bool = False
    comparator: str | None = None
    margin: float = 0.5
    rushed_min_seconds: float = 10.0
    lower_is_better: tuple[str, ...] = ()
    # None: the criterion the study's form declares as its harm criterion.
    harm_criterion: str | None = None

    def check(self) -> None:
        problems = []
        if self.n_resamples < 0:
            problems.append("the number of bootstrap resamples must be 0 or more")
        if not 0.5 < self.level < 1.0:
            problems.append("the interval level must lie between 0.5 and 1")
        if self.correction not in CORRECTIONS:
            problems.append(f"correction must be one of {', '.join(CORRECTIONS)}")
        if self.tie_model not in TIE_MODELS:
            problems.append(f"tie model must be one of {', '.join(TIE_MODELS)}")
        if self.both_bad not in ("tie", "drop"):
            problems.append("both_bad must be 'tie' or 'drop'")
        if self.cluster not in CLUSTERS:
            problems.append(f"cluster must be one of {', '.join(CLUSTERS)}")
        if self.interval not in INTERVALS:
            problems.append(f"interval must be one of {', '.join(INTERVALS)}")
        if self.margin <= 0:
            problems.append("the non-inferiority margin must be positive")
        if problems:
            raise ValueError("; ".join(problems))


@dataclass
class Provenance:
    source: str
    n_cases: int
    n_raters: int
    n_judgments: int
    n_systems: int
    synthetic: bool
    generated_at: str
    version: str
    settings: dict[str, Any]
    # Which part is synthetic (a studies.exports.synthetic kind; "" for real data).
    synthetic_kind: str = ""
    # A study's panel amendments in one line (studies.readers.panel; "" when never amended).
    amendments: str = ""

    @classmethod
    def of(
        cls, judgments: pd.DataFrame, settings: AnalysisSettings, synthetic: bool | None = None
    ) -> Provenance:
        systems = set(judgments["system_a"]) | set(judgments["system_b"])
        return cls(
            source=str(judgments.attrs.get("source", "judgments")),
            n_cases=int(judgments["case"].nunique()),
            n_raters=int(judgments["rater"].nunique()),
            n_judgments=len(judgments),
            n_systems=len(systems),
            synthetic=is_synthetic(judgments) if synthetic is None else bool(synthetic),
            generated_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            version=package_version(),
            settings=asdict(settings),
            synthetic_kind=_kind(judgments, synthetic),
            amendments=str(judgments.attrs.get("amendments") or ""),
        )


def _kind(judgments: pd.DataFrame, synthetic: bool | None) -> str:
    kind = synthetic_kind_of(judgments)
    if synthetic is None or bool(synthetic) == bool(kind):
        return kind
    return UNSTATED if synthetic else ""


@dataclass
class PairwiseAnalysis:
    settings: AnalysisSettings
    provenance: Provenance
    bt: BTResult
    pairwise: pd.DataFrame
    win_rates: pd.DataFrame
    win_counts: pd.DataFrame

    @property
    def warnings(self) -> list[str]:
        """What the pairwise results cannot support (disconnected graph, separation, ...)."""
        return [f"Bradley-Terry: {w}" for w in self.bt.warnings]


@dataclass
class StudyAnalysis(PairwiseAnalysis):
    likert_means: pd.DataFrame = field(default_factory=pd.DataFrame)
    likert_distribution: pd.DataFrame = field(default_factory=pd.DataFrame)
    likert_paired: pd.DataFrame = field(default_factory=pd.DataFrame)
    models: list[ModelFit] = field(default_factory=list)
    harm: pd.DataFrame = field(default_factory=pd.DataFrame)
    kappa_pairs: pd.DataFrame = field(default_factory=pd.DataFrame)
    agreement: pd.DataFrame = field(default_factory=pd.DataFrame)
    intra_rater: pd.DataFrame = field(default_factory=pd.DataFrame)
    gold: pd.DataFrame = field(default_factory=pd.DataFrame)
    position: pd.DataFrame = field(default_factory=pd.DataFrame)
    rushed: pd.DataFrame = field(default_factory=pd.DataFrame)
    metrics: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)
    # The Likert criteria analysed (keys, in form order), their labels and the harm one.
    criteria: list[str] = field(default_factory=list)
    criterion_labels: dict[str, str] = field(default_factory=dict)
    harm_criterion: str | None = None
    # The analysed judgments: a table builder may compute a further statistic from them.
    judgments: pd.DataFrame = field(default_factory=pd.DataFrame)


def analyze_pairwise(
    judgments: pd.DataFrame,
    settings: AnalysisSettings | None = None,
    *,
    synthetic: bool | None = None,
) -> PairwiseAnalysis:
    """Bradley-Terry, win/tie/loss with sign tests, and the win-rate matrix."""
    settings = settings or AnalysisSettings()
    settings.check()
    bt = bradley_terry(
        judgments,
        tie_model=settings.tie_model,  # type: ignore[arg-type]
        both_bad=settings.both_bad,  # type: ignore[arg-type]
        style=settings.style,
        n_resamples=settings.n_resamples,
        seed=settings.seed,
        cluster=settings.cluster,  # type: ignore[arg-type]
        interval=settings.interval,  # type: ignore[arg-type]
        level=settings.level,
    )
    rates, counts = win_rate_matrix(judgments)
    return PairwiseAnalysis(
        settings=settings,
        provenance=Provenance.of(regular(judgments), settings, synthetic),
        bt=bt,
        pairwise=win_tie_loss(judgments, level=settings.level, correction=settings.correction),
        win_rates=rates,
        win_counts=counts,
    )


AC1 = "Gwet's AC1 (nominal)"
AC2 = "Gwet's AC2 (ordinal, quadratic weights)"


def _agreement_rows(judgments: pd.DataFrame, settings: AnalysisSettings) -> pd.DataFrame:
    common = {"n_resamples": settings.n_resamples, "seed": settings.seed}
    rows: list[dict[str, Any]] = []
    # Fleiss' kappa and Gwet's AC1/AC2 in Gwet's form: every unit counts, whatever its
    # number of raters; their intervals are linearised with cases and raters both sampled
    # (no resampling).
    kappa = agreement.fleiss_kappa(judgments, level=settings.level)
    rows.append({"measure": "Fleiss' kappa", "ratings": "preference", **_pick(kappa, "kappa")})
    for weights, measure in (("identity", AC1), ("quadratic", AC2)):
        ac = agreement.gwet_ac(judgments, weights=weights, level=settings.level)
        rows.append({"measure": measure, "ratings": "preference", **_pick(ac, "ac")})
    alpha = agreement.krippendorff_alpha(
        judgments, ci_level=settings.level, level="ordinal", **common
    )
    rows.append(
        {"measure": "Krippendorff's alpha (ordinal)", "ratings": "preference", **_pick(alpha)}
    )
    for criterion in criteria_of(judgments):
        if judgments[f"likert_a_{criterion}"].notna().sum() == 0:
            continue
        alpha = agreement.krippendorff_alpha(
            judgments, ratings=criterion, ci_level=settings.level, level="ordinal", **common
        )
        rows.append(
            {"measure": "Krippendorff's alpha (ordinal)", "ratings": criterion, **_pick(alpha)}
        )
        ac2 = agreement.gwet_ac(
            judgments, ratings=criterion, weights="quadratic", level=settings.level
        )
        rows.append({"measure": AC2, "ratings": criterion, **_pick(ac2, "ac")})
        icc = agreement.icc_oneway(judgments, criterion, level=settings.level, **common)
        rows.append({"measure": "ICC(1,1)", "ratings": criterion, **_pick(icc, "icc")})
    return pd.DataFrame.from_records(rows)


def _pick(result: dict[str, Any], key: str = "alpha") -> dict[str, Any]:
    return {
        "n_units": result["n_units"],
        "value": result[key],
        "ci_low": result["ci_low"],
        "ci_high": result["ci_high"],
    }


def _rater_quality(
    judgments: pd.DataFrame, settings: AnalysisSettings
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    intra = agreement.intra_rater(judgments, level=settings.level)
    gold = agreement.gold_accuracy(judgments, level=settings.level)
    position = agreement.position_bias(
        judgments, level=settings.level, correction=settings.correction
    )
    _, rushed = agreement.rushed_flags(judgments, min_seconds=settings.rushed_min_seconds)
    return intra, gold, position, rushed


def analyze_study(
    judgments: pd.DataFrame,
    settings: AnalysisSettings | None = None,
    *,
    metric_table: pd.DataFrame | None = None,
    synthetic: bool | None = None,
) -> StudyAnalysis:
    """Every reader analysis; a part the data cannot support is skipped with a note."""
    settings = settings or AnalysisSettings()
    base = analyze_pairwise(judgments, settings, synthetic=synthetic)
    analysis = StudyAnalysis(**{k: getattr(base, k) for k in base.__dataclass_fields__})
    analysis.judgments = judgments
    notes = analysis.notes
    declared = declared_criteria(judgments)
    analysis.criteria = [c.key for c in declared]
    analysis.criterion_labels = {c.key: c.label for c in declared}
    harm = settings.harm_criterion or harm_criterion_of(judgments)
    if harm is not None and harm not in analysis.criteria:
        raise ValueError(
            f"harm criterion {harm!r}: not among these judgments' criteria "
            f"({', '.join(analysis.criteria) or 'none'})"
        )
    analysis.harm_criterion = harm
    if likert.has_likert(judgments):
        analysis.likert_means = likert.likert_means(judgments, level=settings.level)
        analysis.likert_distribution = likert.likert_distribution(judgments)
        analysis.likert_paired = likert.paired_differences(
            judgments, level=settings.level, correction=settings.correction
        )
        for criterion in analysis.criteria:
            if judgments[f"likert_a_{criterion}"].notna().sum() == 0:
                continue
            for fit in (likert.mixed_model, likert.ordinal_model):
                try:
                    model = fit(
                        judgments, criterion, reference=settings.comparator, level=settings.level
                    )
                except (ValueError, np.linalg.LinAlgError) as exc:
                    notes.append(f"{fit.__name__} for {criterion} not fitted: {exc}")
                    continue
                analysis.models.append(model)
                for message in model.warnings:
                    notes.append(f"{model.model} ({criterion}): {message}")
        if harm is not None and judgments[f"likert_a_{harm}"].notna().any():
            analysis.harm = likert.harm_noninferiority(
                judgments,
                criterion=harm,
                comparator=settings.comparator,
                margin=settings.margin,
                level=settings.level,
                correction=settings.correction,
            )
        elif harm is None:
            notes.append(
                "no harm criterion declared (harm = true in the form, or the harm criterion "
                "setting): harm non-inferiority skipped"
            )
    else:
        notes.append("no Likert ratings: Likert analyses skipped")
    analysis.kappa_pairs = agreement.cohen_kappa_pairs(
        judgments, n_resamples=settings.n_resamples, seed=settings.seed, level=settings.level
    )
    analysis.agreement = _agreement_rows(judgments, settings)
    if not analysis.kappa_pairs.empty:
        mean_kappa = float(analysis.kappa_pairs["kappa"].mean())
        row = {"measure": "Cohen's kappa (linear), mean over rater pairs", "ratings": "preference"}
        row.update(
            n_units=int(analysis.kappa_pairs["n_units"].sum()),
            value=mean_kappa,
            ci_low=np.nan,
            ci_high=np.nan,
        )
        analysis.agreement = pd.concat([pd.DataFrame([row]), analysis.agreement], ignore_index=True)
    analysis.intra_rater, analysis.gold, analysis.position, analysis.rushed = _rater_quality(
        judgments, settings
    )
    if metric_table is not None:
        analysis.metrics = metric_agreement(
            judgments,
            metric_table,
            lower_is_better=settings.lower_is_better,
            n_resamples=settings.n_resamples,
            seed=settings.seed,
            level=settings.level,
        )
    notes.extend(analysis.warnings)
    return analysis
