"""A study's lifecycle: start (in ONE transaction: freeze the configuration and its
sha256, build the items from existing generations, flag and leave out reports that name a
model or system, assign every item to exactly `overlap` raters up front), then pause,
resume and close. Because all assignments exist from the start, concurrent raters can never
receive more copies of an item than the overlap, and a rater's order is fixed (resume = the
first unjudged assignment). Rating itself lives in `studies.readers.rating`."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from studies.readers.design import (
    ANNOTATION_KIND,
    StudyDesign,
    StudyError,
    find_study,
    identity_hits,
    identity_terms,
    systems_by_name,
)
from studies.readers.planning import PlanItem, plan_assignments, stratified_sample, workload
from studies.store.audit import record
from studies.store.db import Store
from studies.store.schema import (
    WAITS_FOR_CALIBRATION,
    WAITS_FOR_ORIGINAL,
    Assignment,
    Benchmark,
    Case,
    FlaggedReport,
    Generation,
    StudyItem,
    StudyRater,
    System,
    utcnow,
)
from studies.systems.runs import for_current_content

STATUSES = ("draft", "active", "paused", "closed")


def _latest_generations(
    session: Session, systems: list[System], cases: list[Case]
) -> dict[tuple[int, int], Generation]:
    """(system id, case id) -> the newest generation of that system for what the case holds
    now (a report made before the case changed is not shown to raters)."""
    case_ids = [c.id for c in cases]
    found: dict[tuple[int, int], Generation] = {}
    by_fingerprint = {s.fingerprint: s.id for s in systems}
    ids = {s.id for s in systems}
    query = (
        select(Generation)
        .where(
            Generation.case_id.in_(case_ids),
            (Generation.system_id.in_(ids))
            | (Generation.system_fingerprint.in_(list(by_fingerprint))),
        )
        .order_by(Generation.id)
    )
    for generation in for_current_content(session.scalars(query), cases):
        system_id = (
            generation.system_id
            if generation.system_id in ids
            else by_fingerprint.get(generation.system_fingerprint)
        )
        if system_id is not None:
            found[(system_id, generation.case_id)] = generation
    return found


def config_hash(config: dict[str, Any]) -> str:
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass
class StartReport:
    study_id: int
    config_hash: str
    n_cases: int
    n_items: int
    n_assignments: int
    n_flagged: int
    excluded_cases: list[str]

    def summary(self) -> str:
        flagged = (
            f"; {self.n_flagged} reports named a model or system and were flagged, "
            f"leaving out {len(self.excluded_cases)} cases"
            if self.n_flagged
            else ""
        )
        return (
            f"Started: {self.n_cases} cases, {self.n_items} items, {self.n_assignments} "
            f"assignments{flagged}. Config hash {self.config_hash[:16]}."
        )


def start_study(store: Store, study: int | str, *, actor_id: int | None = None) -> StartReport:
    """Freeze, hash, build items and assign them, all in one transaction (or nothing)."""
    with store.session() as session:
        row = find_study(session, study, lock=True)
        if row.status != "draft":
            raise StudyError(f"study {row.name!r} has already started ({row.status})")
        design = StudyDesign.from_dict(row.config["design"])
        design.check()
        benchmark = session.scalar(select(Benchmark).where(Benchmark.name == design.benchmark))
        if benchmark is None:
            raise StudyError(f"benchmark: no benchmark named {design.benchmark!r}")
        systems = systems_by_name(session, design.systems)
        system_of = {s.name: s for s in systems}
        raters = list(
            session.scalars(select(StudyRater.account_id).where(StudyRater.study_id == row.id))
        )
        if len(raters) < design.overlap:
            raise StudyError(
                f"raters: overlap {design.overlap} needs at least {design.overlap} enrolled "
                f"raters; {len(raters)} enrolled. Invite or enrol more first."
            )
        cases = list(
            session.scalars(
                select(Case)
                .where(Case.benchmark_id == benchmark.id, Case.split == design.split)
                .order_by(Case.case_key)
            )
        )
        if not cases:
            raise StudyError(f"split: benchmark {benchmark.name!r} has no {design.split!r} cases")
        generations = _latest_generations(session, systems, cases)
        complete = [c for c in cases if all((s.id, c.id) in generations for s in systems)]
        if design.sample_size is None and len(complete) < len(cases):
            missing = [
                f"{s.name} ({sum((s.id, c.id) not in generations for c in cases)} cases)"
                for s in systems
                if any((s.id, c.id) not in generations for c in cases)
            ]
            raise StudyError(
                "generations: every system needs a report for every case of the split; "
                f"missing for {', '.join(missing)}. Run them first, or sample cases."
            )
        gold_keys = {g.case_key for g in design.gold}
        calibration_keys = {g.case_key for g in design.calibration}
        pool = [c for c in complete if c.case_key not in gold_keys | calibration_keys]
        if design.sample_size is not None:
            pool = stratified_sample(
                pool, design.sample_size, design.seed, stratify=design.stratify
            )

        terms = identity_terms(systems)
        flagged = 0
        excluded: set[str] = set()
        case_by_key = {c.case_key: c for c in cases}
        gold_cases = [case_by_key[k] for k in sorted(gold_keys) if k in case_by_key]
        for case in [*pool, *gold_cases]:
            for system in systems:
                generation = generations.get((system.id, case.id))
                if generation is None:
                    continue
                hits = identity_hits(generation.text, terms)
                if hits:
                    flagged += 1
                    excluded.add(case.case_key)
                    exists = session.scalar(
                        select(FlaggedReport.id).where(
                            FlaggedReport.study_id == row.id,
                            FlaggedReport.generation_id == generation.id,
                        )
                    )
                    if exists is None:
                        session.add(
                            FlaggedReport(
                                study_id=row.id,
                                generation_id=generation.id,
                                reason=f"names {', '.join(hits)} (system {system.name})",
                            )
                        )
        pool = [c for c in pool if c.case_key not in excluded]
        if not pool:
            raise StudyError(
                "cases: no case left to rate"
                + (f" ({len(excluded)} left out for flagged reports)" if excluded else "")
            )

        items: list[StudyItem] = []
        plan_items: list[PlanItem] = []

        def add_item(case: Case, first: System, second: System, kind: str, gold: str | None):
            a, b = sorted((first, second), key=lambda s: s.id)
            item = StudyItem(
                study_id=row.id,
                case_id=case.id,
                system_a_id=a.id,
                system_b_id=b.id,
                generation_a_id=generations[(a.id, case.id)].id,
                generation_b_id=generations[(b.id, case.id)].id,
                kind=kind,
                gold_answer=gold,
                overlap=design.overlap if kind in ("regular", ANNOTATION_KIND) else len(raters),
            )
            items.append(item)
            plan_items.append(PlanItem(len(plan_items), case.id, (a.id, b.id), kind))

        # An annotation study: one item per case, its one system as both "reports".
        item_kind = ANNOTATION_KIND if design.kind == ANNOTATION_KIND else "regular"
        for case in pool:
            for first, second in design.pairs():
                add_item(case, system_of[first], system_of[second], item_kind, None)
        for number, gold in enumerate(design.gold, start=1):
            case = case_by_key.get(gold.case_key)
            if case is None:
                raise StudyError(
                    f"gold item {number}: no case {gold.case_key!r} in split {design.split!r}"
                )
            if gold.case_key in excluded:
                continue
            better, worse = system_of[gold.better], system_of[gold.worse]
            for system in (better, worse):
                if (system.id, case.id) not in generations:
                    raise StudyError(
                        f"gold item {number}: system {system.name!r} has no report for "
                        f"case {gold.case_key!r}"
                    )
            answer = (
                "both_bad" if gold.answer == "both_bad" else ("a" if better.id < worse.id else "b")
            )
            add_item(case, better, worse, "gold", answer)
        # Calibration items: judged by every rater before the main study, with feedback.
        calibration: list[StudyItem] = []
        for number, spec in enumerate(design.calibration, start=1):
            case = case_by_key.get(spec.case_key)
            if case is None:
                raise StudyError(
                    f"calibration item {number}: no case {spec.case_key!r} in split "
                    f"{design.split!r}"
                )
            better, worse = system_of[spec.better], system_of[spec.worse]
            for system in (better, worse):
                if (system.id, case.id) not in generations:
                    raise StudyError(
                        f"calibration item {number}: system {system.name!r} has no report "
                        f"for case {spec.case_key!r}"
                    )
            a, b = sorted((better, worse), key=lambda s: s.id)
            calibration.append(
                StudyItem(
                    study_id=row.id,
                    case_id=case.id,
                    system_a_id=a.id,
                    system_b_id=b.id,
                    generation_a_id=generations[(a.id, case.id)].id,
                    generation_b_id=generations[(b.id, case.id)].id,
                    kind="calibration",
                    gold_answer=(
                        "both_bad"
                        if spec.answer == "both_bad"
                        else ("a" if better.id < worse.id else "b")
                    ),
                    overlap=len(raters),
                )
            )
        session.add_all(items)
        session.add_all(calibration)
        session.flush()

        planned = plan_assignments(
            plan_items,
            raters,
            overlap=design.overlap,
            seed=design.seed,
            # An annotation is not re-read for intra-rater reliability: no duplicates.
            duplicate_fraction=0.0 if design.kind == ANNOTATION_KIND else design.duplicate_fraction,
            washout_cases=design.washout_cases,
        )
        gated = bool(calibration) and design.calibration_threshold > 0
        for rater in sorted(raters):
            for index, item in enumerate(calibration):
                session.add(
                    Assignment(
                        token=secrets.token_urlsafe(24),
                        study_id=row.id,
                        rater_id=rater,
                        item_id=item.id,
                        order_index=index,
                        a_on_left=(index + rater) % 2 == 0,
                        is_duplicate=False,
                    )
                )
        session.add_all(
            Assignment(
                token=secrets.token_urlsafe(24),
                study_id=row.id,
                rater_id=p.rater,
                item_id=items[p.item].id,
                # Calibration comes first in every rater's order.
                order_index=p.order_index + len(calibration),
                a_on_left=p.a_on_left,
                is_duplicate=p.is_duplicate,
                # Washout in days: the duplicate waits for its original's judgment.
                available_at=(
                    WAITS_FOR_ORIGINAL
                    if p.is_duplicate and design.washout_days > 0
                    else (WAITS_FOR_CALIBRATION if gated else None)
                ),
            )
            for p in planned
        )

        frozen = {
            "design": design.to_dict(),
            "benchmark": {"id": benchmark.id, "name": benchmark.name},
            "systems": [
                {"id": s.id, "name": s.name, "fingerprint": s.fingerprint} for s in systems
            ],
            "pairs": [[system_of[a].id, system_of[b].id] for a, b in design.pairs()],
            "case_ids": [c.id for c in pool],
            "gold_case_ids": [c.id for c in gold_cases if c.case_key not in excluded],
            "calibration_case_ids": [i.case_id for i in calibration],
            "excluded_case_keys": sorted(excluded),
            "raters": sorted(raters),
            "n_items": len(items),
            "n_assignments": len(planned),
            "assignment": "balanced greedy, all up front; seeded per study",
        }
        digest = config_hash(frozen)
        row.config = {**frozen, "config_hash": digest}
        row.config_hash = digest
        row.status = "active"
        row.started_at = utcnow()
        record(
            session,
            actor_id,
            "study.start",
            "study",
            row.id,
            {"config_hash": digest, "items": len(items), "assignments": len(planned)},
        )
        return StartReport(
            study_id=row.id,
            config_hash=digest,
            n_cases=len(pool),
            n_items=len(items),
            n_assignments=len(planned),
            n_flagged=flagged,
            excluded_cases=sorted(excluded),
        )


# --- lifecycle ----------------------------------------------------------------------

_TRANSITIONS = {
    "pause": ({"active"}, "paused"),
    "resume": ({"paused"}, "active"),
    "close": ({"active", "paused"}, "closed"),
}


def set_study_status(
    store: Store, study: int | str, action: str, *, actor_id: int | None = None
) -> str:
    """pause / resume / close a started study; returns the new status."""
    if action not in _TRANSITIONS:
        raise StudyError(f"action {action!r}: use pause, resume or close")
    allowed, target = _TRANSITIONS[action]
    with store.session() as session:
        row = find_study(session, study, lock=True)
        if row.status not in allowed:
            raise StudyError(f"cannot {action} study {row.name!r}: it is {row.status}")
        row.status = target
        if target == "closed":
            row.closed_at = utcnow()
        record(session, actor_id, f"study.{action}", "study", row.id)
        return target


def pause_study(store: Store, study: int | str, *, actor_id: int | None = None) -> str:
    return set_study_status(store, study, "pause", actor_id=actor_id)


def resume_study(store: Store, study: int | str, *, actor_id: int | None = None) -> str:
    return set_study_status(store, study, "resume", actor_id=actor_id)


def close_study(store: Store, study: int | str, *, actor_id: int | None = None) -> str:
    return set_study_status(store, study, "close", actor_id=actor_id)


def workload_preview(store: Store, study: int | str) -> str:
    """What a draft study's design and enrolled raters would give each rater, in words (a
    StudyError's message when the design cannot start as it is)."""
    with store.session() as session:
        row = find_study(session, study)
        design = StudyDesign.from_dict(row.config["design"])
        n_raters = len(
            session.scalars(select(StudyRater.id).where(StudyRater.study_id == row.id)).all()
        )
        benchmark = session.scalar(select(Benchmark).where(Benchmark.name == design.benchmark))
        if benchmark is None:
            return f"benchmark: no benchmark named {design.benchmark!r}"
        n_split = len(
            session.scalars(
                select(Case.id).where(Case.benchmark_id == benchmark.id, Case.split == design.split)
            ).all()
        )
    reserved = len({g.case_key for g in [*design.gold, *design.calibration]})
    n_cases = max(0, n_split - reserved)
    if design.sample_size is not None:
        n_cases = min(n_cases, design.sample_size)
    try:
        load = workload(
            n_cases,
            len(design.pairs()),
            overlap=design.overlap,
            n_raters=n_raters,
            n_gold=len(design.gold),
            n_calibration=len(design.calibration),
            duplicate_fraction=design.duplicate_fraction,
        )
    except StudyError as exc:
        return str(exc)
    return load.line(n_raters) + (
        " Cases whose reports name a system are left out at the start, so it may be fewer."
    )
