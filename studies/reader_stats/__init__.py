"""Reader statistics: pure functions over the judgments DataFrame; no database access.

A study's current judgments are read into that DataFrame by
`studies.readers.judgments.study_judgments`; a file by `load_judgments_file`.
"""

from studies.reader_stats.agreement import (
    cohen_kappa_pairs,
    fleiss_kappa,
    gold_accuracy,
    icc_oneway,
    intra_rater,
    krippendorff_alpha,
    position_bias,
    rushed_flags,
)
from studies.reader_stats.analysis import (
    AnalysisSettings,
    StudyAnalysis,
    analyze_pairwise,
    analyze_study,
)
from studies.reader_stats.bradley_terry import BTResult, bradley_terry, ci_aware_ranks
from studies.reader_stats.data import (
    JudgmentsError,
    criteria_of,
    harm_criterion_of,
    load_judgments_file,
    prepare_judgments,
)
from studies.reader_stats.likert import (
    harm_noninferiority,
    likert_means,
    mixed_model,
    ordinal_model,
    paired_differences,
)
from studies.reader_stats.metric_agreement import metric_agreement
from studies.reader_stats.pairwise import (
    adjust_pvalues,
    sign_test,
    wilson_interval,
    win_rate_matrix,
    win_tie_loss,
)
from studies.reader_stats.simulation import simulate_judgments

__all__ = [
    "AnalysisSettings",
    "StudyAnalysis",
    "analyze_pairwise",
    "analyze_study",
    "BTResult",
    "JudgmentsError",
    "adjust_pvalues",
    "bradley_terry",
    "ci_aware_ranks",
    "cohen_kappa_pairs",
    "criteria_of",
    "fleiss_kappa",
    "gold_accuracy",
    "harm_criterion_of",
    "harm_noninferiority",
    "icc_oneway",
    "intra_rater",
    "krippendorff_alpha",
    "likert_means",
    "load_judgments_file",
    "metric_agreement",
    "mixed_model",
    "ordinal_model",
    "paired_differences",
    "position_bias",
    "prepare_judgments",
    "rushed_flags",
    "sign_test",
    "simulate_judgments",
    "win_rate_matrix",
    "wilson_interval",
    "win_tie_loss",
]
