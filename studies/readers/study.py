"""Blinded reader studies: design, start (freeze + hash + assign), lifecycle and progress.

A study is created as a draft from a `StudyDesign`; raters are enrolled; `start_study`
then, in ONE transaction, freezes the configuration (and its sha256), builds the items
(case x pair of systems, from existing generations), flags and leaves out reports that
name a model or system, and assigns every item to exactly `overlap` raters up front.
Because all assignments exist from the start, concurrent raters can never receive more
copies of an item than the overlap, and a rater's order is fixed (resume = first
unjudged assignment). Rating itself lives in `studies.readers.rating`.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import secrets
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime
from itertools import combinations
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from studies.readers.form import DEFAULT_GUIDELINES, FormError, check_form, default_form
from studies.store.audit import record
from studies.store.db import Store
from studies.store.schema import (
    Account,
    Assignment,
    Benchmark,
    Case,
    FlaggedReport,
    Generation,
    Judgment,
    Study,
    StudyItem,
    StudyRater,
    System,
    utcnow,
)

COMPARISONS = ("all_pairs", "comparator")
STATUSES = ("draft", "active", "paused", "closed")
# Words that reveal who wrote a report (Chatbot Arena drops battles whose answers name a
# model); system names, model ids and adapter names of the study are added per study.
IDENTITY_WORDS = (
    "gpt",
    "chatgpt",
    "openai",
    "claude",
    "anthropic",
    "gemini",
    "bard",
    "palm",
    "llama",
    "meta ai",
    "mistral",
    "qwen",
    "alibaba",
    "tongyi",
    "deepseek",
    "llava",
    "med-flamingo",
    "medgemma",
    "gemma",
    "as an ai",
    "language model",
    "vision-language model",
    "ai assistant",
    "lora",
    "fine-tuned",
    "finetuned",
)


class StudyError(ValueError):
    """A study request that cannot be carried out; the message says what to fix."""


@dataclass
class GoldSpec:
    """A gold item: a case where `better` is known to beat `worse` (or both are bad)."""

    case_key: str
    better: str
    worse: str
    answer: str = "better"  # better | both_bad


@dataclass
class StudyDesign:
    """Everything a researcher chooses for a study; frozen (and hashed) at start."""

    name: str
    benchmark: str
    systems: list[str]
    split: str = "test"
    comparisons: str = "all_pairs"
    comparator: str | None = None
    overlap: int = 2
    seed: int = 0
    sample_size: int | None = None
    stratify: bool = True
    gold: list[GoldSpec] = field(default_factory=list)
    duplicate_fraction: float = 0.1
    guidelines: str = DEFAULT_GUIDELINES
    form: dict[str, Any] = field(default_factory=default_form)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StudyDesign:
        values = dict(data)
        values["gold"] = [GoldSpec(**g) for g in values.get("gold", [])]
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in values.items() if k in known})

    def check(self) -> None:
        """StudyError naming the field when the design cannot work."""
        if not self.name.strip():
            raise StudyError("name: give the study a name")
        if len(set(self.systems)) < 2:
            raise StudyError("systems: choose at least two different systems")
        if self.comparisons not in COMPARISONS:
            raise StudyError(f"comparisons: use one of {', '.join(COMPARISONS)}")
        if self.comparisons == "comparator" and self.comparator not in self.systems:
            raise StudyError("comparator: choose one of the study's systems as the comparator")
        if not isinstance(self.overlap, int) or self.overlap < 1:
            raise StudyError("overlap: raters per pair must be a whole number >= 1")
        if self.sample_size is not None and self.sample_size < 1:
            raise StudyError("sample_size: give a positive number of cases, or none for all")
        if not 0 <= self.duplicate_fraction <= 0.5:
            raise StudyError("duplicate_fraction: use a fraction between 0 and 0.5")
        for number, gold in enumerate(self.gold, start=1):
            if gold.better == gold.worse or {gold.better, gold.worse} - set(self.systems):
                raise StudyError(
                    f"gold item {number}: better and worse must be two of the study's systems"
                )
            if gold.answer not in ("better", "both_bad"):
                raise StudyError(f"gold item {number}: answer must be 'better' or 'both_bad'")
        try:
            self.form = check_form(self.form)
        except FormError as exc:
            raise StudyError(str(exc)) from exc

    def pairs(self) -> list[tuple[str, str]]:
        """The compared pairs of system names."""
        if self.comparisons == "comparator":
            return [(self.comparator, s) for s in self.systems if s != self.comparator]
        return list(combinations(self.systems, 2))


# --- identity filter ----------------------------------------------------------------


def identity_terms(systems: list[System]) -> list[str]:
    """Identity words plus everything that names the study's systems."""
    terms = set(IDENTITY_WORDS)
    for system in systems:
        terms.add(system.name.lower())
        for key in ("model", "adapter", "name", "base_model"):
            value = (system.config or {}).get(key)
            if isinstance(value, str) and value.strip():
                terms.add(value.strip().lower())
                terms.add(value.strip().rstrip("/").split("/")[-1].lower())
    return sorted(t for t in terms if len(t) >= 3)


def identity_hits(text: str, terms: list[str]) -> list[str]:
    """The identity terms `text` contains as whole words ('-', '_' and ' ' interchangeable)."""
    lowered = re.sub(r"[-_\s]+", " ", text.lower())
    hits = []
    for term in terms:
        pattern = re.escape(re.sub(r"[-_\s]+", " ", term))
        if re.search(rf"(?<![a-z0-9]){pattern}(?![a-z0-9])", lowered):
            hits.append(term)
    return hits


# --- design -------------------------------------------------------------------------


def _study(session: Session, study: int | str, *, lock: bool = False) -> Study:
    query = select(Study).where(
        Study.id == study if isinstance(study, int) else Study.name == study
    )
    found = session.scalar(query)
    if found is None:
        raise StudyError(f"no study {study!r}")
    if lock:
        # Take the lock, then re-read: another writer may have changed the row meanwhile.
        write_lock(session, found.id)
        session.refresh(found)
    return found


def write_lock(session: Session, study_id: int) -> None:
    """Serialise writers of one study. SQLite: take the database write lock now (a no-op
    update), so the reads that follow run inside the write transaction. PostgreSQL: lock
    the study row."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(
            update(Study).where(Study.id == study_id).values(status=Study.status),
            execution_options={"synchronize_session": False},
        )
    else:
        session.execute(select(Study.id).where(Study.id == study_id).with_for_update())


def _check_blind_text(design: StudyDesign, systems: list[System]) -> None:
    terms = identity_terms(systems)
    for field_name, text in (("name", design.name), ("guidelines", design.guidelines)):
        hits = identity_hits(text, terms)
        if hits:
            raise StudyError(
                f"{field_name}: raters see it, so it must not name a system or model "
                f"(found {hits[0]!r})"
            )


def _systems_by_name(session: Session, names: list[str]) -> list[System]:
    found = {s.name: s for s in session.scalars(select(System).where(System.name.in_(names)))}
    missing = [n for n in names if n not in found]
    if missing:
        raise StudyError(f"systems: no system named {missing[0]!r}")
    return [found[n] for n in names]


def create_study(store: Store, design: StudyDesign, *, actor_id: int | None = None) -> int:
    """A draft study from `design` (checked now; frozen only at start). Returns its id."""
    design.check()
    with store.session() as session:
        benchmark = session.scalar(select(Benchmark).where(Benchmark.name == design.benchmark))
        if benchmark is None:
            raise StudyError(f"benchmark: no benchmark named {design.benchmark!r}")
        systems = _systems_by_name(session, design.systems)
        _check_blind_text(design, systems)
        if session.scalar(select(Study.id).where(Study.name == design.name)) is not None:
            raise StudyError(f"name: a study named {design.name!r} exists; pick another")
        study = Study(
            name=design.name.strip(),
            status="draft",
            config={"design": design.to_dict()},
            guidelines=design.guidelines,
        )
        session.add(study)
        session.flush()
        record(session, actor_id, "study.create", "study", study.id, {"name": study.name})
        return study.id


def update_study(
    store: Store, study: int | str, design: StudyDesign, *, actor_id: int | None = None
) -> None:
    """Replace a draft's design; a started study refuses (its judgments depend on it)."""
    design.check()
    with store.session() as session:
        row = _study(session, study, lock=True)
        if row.status != "draft":
            raise StudyError(
                f"study {row.name!r} has started (config {row.config_hash[:12]}); "
                "its design can no longer change. Create a new study instead."
            )
        _check_blind_text(design, _systems_by_name(session, design.systems))
        row.config = {"design": design.to_dict()}
        row.guidelines = design.guidelines
        row.name = design.name.strip()
        record(session, actor_id, "study.update", "study", row.id)


def study_design(store: Store, study: int | str) -> StudyDesign:
    with store.session() as session:
        return StudyDesign.from_dict(_study(session, study).config["design"])


def enrol_rater_in_session(
    session: Session, study_id: int, account_id: int, *, actor_id: int | None = None
) -> bool:
    """Enrol inside the caller's transaction; False when already enrolled."""
    study = _study(session, study_id)
    if study.status != "draft":
        raise StudyError(
            f"study {study.name!r} has started: its assignments are fixed, so raters join "
            "before the start"
        )
    account = session.get(Account, account_id)
    if account is None:
        raise StudyError(f"no account with id {account_id}")
    exists = session.scalar(
        select(StudyRater.id).where(
            StudyRater.study_id == study_id, StudyRater.account_id == account_id
        )
    )
    if exists is not None:
        return False
    session.add(StudyRater(study_id=study_id, account_id=account_id))
    record(session, actor_id, "study.enrol", "study", study_id, {"account_id": account_id})
    return True


def enrol_rater(
    store: Store, study: int | str, username: str, *, actor_id: int | None = None
) -> bool:
    with store.session() as session:
        row = _study(session, study)
        account = session.scalar(
            select(Account).where(Account.username == username.strip().lower())
        )
        if account is None:
            raise StudyError(f"rater: no account named {username!r}")
        if not account.active:
            raise StudyError(f"rater: account {username!r} is deactivated")
        return enrol_rater_in_session(session, row.id, account.id, actor_id=actor_id)


def study_raters(store: Store, study: int | str) -> list[str]:
    with store.session() as session:
        row = _study(session, study)
        return list(
            session.scalars(
                select(Account.username)
                .join(StudyRater, StudyRater.account_id == Account.id)
                .where(StudyRater.study_id == row.id)
                .order_by(Account.username)
            )
        )


# --- assignment planning (pure) -----------------------------------------------------


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


def plan_assignments(
    items: list[PlanItem],
    raters: list[int],
    *,
    overlap: int,
    seed: int,
    duplicate_fraction: float = 0.0,
) -> list[PlannedAssignment]:
    """Assign every regular item to `overlap` raters and every gold item to all raters.

    Balanced greedily: each item goes to the raters with the fewest items of its pair, then
    the fewest items overall (random ties), so loads differ by at most one. Each rater then
    gets a share of their items again as duplicates (sides swapped), an own random order,
    and sides balanced half left / half right.
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
        ordered = _order_tasks(tasks, rng, min_gap=max(2, len(tasks) // 3))
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


# --- start --------------------------------------------------------------------------


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


def _latest_generations(
    session: Session, systems: list[System], case_ids: list[int]
) -> dict[tuple[int, int], Generation]:
    """(system id, case id) -> the newest generation of that system for that case."""
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
    for generation in session.scalars(query):
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
        row = _study(session, study, lock=True)
        if row.status != "draft":
            raise StudyError(f"study {row.name!r} has already started ({row.status})")
        design = StudyDesign.from_dict(row.config["design"])
        design.check()
        benchmark = session.scalar(select(Benchmark).where(Benchmark.name == design.benchmark))
        if benchmark is None:
            raise StudyError(f"benchmark: no benchmark named {design.benchmark!r}")
        systems = _systems_by_name(session, design.systems)
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
        generations = _latest_generations(session, systems, [c.id for c in cases])
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
        pool = [c for c in complete if c.case_key not in gold_keys]
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
                overlap=design.overlap if kind == "regular" else len(raters),
            )
            items.append(item)
            plan_items.append(PlanItem(len(plan_items), case.id, (a.id, b.id), kind))

        for case in pool:
            for first, second in design.pairs():
                add_item(case, system_of[first], system_of[second], "regular", None)
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
        session.add_all(items)
        session.flush()

        planned = plan_assignments(
            plan_items,
            raters,
            overlap=design.overlap,
            seed=design.seed,
            duplicate_fraction=design.duplicate_fraction,
        )
        session.add_all(
            Assignment(
                token=secrets.token_urlsafe(24),
                study_id=row.id,
                rater_id=p.rater,
                item_id=items[p.item].id,
                order_index=p.order_index,
                a_on_left=p.a_on_left,
                is_duplicate=p.is_duplicate,
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
        row = _study(session, study, lock=True)
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


# --- listing and progress -----------------------------------------------------------


@dataclass
class StudySummary:
    id: int
    name: str
    status: str
    config_hash: str | None
    n_raters: int
    n_assignments: int
    n_done: int
    created_at: datetime | None
    started_at: datetime | None


def _done_assignments(study_id: int):  # noqa: ANN202
    return (
        select(Judgment.assignment_id)
        .join(Assignment, Assignment.id == Judgment.assignment_id)
        .where(Assignment.study_id == study_id)
        .distinct()
    )


def list_studies(store: Store) -> list[StudySummary]:
    with store.session() as session:
        out = []
        for row in session.scalars(select(Study).order_by(Study.id)):
            n_raters = session.scalar(
                select(func.count()).select_from(StudyRater).where(StudyRater.study_id == row.id)
            )
            n_assignments = session.scalar(
                select(func.count()).select_from(Assignment).where(Assignment.study_id == row.id)
            )
            n_done = session.scalar(
                select(func.count()).select_from(_done_assignments(row.id).subquery())
            )
            out.append(
                StudySummary(
                    id=row.id,
                    name=row.name,
                    status=row.status,
                    config_hash=row.config_hash,
                    n_raters=n_raters or 0,
                    n_assignments=n_assignments or 0,
                    n_done=n_done or 0,
                    created_at=row.created_at,
                    started_at=row.started_at,
                )
            )
        return out


@dataclass
class RaterProgress:
    username: str
    display_name: str
    assigned: int
    done: int
    last_submitted_at: datetime | None

    @property
    def remaining(self) -> int:
        return self.assigned - self.done


@dataclass
class PairProgress:
    system_a: str
    system_b: str
    items: int
    needed: int  # items x overlap (regular items only)
    done: int  # judged regular, non-duplicate assignments


@dataclass
class StudyProgress:
    study: str
    status: str
    raters: list[RaterProgress]
    pairs: list[PairProgress]

    @property
    def assigned(self) -> int:
        return sum(r.assigned for r in self.raters)

    @property
    def done(self) -> int:
        return sum(r.done for r in self.raters)


def study_progress(store: Store, study: int | str) -> StudyProgress:
    """Done / assigned per rater, and judged / needed per pair of systems (admin only)."""
    with store.session() as session:
        row = _study(session, study)
        done_ids = set(session.scalars(_done_assignments(row.id)))
        last = dict(
            session.execute(
                select(Judgment.rater_id, func.max(Judgment.submitted_at))
                .join(Assignment, Assignment.id == Judgment.assignment_id)
                .where(Assignment.study_id == row.id)
                .group_by(Judgment.rater_id)
            ).all()
        )
        accounts = {
            a.id: a
            for a in session.scalars(
                select(Account)
                .join(StudyRater, StudyRater.account_id == Account.id)
                .where(StudyRater.study_id == row.id)
            )
        }
        assigned: Counter[int] = Counter()
        done: Counter[int] = Counter()
        pair_done: Counter[tuple[int, int]] = Counter()
        rows = session.execute(
            select(
                Assignment.id,
                Assignment.rater_id,
                Assignment.is_duplicate,
                StudyItem.kind,
                StudyItem.system_a_id,
                StudyItem.system_b_id,
            )
            .join(StudyItem, StudyItem.id == Assignment.item_id)
            .where(Assignment.study_id == row.id)
        ).all()
        for assignment_id, rater_id, is_duplicate, kind, sa, sb in rows:
            assigned[rater_id] += 1
            if assignment_id in done_ids:
                done[rater_id] += 1
                if kind == "regular" and not is_duplicate:
                    pair_done[(sa, sb)] += 1
        names = dict(session.execute(select(System.id, System.name)).all())
        pair_items = session.execute(
            select(
                StudyItem.system_a_id,
                StudyItem.system_b_id,
                func.count(),
                func.sum(StudyItem.overlap),
            )
            .where(StudyItem.study_id == row.id, StudyItem.kind == "regular")
            .group_by(StudyItem.system_a_id, StudyItem.system_b_id)
        ).all()
        raters = [
            RaterProgress(
                username=account.username,
                display_name=account.display_name or "",
                assigned=assigned[account_id],
                done=done[account_id],
                last_submitted_at=last.get(account_id),
            )
            for account_id, account in sorted(accounts.items(), key=lambda kv: kv[1].username)
        ]
        pairs = [
            PairProgress(
                system_a=names.get(sa, str(sa)),
                system_b=names.get(sb, str(sb)),
                items=int(n),
                needed=int(needed or 0),
                done=pair_done[(sa, sb)],
            )
            for sa, sb, n, needed in pair_items
        ]
        return StudyProgress(study=row.name, status=row.status, raters=raters, pairs=pairs)


@dataclass
class FlaggedInfo:
    case_key: str
    system: str
    reason: str
    text: str


def flagged_reports(store: Store, study: int | str) -> list[FlaggedInfo]:
    with store.session() as session:
        row = _study(session, study)
        result = session.execute(
            select(Case.case_key, System.name, FlaggedReport.reason, Generation.text)
            .join(Generation, Generation.id == FlaggedReport.generation_id)
            .join(Case, Case.id == Generation.case_id)
            .outerjoin(System, System.id == Generation.system_id)
            .where(FlaggedReport.study_id == row.id)
            .order_by(Case.case_key)
        ).all()
        return [FlaggedInfo(k, s or "?", r, t) for k, s, r, t in result]


@dataclass
class DesignChoices:
    """What a study can be built from: benchmarks with their splits, and systems."""

    splits: dict[str, list[str]]
    systems: list[str]
    raters: list[str]


def design_choices(store: Store) -> DesignChoices:
    with store.session() as session:
        splits: dict[str, list[str]] = defaultdict(list)
        for name, split in session.execute(
            select(Benchmark.name, Case.split)
            .join(Case, Case.benchmark_id == Benchmark.id)
            .distinct()
            .order_by(Benchmark.name, Case.split)
        ):
            splits[name].append(split)
        systems = list(session.scalars(select(System.name).order_by(System.name)))
        raters = list(
            session.scalars(
                select(Account.username)
                .where(Account.role == "rater", Account.active.is_(True))
                .order_by(Account.username)
            )
        )
        return DesignChoices(dict(splits), systems, raters)


def parse_gold_lines(text: str) -> list[GoldSpec]:
    """Gold items from lines 'case_key, better system, worse system[, both_bad]'."""
    gold = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) not in (3, 4) or not all(parts[:3]):
            raise StudyError(
                f"gold line {number}: write 'case_key, better system, worse system' "
                "(optionally ', both_bad')"
            )
        gold.append(
            GoldSpec(parts[0], parts[1], parts[2], parts[3] if len(parts) == 4 else "better")
        )
    return gold
