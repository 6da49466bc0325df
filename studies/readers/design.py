"""A reader study's design: `StudyDesign` (what a researcher chooses, frozen and hashed
at start), the identity filter for blinding, creating and updating drafts, looking a study up
and taking its write lock, and the choices a new design can draw on."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from itertools import combinations
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from studies.readers.form import DEFAULT_GUIDELINES, FormError, check_form, default_form
from studies.store.audit import record
from studies.store.db import Store
from studies.store.schema import (
    Account,
    Benchmark,
    Case,
    Study,
    System,
)

COMPARISONS = ("all_pairs", "comparator")
# A comparison study: raters judge pairs of reports. An annotation study: clinicians write or
# correct each case's reference report and structured findings (studies.readers.annotation).
STUDY_KINDS = ("comparison", "annotation")
ANNOTATION_KIND = "annotation"  # the study kind, and the kind of its items
# corrected: the annotator edits the model's report; written: from a blank page (the study
# still names the model: its reports anchor the items, study_items needs a report).
ANNOTATION_SOURCES = ("corrected", "written")
# What happens to a case a rater flags as one they cannot assess (studies.readers.flags):
# handed to another active rater who has not seen it (the overlap is kept), or that copy is
# left out of the analysis and counted as excluded.
FLAG_POLICIES = ("reassign", "exclude")
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
    # Washout of duplicates: at least this many other tasks between a case and its duplicate
    # (None: a third of the rater's tasks, relaxed where a short list cannot hold it) ...
    washout_cases: int | None = None
    # ... and at least this many days after the original was judged (0: no wait).
    washout_days: float = 0.0
    # Calibration: training items every rater judges first, each answered by the reference
    # after submit (studies.readers.calibration); with a threshold, the main study opens to a
    # rater only when that share of their calibration answers matched the reference.
    calibration: list[GoldSpec] = field(default_factory=list)
    calibration_threshold: float = 0.0
    kind: str = "comparison"
    annotation_source: str = "corrected"
    flag_policy: str = "reassign"
    guidelines: str = DEFAULT_GUIDELINES
    form: dict[str, Any] = field(default_factory=default_form)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StudyDesign:
        values = dict(data)
        values["gold"] = [GoldSpec(**g) for g in values.get("gold", [])]
        values["calibration"] = [GoldSpec(**g) for g in values.get("calibration", [])]
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in values.items() if k in known})

    def check(self) -> None:
        """StudyError naming the field when the design cannot work."""
        if not self.name.strip():
            raise StudyError("name: give the study a name")
        if self.kind not in STUDY_KINDS:
            raise StudyError(f"kind: use one of {', '.join(STUDY_KINDS)}")
        if self.kind == ANNOTATION_KIND:
            self._check_annotation()
        elif len(set(self.systems)) < 2:
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
        if self.washout_cases is not None and (
            not isinstance(self.washout_cases, int) or self.washout_cases < 1
        ):
            raise StudyError("washout_cases: a whole number of tasks >= 1, or none")
        if not 0 <= self.washout_days <= 365:
            raise StudyError("washout_days: between 0 and 365 days")
        if not 0 <= self.calibration_threshold <= 1:
            raise StudyError("calibration_threshold: a share between 0 and 1, e.g. 0.8")
        if self.calibration_threshold > 0 and not self.calibration:
            raise StudyError("calibration_threshold: add calibration items first")
        if self.flag_policy not in FLAG_POLICIES:
            raise StudyError(f"flag_policy: use one of {', '.join(FLAG_POLICIES)}")
        overlap_keys = {g.case_key for g in self.gold} & {c.case_key for c in self.calibration}
        if overlap_keys:
            raise StudyError(
                f"calibration: case {sorted(overlap_keys)[0]!r} is also a gold item; use "
                "other cases for calibration"
            )
        for number, gold in enumerate(self.calibration, start=1):
            if gold.better == gold.worse or {gold.better, gold.worse} - set(self.systems):
                raise StudyError(
                    f"calibration item {number}: better and worse must be two of the "
                    "study's systems"
                )
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

    def _check_annotation(self) -> None:
        if len(self.systems) != 1:
            raise StudyError(
                "systems: an annotation study names exactly one system, the model whose "
                "report each annotator corrects (with annotation_source 'written' its reports "
                f"are not shown, annotators write from scratch); {len(self.systems)} named"
            )
        if self.annotation_source not in ANNOTATION_SOURCES:
            raise StudyError(f"annotation_source: use one of {', '.join(ANNOTATION_SOURCES)}")
        if self.gold or self.calibration:
            raise StudyError(
                "gold, calibration: an annotation study has no gold or training items (they "
                "compare two reports); remove them"
            )
        if self.overlap > 2:
            raise StudyError(
                "overlap: an annotation study is annotated once or twice per case (overlap 1 "
                "or 2); disagreements go to adjudication"
            )

    def pairs(self) -> list[tuple[str, str]]:
        """The compared pairs of system names (an annotation study: its one system, once)."""
        if self.kind == ANNOTATION_KIND:
            return [(self.systems[0], self.systems[0])]
        if self.comparisons == "comparator":
            return [(self.comparator, s) for s in self.systems if s != self.comparator]
        return list(combinations(self.systems, 2))


# --- identity filter ----------------------------------------------------------------


def identity_terms(systems: list[System]) -> list[str]:
    """Identity words plus everything that names the study's systems."""
    terms = set(IDENTITY_WORDS)
    for system in systems:
        config = system.config or {}
        terms.add(system.name.lower())
        # Remote systems name their model in `remote_model` (e.g. "org/EndoReporter-7B").
        for key in ("model", "adapter", "name", "base_model", "remote_model"):
            value = config.get(key)
            if isinstance(value, str) and value.strip():
                terms.add(value.strip().lower())
                terms.add(value.strip().rstrip("/").split("/")[-1].lower())
        # The server's host names the system as well ("endo-gpu.hospital.local").
        host = _url_host(config.get("remote_url"))
        if host:
            terms.add(host)
            if not _is_ip_address(host):  # "10" of 10.0.0.5 names nothing
                terms.add(host.split(".")[0])
    return sorted(t for t in terms if len(t) >= 3)


def _is_ip_address(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _url_host(url: object) -> str | None:
    """The host name of a URL, lower-cased; None for anything that is not one."""
    from urllib.parse import urlsplit

    if not isinstance(url, str) or not url.strip():
        return None
    try:
        host = urlsplit(url.strip()).hostname
    except ValueError:
        return None
    return host.lower() if host else None


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


def find_study(session: Session, study: int | str, *, lock: bool = False) -> Study:
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


def study_kind(study: Study) -> str:
    """A stored study's kind as its frozen design names it (one of STUDY_KINDS)."""
    return ((study.config or {}).get("design") or {}).get("kind", "comparison")


def flag_policy(study: Study) -> str:
    """What a stored study does with a flagged task (one of FLAG_POLICIES; "reassign" when
    its design predates the setting)."""
    return ((study.config or {}).get("design") or {}).get("flag_policy") or "reassign"


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


def systems_by_name(session: Session, names: list[str]) -> list[System]:
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
        systems = systems_by_name(session, design.systems)
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
        row = find_study(session, study, lock=True)
        if row.status != "draft":
            raise StudyError(
                f"study {row.name!r} has started (config {row.config_hash[:12]}); "
                "its design can no longer change. Create a new study instead."
            )
        _check_blind_text(design, systems_by_name(session, design.systems))
        row.config = {"design": design.to_dict()}
        row.guidelines = design.guidelines
        row.name = design.name.strip()
        record(session, actor_id, "study.update", "study", row.id)


def study_design(store: Store, study: int | str) -> StudyDesign:
    with store.session() as session:
        return StudyDesign.from_dict(find_study(session, study).config["design"])


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


def parse_gold_lines(text: str, what: str = "gold") -> list[GoldSpec]:
    """Gold (or, `what`="calibration", training) items from lines 'case_key, better system,
    worse system[, both_bad]'; a bad line is named as '<what> line N'."""
    gold = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) not in (3, 4) or not all(parts[:3]):
            raise StudyError(
                f"{what} line {number}: write 'case_key, better system, worse system' "
                "(optionally ', both_bad')"
            )
        gold.append(
            GoldSpec(parts[0], parts[1], parts[2], parts[3] if len(parts) == 4 else "better")
        )
    return gold
