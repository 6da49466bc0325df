"""SPICE (pycocoevalcap), reported unavailable with a reason when Stanford CoreNLP 3.6.0's
jars are not installed (they cannot be downloaded here)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from metrics.base import (
    PTB_SIGNATURE,
    CaseTexts,
    MetricOptions,
    MetricScores,
    TextMetric,
    coco_dir,
    library_version,
)


def spice_unavailable_reason() -> str | None:
    lib = coco_dir() / "spice" / "lib"
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


class Spice(TextMetric):
    group = "spice"
    columns = ("SPICE",)
    uses_ptb_tokens = True

    def score(self, texts: CaseTexts) -> MetricScores:
        reason = spice_unavailable_reason()
        if reason:
            return MetricScores(per_case={}, unavailable={"spice": reason})
        try:
            corpus, per_case = spice_scores(texts.tok_candidates, texts.tok_references)
        except Exception as exc:  # noqa: BLE001 - SPICE's Java side fails in many ways
            return MetricScores(per_case={}, unavailable={"spice": f"SPICE unavailable: {exc}"})
        return MetricScores(per_case={"SPICE": per_case}, corpus={"SPICE": corpus})

    def signature(self, column: str, options: MetricOptions) -> str:
        return f"SPICE|pycocoevalcap:{library_version('pycocoevalcap')}|{PTB_SIGNATURE}"
