"""Assignment planning, pure: each item to exactly `overlap` raters in each rater's own
randomised order, and the stratified case sample; seeded, no database."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from studies.readers.design import StudyError

if TYPE_CHECKING:
    from studies.store.schema import Case


@dataclass(frozen=True)
class PlanItem:
    index: int
    case_id: int
    pair: tuple[int, int]
    kind: str  # regular | gold


@dataclass(frozen=True)
class PlannedAssignment:
    rater: int
    item: int
    order_index: int
    a_on_left: bool
    is_duplicate: bool


def _order_tasks(
    tasks: list[tuple[int, int, bool]], rng: random.Random, min_gap: int
) -> list[tuple[int, int, bool]]:
    """Order (item, case, is_duplicate) tasks randomly so that no case follows itself and a
    duplicate comes at least `min_gap` places after its original (relaxed only if impossible)."""
    pool = tasks[:]
    rng.shuffle(pool)
    seq: list[tuple[int, int, bool]] = []
    while pool:
        placed = {t[0]: i for i, t in enumerate(seq) if not t[2]}
        previous = seq[-1][1] if seq else None
        choice = None
        for strict_case, strict_gap in ((True, True), (True, False), (False, True), (False, False)):
            for position, task in enumerate(pool):
                if task[2]:
                    original = placed.get(task[0])
                    if original is None or (strict_gap and len(seq) - original < min_gap):
                        continue
                if strict_case and task[1] == previous:
                    continue
                choice = position
                break
            if choice is not None:
                break
        task = pool.pop(choice)
        if seq and task[1] == previous:
            # Dead end at the tail: slot the task between two other cases earlier on.
            first = placed.get(task[0], -1) + 1 if task[2] else 0
            for slot in range(max(first, 1), len(seq)):
                if seq[slot - 1][1] != task[1] and seq[slot][1] != task[1]:
                    seq.insert(slot, task)
                    break
            else:
                seq.append(task)
        else:
            seq.append(task)
    return seq


def _shortest_gap(ordered: list[tuple[int, int, bool]]) -> int:
    """The fewest places between a duplicate and its original in an order."""
    where = {(t[0], t[2]): i for i, t in enumerate(ordered)}
    gaps = [i - where[(t[0], False)] for i, t in enumerate(ordered) if t[2]]
    return min(gaps, default=len(ordered))


def _spread_order(
    tasks: list[tuple[int, int, bool]], rng: random.Random
) -> list[tuple[int, int, bool]]:
    """Originals of duplicated items first, the other originals, then the duplicates in the
    same order: each duplicate is exactly (number of originals) places after its case."""
    duplicated = [t for t in tasks if t[2]]
    keys = {t[0] for t in duplicated}
    first = [t for t in tasks if not t[2] and t[0] in keys]
    rest = [t for t in tasks if not t[2] and t[0] not in keys]
    rng.shuffle(first)
    rng.shuffle(rest)
    position = {t[0]: i for i, t in enumerate(first)}
    return [*first, *rest, *sorted(duplicated, key=lambda t: position[t[0]])]


def plan_assignments(
    items: list[PlanItem],
    raters: list[int],
    *,
    overlap: int,
    seed: int,
    duplicate_fraction: float = 0.0,
    washout_cases: int | None = None,
) -> list[PlannedAssignment]:
    """Assign every regular item to `overlap` raters and every gold item to all raters.

    Balanced greedily: each item goes to the raters with the fewest items of its pair, then
    the fewest items overall (random ties), so loads differ by at most one. Each rater then
    gets a share of their items again as duplicates (sides swapped), an own random order,
    and sides balanced half left / half right. A duplicate comes at least `washout_cases`
    tasks after its case (StudyError when the list is too short for it); without it, a third
    of the rater's tasks where that fits.
    """
    if overlap > len(raters):
        raise StudyError(
            f"overlap {overlap} needs at least {overlap} enrolled raters; {len(raters)} enrolled"
        )
    rng = random.Random(f"medvision-study:{seed}")
    raters = sorted(raters)
    load: Counter[int] = Counter()
    pair_load: Counter[tuple[int, tuple[int, int]]] = Counter()
    per_rater: dict[int, list[PlanItem]] = defaultdict(list)
    regular = [item for item in items if item.kind != "gold"]
    rng.shuffle(regular)
    for item in regular:
        ranked = sorted(raters, key=lambda r: (pair_load[(r, item.pair)], load[r], rng.random()))
        for rater in ranked[:overlap]:
            load[rater] += 1
            pair_load[(rater, item.pair)] += 1
            per_rater[rater].append(item)
    for item in (i for i in items if i.kind == "gold"):
        for rater in raters:
            per_rater[rater].append(item)

    planned: list[PlannedAssignment] = []
    for rater in raters:
        own = sorted(per_rater[rater], key=lambda i: i.index)
        own_regular = [i for i in own if i.kind != "gold"]
        n_duplicates = round(duplicate_fraction * len(own_regular))
        if duplicate_fraction > 0 and len(own_regular) >= 4:
            n_duplicates = max(1, n_duplicates)
        duplicated = rng.sample(own_regular, min(n_duplicates, len(own_regular)))
        sides = [True] * ((len(own) + 1) // 2) + [False] * (len(own) // 2)
        rng.shuffle(sides)
        side_of = {item.index: side for item, side in zip(own, sides, strict=True)}
        tasks = [(i.index, i.case_id, False) for i in own]
        tasks += [(i.index, i.case_id, True) for i in duplicated]
        gap = washout_cases if washout_cases is not None else max(2, len(tasks) // 3)
        ordered = _order_tasks(tasks, rng, min_gap=gap)
        if washout_cases is not None and duplicated:
            # A stated washout is a promise: never relaxed, refused when it cannot hold.
            short = _shortest_gap(ordered)
            for _attempt in range(10):
                if short >= washout_cases:
                    break
                ordered = _order_tasks(tasks, rng, min_gap=gap)
                short = _shortest_gap(ordered)
            if short < washout_cases:
                # The widest layout: the duplicated cases first, the duplicates last.
                ordered = _spread_order(tasks, rng)
                short = _shortest_gap(ordered)
            if short < washout_cases:
                raise StudyError(
                    f"washout_cases {washout_cases}: a rater has {len(tasks)} tasks, too few "
                    f"to put each duplicate {washout_cases} tasks after its case (at most "
                    f"{short} here); lower washout_cases or duplicate_fraction"
                )
        for order_index, (item, _case, is_duplicate) in enumerate(ordered):
            planned.append(
                PlannedAssignment(
                    rater=rater,
                    item=item,
                    order_index=order_index,
                    a_on_left=side_of[item] != is_duplicate,
                    is_duplicate=is_duplicate,
                )
            )
    return planned


def _stratum(findings: dict[str, Any] | None) -> str:
    if not findings:
        return "unknown"
    if findings.get("no_polyps"):
        return "no_polyps"
    lesions = findings.get("lesions") or []
    if lesions:
        first = lesions[0]
        return str(first.get("histology") or first.get("size_class") or "polyp")
    return "polyp"


def stratified_sample(
    cases: list[Case], size: int, seed: int, *, stratify: bool = True
) -> list[Case]:
    """`size` cases, proportionally from each finding stratum (largest remainder)."""
    rng = random.Random(f"medvision-sample:{seed}")
    if size >= len(cases):
        return list(cases)
    if not stratify:
        return sorted(rng.sample(cases, size), key=lambda c: c.case_key)
    strata: dict[str, list[Case]] = defaultdict(list)
    for case in cases:
        strata[_stratum(case.findings)].append(case)
    quotas = {k: size * len(v) / len(cases) for k, v in strata.items()}
    take = {k: int(q) for k, q in quotas.items()}
    left = size - sum(take.values())
    for key in sorted(quotas, key=lambda k: (take[k] - quotas[k], k))[:left]:
        take[key] += 1
    chosen: list[Case] = []
    for key in sorted(strata):
        chosen += rng.sample(strata[key], take[key])
    return sorted(chosen, key=lambda c: c.case_key)


@dataclass(frozen=True)
class Workload:
    """Tasks per rater a design gives (before any panel change)."""

    n_items: int
    fewest: int
    most: int

    def line(self, n_raters: int) -> str:
        spread = f"{self.fewest}" if self.fewest == self.most else f"{self.fewest}-{self.most}"
        return (
            f"Each of the {n_raters} raters would judge {spread} tasks ({self.n_items} items; "
            "regular items shared by the overlap, gold and training cases by everyone, "
            "duplicates included)."
        )


def workload(
    n_cases: int,
    n_pairs: int,
    *,
    overlap: int,
    n_raters: int,
    n_gold: int = 0,
    n_calibration: int = 0,
    duplicate_fraction: float = 0.0,
) -> Workload:
    """Tasks per rater under `plan_assignments`: the regular items split as evenly as the
    overlap allows (loads differ by at most one), plus every gold and training item, plus
    each rater's duplicates (the same rounding as the plan)."""
    if n_raters < 1 or overlap > n_raters:
        raise StudyError(f"overlap {overlap} needs at least {overlap} raters; {n_raters} enrolled")
    regular = n_cases * n_pairs
    copies = regular * overlap
    low, high = copies // n_raters, -(-copies // n_raters)

    def total(own: int) -> int:
        duplicates = round(duplicate_fraction * own)
        if duplicate_fraction > 0 and own >= 4:
            duplicates = max(1, duplicates)
        return own + min(duplicates, own) + n_gold + n_calibration

    return Workload(regular + n_gold + n_calibration, total(low), total(high))
