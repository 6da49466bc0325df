"""The clinical metric under metamorphic edits (tests/metrics/metamorphic.py), on a sample.

The sample is the first `SAMPLE_PER_KIND` pairs of every edit kind of the full seeded suite
(`bench/metamorphic.py` runs all of it and writes docs/benchmarks.md). A meaning-preserving
edit may move the per-case clinical score against the case's ground truth by at most 0.02;
a meaning-changing edit must lower it by at least 0.2 and add an error of its class.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from metamorphic import (
    CHANGING_DROP,
    CHANGING_KINDS,
    EXPECTED_ERROR,
    KINDS,
    PRESERVING_KINDS,
    PRESERVING_LIMIT,
    PairOutcome,
    generate_pairs,
    markdown_table,
    measure,
)

from metrics.clinical import ERROR_KINDS, normalize_findings

SAMPLE_PER_KIND = 5


def _sample(preserving: bool) -> list[PairOutcome]:
    pairs = [
        p
        for p in generate_pairs()
        if p.preserving is preserving and int(p.pair_id.rsplit("-", 1)[1]) < SAMPLE_PER_KIND
    ]
    return [measure(pair) for pair in pairs]


def _failures(outcomes: list[PairOutcome]) -> str:
    lines = markdown_table(outcomes)
    for o in outcomes:
        if not o.within_threshold:
            lines += [
                f"{o.pair.pair_id}: delta {o.delta:+.3f}, added errors {list(o.error_kinds)}",
                f"  original: {o.pair.original}",
                f"  edited:   {o.pair.edited}",
            ]
    return "\n".join(lines)


def test_the_suite_is_seeded_labelled_and_large_enough() -> None:
    pairs = generate_pairs()
    assert len(pairs) >= 200
    assert pairs == generate_pairs()  # the same seed draws the same suite
    assert generate_pairs(seed=7) != pairs
    assert {p.kind for p in pairs} == set(KINDS)
    assert len({p.pair_id for p in pairs}) == len(pairs)
    for pair in pairs:
        assert pair.edited != pair.original, pair.pair_id
        normalize_findings(pair.reference, where=pair.pair_id)
        if pair.preserving:
            assert pair.kind in PRESERVING_KINDS and pair.expected_error is None
        else:
            assert pair.kind in CHANGING_KINDS
            assert pair.expected_error == EXPECTED_ERROR[pair.kind]
    # A label the scores do not know yet is checked by the score drop alone (PairOutcome).
    assert set(EXPECTED_ERROR.values()) & set(ERROR_KINDS)


def test_a_threshold_that_is_missed_is_reported() -> None:
    pair = next(p for p in generate_pairs(per_kind=1) if p.kind == "segment")
    unchanged = measure(replace(pair, edited=pair.original))
    assert unchanged.delta == 0 and not unchanged.within_threshold
    preserving = next(p for p in generate_pairs(per_kind=1) if p.preserving)
    moved = PairOutcome(preserving, 1.0, 1.0 - 2 * PRESERVING_LIMIT)
    assert not moved.within_threshold
    wrong_class = PairOutcome(pair, 1.0, 1.0 - 2 * CHANGING_DROP, ("missed_lesion",))
    assert not wrong_class.within_threshold
    assert PairOutcome(pair, 1.0, 0.5, ("wrong_location",)).within_threshold


def test_meaning_preserving_edits_keep_the_clinical_score() -> None:
    outcomes = _sample(preserving=True)
    assert len(outcomes) == SAMPLE_PER_KIND * len(PRESERVING_KINDS)
    print("\n" + "\n".join(markdown_table(outcomes)))
    assert all(o.within_threshold for o in outcomes), _failures(outcomes)


def test_meaning_changing_edits_lower_the_score_and_name_the_error() -> None:
    outcomes = _sample(preserving=False)
    assert len(outcomes) == SAMPLE_PER_KIND * len(CHANGING_KINDS)
    print("\n" + "\n".join(markdown_table(outcomes)))
    assert all(o.within_threshold for o in outcomes), _failures(outcomes)


@pytest.mark.parametrize("kind", CHANGING_KINDS)
def test_each_meaning_changing_edit_adds_its_error_class(kind: str) -> None:
    outcomes = [measure(p) for p in generate_pairs(per_kind=3) if p.kind == kind]
    assert outcomes and all(o.names_error for o in outcomes), _failures(outcomes)
