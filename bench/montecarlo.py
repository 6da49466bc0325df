"""Monte Carlo error of the coverage bench's rates.

The intervals of one simulated study (one per system, pair or contrast) share its cases and
raters, so they are not independent: a rate pooled over them is a mean of study clusters,
and its standard error treats each study as one cluster (Morris, White and Crowther 2019
ask for a Monte Carlo standard error next to every performance measure).
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def pooled(per_study: Sequence[Sequence[float]]) -> tuple[float | None, float | None]:
    """(Rate, Monte Carlo standard error) of 0/1 outcomes grouped by study: the share of
    all outcomes (NaN left out) and the cluster-robust standard error of that ratio
    estimate, sqrt(sum_s (y_s - p n_s)^2) / N, with y_s and n_s a study's hits and count.
    (None, None) when there is no outcome; the error is None with a single study."""
    studies = [[float(v) for v in values if not math.isnan(float(v))] for values in per_study]
    studies = [values for values in studies if values]
    total = sum(len(values) for values in studies)
    if not total:
        return None, None
    rate = sum(sum(values) for values in studies) / total
    if len(studies) < 2:
        return rate, None
    k = len(studies)
    spread = sum((sum(values) - rate * len(values)) ** 2 for values in studies)
    # k / (k - 1): the small-sample factor of a cluster-robust variance.
    return rate, math.sqrt(spread * k / (k - 1)) / total
