"""Units x raters rating tables (irrCAC's layout) as reader-study judgments."""

from __future__ import annotations

import numpy as np
import pandas as pd

from studies.reader_stats.data import prepare_judgments


def likert_judgments(table: pd.DataFrame) -> pd.DataFrame:
    """Units x raters ratings (NaN: not rated) as judgments of one Likert criterion: each
    unit one report (the a side of an item)."""
    rows = [
        {
            "rater": str(rater),
            "case": f"u{unit}",
            "item": f"u{unit}",
            "system_a": "x",
            "system_b": "y",
            "winner": "tie",
            "likert_a_accuracy": float(value),
            "likert_b_accuracy": np.nan,
        }
        for unit, row in table.iterrows()
        for rater, value in row.items()
        if pd.notna(value)
    ]
    return prepare_judgments(pd.DataFrame(rows))
