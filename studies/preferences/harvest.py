"""Preference harvesting: a study's judgments to DPO preference pairs in TRL's vision format.

A study item is one case and two reports (system A, system B). Its current judgments (the
ones no correction supersedes, one per rater: a rater's duplicate of an item counts once,
with the latest answer) are aggregated into votes; a `HarvestPolicy` decides which items
become pairs. Ties can be kept for an IPO-style loss (as both orderings, which pulls the
margin towards zero); "both unacceptable" can pair the human reference as chosen against
each report. Optional automatic cold-start pairs put the reference report against a
generated report in which the clinical metric finds a significant error; they are always
labelled `automatic`.

Pairs are split into train / validation by case (no case in both) and exported as a Hugging
Face `datasets` folder (`hf/`), as JSONL plus an image folder, with a data card (README.md)
and a manifest (export.json) that say how the export was made.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from model.prompts import RESEARCH_NOTICE, get_prompt, prompt_for_task
from model.training import assistant_message, preference_rows_to_dataset, prompt_messages
from studies.preferences.policy import HarvestPolicy, PreferenceError
from studies.readers.adjudication import ADJUDICATION_KIND, adjudicated_answers
from studies.readers.form import WINNERS, criteria
from studies.readers.judgments import current_judgments, study_form
from studies.readers.study_export import study_cases_synthetic
from studies.store.db import Store
from studies.store.media import MediaPathError, resolve_media
from studies.store.schema import (
    Benchmark,
    Case,
    Generation,
    Study,
    StudyItem,
    System,
)
from studies.systems.runs import for_current_content

REFERENCE_SYSTEM = "reference (human)"
# The chosen side of an on-policy pair: a clinician's correction of the model's report.
CORRECTION_SYSTEM = "clinician correction"
EXPORT_FORMAT_VERSION = "1"


@dataclass
class PreferencePair:
    case_id: int
    case_key: str
    benchmark: str
    images: list[Path]
    question: str | None
    prompt: list[dict[str, Any]]
    chosen: str
    rejected: str
    chosen_system: str
    rejected_system: str
    source: str  # human | human+reference | automatic | correction
    label: str  # preferred | tie | both_bad | clinical_error | corrected
    n_raters: int
    agreement: float | None
    votes: dict[str, int]
    likert_margin: float | None = None
    item_id: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    split: str = "train"

    def provenance(self, study: str, policy: HarvestPolicy) -> dict[str, Any]:
        return {
            "study": study,
            "benchmark": self.benchmark,
            "case_id": self.case_id,
            "case_key": self.case_key,
            "item_id": self.item_id,
            "chosen_system": self.chosen_system,
            "rejected_system": self.rejected_system,
            "source": self.source,
            "automatic": self.source == "automatic",
            "label": self.label,
            "n_raters": self.n_raters,
            "agreement": self.agreement,
            "votes": self.votes,
            "likert_margin": self.likert_margin,
            "detail": self.detail,
            "split": self.split,
            "policy": policy.to_dict(),
            "policy_hash": policy.hash,
        }


@dataclass
class HarvestResult:
    study: str
    study_config_hash: str | None
    policy: HarvestPolicy
    pairs: list[PreferencePair]
    counts: dict[str, Any]
    synthetic: bool
    benchmarks: list[str]

    @property
    def train(self) -> list[PreferencePair]:
        return [p for p in self.pairs if p.split == "train"]

    @property
    def validation(self) -> list[PreferencePair]:
        return [p for p in self.pairs if p.split == "validation"]

    def preview(self, limit: int = 20) -> list[dict[str, Any]]:
        """Flat rows for a table: case, systems, label, agreement and the two texts."""
        return [
            {
                "split": p.split,
                "case": p.case_key,
                "source": p.source,
                "label": p.label,
                "chosen_system": p.chosen_system,
                "rejected_system": p.rejected_system,
                "n_raters": p.n_raters,
                "agreement": p.agreement,
                "likert_margin": p.likert_margin,
                "chosen": p.chosen,
                "rejected": p.rejected,
            }
            for p in self.pairs[:limit]
        ]


@dataclass
class ExportSummary:
    out_dir: Path
    n_train: int
    n_validation: int
    n_images: int
    data_hash: str
    manifest: dict[str, Any]


# --- reading the judgments --------------------------------------------------------------


@dataclass
class _Vote:
    rater_id: int
    winner: str
    likert: dict[str, Any]


def _study(session, name: str) -> Study:
    study = session.scalar(select(Study).where(Study.name == name))
    if study is None:
        known = sorted(session.scalars(select(Study.name)).all())
        hint = ", ".join(known) if known else "none yet"
        raise PreferenceError(f"unknown study {name!r}; studies: {hint}")
    return study


def _current_votes(session, study_id: int) -> dict[int, list[_Vote]]:
    """item id -> one vote per rater from the current (non-superseded) judgments."""
    rows = sorted(
        current_judgments(session, study_id),
        key=lambda row: (row[0].submitted_at, row[0].id),
    )
    latest: dict[tuple[int, int], _Vote] = {}
    for judgment, assignment in rows:
        item_id = assignment.item_id
        if judgment.winner not in WINNERS:
            continue
        # Later rows win: a rater's duplicate of the same item counts once (latest answer).
        latest[(item_id, judgment.rater_id)] = _Vote(
            judgment.rater_id, judgment.winner, dict(judgment.likert or {})
        )
    by_item: dict[int, list[_Vote]] = defaultdict(list)
    for (item_id, _rater), vote in latest.items():
        by_item[item_id].append(vote)
    return by_item


def _check_policy_criteria(policy: HarvestPolicy, study: Study) -> None:
    """PreferenceError when the policy names a criterion the study's form does not have."""
    keys = [c.key for c in criteria(study_form(study.config))]
    for option, named in (
        ("likert_criteria", policy.likert_criteria or []),
        ("likert_lower_is_better", policy.likert_lower_is_better),
    ):
        unknown = [key for key in named if key not in keys]
        if unknown:
            raise PreferenceError(
                f"{option}: study {study.name!r} has no criterion {unknown[0]!r}; "
                f"its form's criteria are {', '.join(keys)}"
            )


def _mean_score(
    scores: dict[str, Any], criteria: list[str] | None, invert: set[str]
) -> float | None:
    values = []
    for name, value in scores.items():
        if criteria is not None and name not in criteria:
            continue
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        values.append(-float(value) if name in invert else float(value))
    return sum(values) / len(values) if values else None


def _likert_margin(votes: list[_Vote], winner: str, policy: HarvestPolicy) -> float | None:
    loser = "b" if winner == "a" else "a"
    invert = set(policy.likert_lower_is_better)
    margins = []
    for vote in votes:
        win = _mean_score(vote.likert.get(winner) or {}, policy.likert_criteria, invert)
        lose = _mean_score(vote.likert.get(loser) or {}, policy.likert_criteria, invert)
        if win is not None and lose is not None:
            margins.append(win - lose)
    return sum(margins) / len(margins) if margins else None


def _case_images(benchmark: Benchmark, case: Case) -> list[Path]:
    if case.modality != "image":
        raise PreferenceError(
            f"case {case.case_key!r} is a {case.modality}; preference pairs hold images only"
        )
    paths = []
    for entry in case.media:
        try:
            path = resolve_media(benchmark.root, entry["path"])
        except MediaPathError as exc:
            raise PreferenceError(f"case {case.case_key!r}: {exc}") from None
        if not path.is_file():
            raise PreferenceError(
                f"case {case.case_key!r}: image {entry['path']!r} is missing under "
                f"{benchmark.root}; restore it or re-import the benchmark"
            )
        paths.append(path)
    return paths


def _case_fields(benchmark: Benchmark, case: Case, policy: HarvestPolicy) -> dict[str, Any]:
    """What every pair of an image case carries of it: the case, its images, and the prompt
    (the policy's, else the benchmark task's) as the model was asked."""
    images = _case_images(benchmark, case)
    template = get_prompt(policy.prompt) if policy.prompt else prompt_for_task(benchmark.task)
    return {
        "case_id": case.id,
        "case_key": case.case_key,
        "benchmark": benchmark.name,
        "images": images,
        "question": case.question,
        "prompt": prompt_messages(template, len(images), case.question),
    }


# --- harvesting -----------------------------------------------------------------------


def harvest_preferences(
    store: Store, study_name: str, policy: HarvestPolicy | None = None
) -> HarvestResult:
    """Preference pairs from a study's current judgments under `policy` (writes nothing)."""
    policy = policy or HarvestPolicy()
    policy.validate()
    dropped: Counter[str] = Counter()
    pairs: list[PreferencePair] = []
    with store.session() as session:
        study = _study(session, study_name)
        _check_policy_criteria(policy, study)
        votes_by_item = _current_votes(session, study.id)
        adjudicated = adjudicated_answers(session, study.id) if policy.adjudication == "use" else {}
        items = session.scalars(
            select(StudyItem).where(StudyItem.study_id == study.id).order_by(StudyItem.id)
        ).all()
        systems = {s.id: s.name for s in session.scalars(select(System)).all()}
        cases: dict[int, Case] = {}
        benchmarks: dict[int, Benchmark] = {}
        generations: dict[int, Generation] = {}

        def case_of(case_id: int) -> Case:
            if case_id not in cases:
                cases[case_id] = session.get(Case, case_id)
            return cases[case_id]

        def benchmark_of(case: Case) -> Benchmark:
            if case.benchmark_id not in benchmarks:
                benchmarks[case.benchmark_id] = session.get(Benchmark, case.benchmark_id)
            return benchmarks[case.benchmark_id]

        def text_of(generation_id: int) -> str:
            if generation_id not in generations:
                generations[generation_id] = session.get(Generation, generation_id)
            return generations[generation_id].text

        n_judged = 0
        n_votes = 0
        for item in items:
            if item.kind in (ADJUDICATION_KIND, "calibration"):
                # A senior rater's answer counts through the item it settles, never alone;
                # training (calibration) cases are not study data.
                continue
            if item.kind == "gold" and not policy.include_gold:
                if votes_by_item.get(item.id):
                    dropped["gold_item"] += 1
                continue
            votes = votes_by_item.get(item.id, [])
            if not votes:
                continue
            n_judged += 1
            n_votes += len(votes)
            if len(votes) < policy.min_raters:
                dropped["too_few_raters"] += 1
                continue
            tally = Counter(v.winner for v in votes)
            ranked = tally.most_common()
            settled = adjudicated.get(item.id)
            detail: dict[str, Any] = {}
            if settled is not None and settled.winner in WINNERS:
                # The adjudicated outcome decides; agreement says how many raters had it.
                outcome = settled.winner
                agreement = tally.get(outcome, 0) / len(votes)
                detail["adjudication"] = settled.provenance()
            else:
                if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
                    dropped["no_majority"] += 1
                    continue
                outcome, count = ranked[0]
                agreement = count / len(votes)
                if agreement < policy.min_agreement:
                    dropped["low_agreement"] += 1
                    continue
            case = case_of(item.case_id)
            benchmark = benchmark_of(case)
            if case.modality != "image":
                dropped["not_an_image_case"] += 1
                continue
            text = {"a": text_of(item.generation_a_id), "b": text_of(item.generation_b_id)}
            name = {
                "a": systems.get(item.system_a_id, "?"),
                "b": systems.get(item.system_b_id, "?"),
            }
            common = {
                **_case_fields(benchmark, case, policy),
                "n_raters": len(votes),
                "agreement": round(agreement, 6),
                "votes": {w: tally.get(w, 0) for w in WINNERS},
                "item_id": item.id,
                "detail": detail,
            }
            if outcome in ("a", "b"):
                loser = "b" if outcome == "a" else "a"
                margin = _likert_margin(votes, outcome, policy)
                if policy.min_likert_margin is not None and (
                    margin is None or margin < policy.min_likert_margin
                ):
                    dropped["likert_margin" if margin is not None else "no_likert"] += 1
                    continue
                pairs.append(
                    PreferencePair(
                        chosen=text[outcome],
                        rejected=text[loser],
                        chosen_system=name[outcome],
                        rejected_system=name[loser],
                        source="human",
                        label="preferred",
                        likert_margin=None if margin is None else round(margin, 6),
                        **common,
                    )
                )
            elif outcome == "tie":
                if policy.ties == "drop":
                    dropped["tie"] += 1
                    continue
                for first, second in (("a", "b"), ("b", "a")):
                    pairs.append(
                        PreferencePair(
                            chosen=text[first],
                            rejected=text[second],
                            chosen_system=name[first],
                            rejected_system=name[second],
                            source="human",
                            label="tie",
                            **common,
                        )
                    )
            else:  # both_bad
                reference = case.references[0] if case.references else None
                if policy.both_bad == "drop":
                    dropped["both_bad"] += 1
                    continue
                if not reference:
                    dropped["both_bad_without_reference"] += 1
                    continue
                for side in ("a", "b"):
                    pairs.append(
                        PreferencePair(
                            chosen=reference,
                            rejected=text[side],
                            chosen_system=REFERENCE_SYSTEM,
                            rejected_system=name[side],
                            source="human+reference",
                            label="both_bad",
                            **common,
                        )
                    )
        n_human = len(pairs)
        if policy.automatic:
            pairs.extend(
                _automatic_pairs(
                    session, items, policy, case_of, benchmark_of, text_of, systems, dropped
                )
            )
        # Synthetic is a property of the study's cases, judged or not (an unjudged study too).
        synthetic = any(b.synthetic for b in benchmarks.values()) or study_cases_synthetic(
            session, study.id
        )
        benchmark_names = sorted(b.name for b in benchmarks.values())
        config_hash = study.config_hash
        name_of_study = study.name

    return _result(
        name_of_study,
        config_hash,
        policy,
        pairs,
        dropped,
        items=len(items),
        items_judged=n_judged,
        current_judgments=n_votes,
        human_candidates=n_human,
        synthetic=synthetic,
        benchmarks=benchmark_names,
    )


def _result(
    study: str,
    config_hash: str | None,
    policy: HarvestPolicy,
    pairs: list[PreferencePair],
    dropped: Counter[str],
    *,
    items: int,
    items_judged: int,
    current_judgments: int,
    human_candidates: int,
    synthetic: bool,
    benchmarks: list[str],
) -> HarvestResult:
    """A harvest's pairs deduplicated and split by case, with the counts its manifest shows
    (the judgments' harvest and the corrections' alike)."""
    pairs = _deduplicate(pairs, dropped)
    _split_by_case(pairs, policy)
    counts = {
        "items": items,
        "items_judged": items_judged,
        "current_judgments": current_judgments,
        "pairs": len(pairs),
        "human_pairs": sum(1 for p in pairs if p.source != "automatic"),
        "automatic_pairs": sum(1 for p in pairs if p.source == "automatic"),
        "human_candidates": human_candidates,
        "train": sum(1 for p in pairs if p.split == "train"),
        "validation": sum(1 for p in pairs if p.split == "validation"),
        "cases_train": len({p.case_id for p in pairs if p.split == "train"}),
        "cases_validation": len({p.case_id for p in pairs if p.split == "validation"}),
        "dropped": dict(sorted(dropped.items())),
    }
    return HarvestResult(
        study=study,
        study_config_hash=config_hash,
        policy=policy,
        pairs=pairs,
        counts=counts,
        synthetic=synthetic,
        benchmarks=benchmarks,
    )


def _automatic_pair(
    case: Case,
    benchmark: Benchmark,
    report: str,
    system_name: str,
    policy: HarvestPolicy,
    dropped: Counter[str],
    item_id: int | None = None,
) -> PreferencePair | None:
    """Reference (chosen) vs `report` when the clinical metric finds a significant error."""
    from metrics.clinical import score_findings

    reference = case.references[0] if case.references else None
    if not reference:
        return None
    if benchmark.task not in ("report", "video-report") or case.modality != "image":
        return None
    truth = case.findings if case.findings else reference
    try:
        score = score_findings(report, truth)
    except ValueError:
        dropped["automatic_unscorable"] += 1
        return None
    if score.significant_errors < 1:
        return None
    return PreferencePair(
        **_case_fields(benchmark, case, policy),
        chosen=reference,
        rejected=report,
        chosen_system=REFERENCE_SYSTEM,
        rejected_system=system_name,
        source="automatic",
        label="clinical_error",
        n_raters=0,
        agreement=None,
        votes={},
        item_id=item_id,
        detail={
            "significant_errors": score.significant_errors,
            "error_kinds": sorted({e.kind for e in score.errors if e.significant}),
            "against": "findings" if case.findings else "reference text",
        },
    )


def _automatic_pairs(
    session, items, policy, case_of, benchmark_of, text_of, systems, dropped
) -> list[PreferencePair]:
    """Automatic pairs for every distinct report of the study's items."""
    out: list[PreferencePair] = []
    seen: set[tuple[int, int]] = set()
    for item in items:
        for generation_id, system_id in (
            (item.generation_a_id, item.system_a_id),
            (item.generation_b_id, item.system_b_id),
        ):
            if (item.case_id, generation_id) in seen:
                continue
            seen.add((item.case_id, generation_id))
            case = case_of(item.case_id)
            pair = _automatic_pair(
                case,
                benchmark_of(case),
                text_of(generation_id),
                systems.get(system_id, "?"),
                policy,
                dropped,
                item.id,
            )
            if pair is not None:
                out.append(pair)
    return out


def harvest_automatic(
    store: Store,
    benchmark_name: str,
    systems: list[str],
    split: str = "train",
    policy: HarvestPolicy | None = None,
) -> HarvestResult:
    """Cold-start pairs before any study: every cached report of `systems` on a benchmark
    split in which the clinical metric finds a significant error, against the reference.

    Use the train split so that the test cases stay unseen. Every pair is `automatic`.
    """
    policy = policy or HarvestPolicy()
    policy.validate()
    if not systems:
        raise PreferenceError("name at least one system whose reports are paired")
    dropped: Counter[str] = Counter()
    pairs: list[PreferencePair] = []
    with store.session() as session:
        benchmark = session.scalar(select(Benchmark).where(Benchmark.name == benchmark_name))
        if benchmark is None:
            known = sorted(session.scalars(select(Benchmark.name)).all())
            raise PreferenceError(
                f"unknown benchmark {benchmark_name!r}; imported: {', '.join(known) or 'none'}"
            )
        rows = {s.name: s.id for s in session.scalars(select(System)).all()}
        missing = [name for name in systems if name not in rows]
        if missing:
            raise PreferenceError(
                f"unknown system(s) {', '.join(missing)}; registered: {', '.join(sorted(rows))}"
            )
        cases = session.scalars(
            select(Case)
            .where(Case.benchmark_id == benchmark.id, Case.split == split)
            .order_by(Case.id)
        ).all()
        case_ids = [c.id for c in cases]
        n_reports = 0
        for name in systems:
            generations = for_current_content(
                session.scalars(
                    select(Generation)
                    .where(Generation.system_id == rows[name], Generation.case_id.in_(case_ids))
                    .order_by(Generation.case_id, Generation.id)
                ),
                cases,
            )
            latest = {g.case_id: g for g in generations}  # newest report per case
            n_reports += len(latest)
            by_id = {c.id: c for c in cases}
            for case_id, generation in latest.items():
                pair = _automatic_pair(
                    by_id[case_id], benchmark, generation.text, name, policy, dropped
                )
                if pair is not None:
                    pairs.append(pair)
        synthetic = benchmark.synthetic
    if n_reports == 0:
        raise PreferenceError(
            f"no cached reports of {', '.join(systems)} on {benchmark_name}/{split}; "
            f"run them first (medvision run --benchmark {benchmark_name} --split {split})"
        )
    pairs = _deduplicate(pairs, dropped)
    _split_by_case(pairs, policy)
    counts = {
        "items": n_reports,
        "items_judged": 0,
        "current_judgments": 0,
        "pairs": len(pairs),
        "human_pairs": 0,
        "automatic_pairs": len(pairs),
        "human_candidates": 0,
        "train": sum(1 for p in pairs if p.split == "train"),
        "validation": sum(1 for p in pairs if p.split == "validation"),
        "cases_train": len({p.case_id for p in pairs if p.split == "train"}),
        "cases_validation": len({p.case_id for p in pairs if p.split == "validation"}),
        "dropped": dict(sorted(dropped.items())),
    }
    return HarvestResult(
        study=f"automatic:{benchmark_name}/{split}",
        study_config_hash=None,
        policy=policy,
        pairs=pairs,
        counts=counts,
        synthetic=synthetic,
        benchmarks=[benchmark_name],
    )


def _norm(text: str) -> str:
    return " ".join(text.split()).lower()


def _deduplicate(pairs: list[PreferencePair], dropped: Counter[str]) -> list[PreferencePair]:
    """One pair per (case, chosen text, rejected text); human pairs win over automatic ones."""
    ordered = sorted(pairs, key=lambda p: p.source == "automatic")
    seen: set[tuple[int, str, str]] = set()
    kept = []
    for pair in ordered:
        if _norm(pair.chosen) == _norm(pair.rejected):
            dropped["identical_texts"] += 1
            continue
        key = (pair.case_id, _norm(pair.chosen), _norm(pair.rejected))
        if key in seen:
            dropped["duplicate"] += 1
            continue
        seen.add(key)
        kept.append(pair)
    return kept


def _split_by_case(pairs: list[PreferencePair], policy: HarvestPolicy) -> None:
    """Assign whole cases to validation (seeded); the rest, and every pair of them, train."""
    case_ids = sorted({p.case_id for p in pairs})
    n_validation = 0
    if policy.validation_fraction > 0 and len(case_ids) >= 2:
        n_validation = max(1, round(policy.validation_fraction * len(case_ids)))
        n_validation = min(n_validation, len(case_ids) - 1)
    rng = random.Random(policy.seed)
    shuffled = case_ids[:]
    rng.shuffle(shuffled)
    validation = set(shuffled[:n_validation])
    for pair in pairs:
        pair.split = "validation" if pair.case_id in validation else "train"


# --- export ---------------------------------------------------------------------------


def _file_sha(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _data_card(manifest: dict[str, Any]) -> str:
    counts = manifest["counts"]
    policy = manifest["policy"]
    title = (
        f"# Automatic preference pairs ({manifest['study'].removeprefix('automatic:')})"
        if manifest["study"].startswith("automatic:")
        else f"# Preference pairs from reader study `{manifest['study']}`"
    )
    lines = [
        title,
        "",
        f"**{RESEARCH_NOTICE}** For research use only.",
        "",
    ]
    if manifest["synthetic"]:
        lines += ["**Synthetic data**: the cases and reports are synthetic.", ""]
    lines += [
        f"- Created: {manifest['created_at']}",
        f"- Study configuration hash: `{manifest['study_config_hash']}`",
        f"- Benchmarks: {', '.join(manifest['benchmarks']) or '-'}",
        f"- Pairs: {counts['pairs']} ({counts['train']} train / {counts['validation']} "
        f"validation; {counts['cases_train']} / {counts['cases_validation']} cases, no case in "
        "both splits)",
        f"- Human-judged pairs: {counts['human_pairs']}; automatic pairs: "
        f"{counts['automatic_pairs']}",
        f"- Judged items: {counts['items_judged']} of {counts['items']}; current judgments: "
        f"{counts['current_judgments']}",
        f"- Dropped: {json.dumps(counts['dropped'], sort_keys=True)}",
        f"- Split seed: {policy['seed']}; data sha256: `{manifest['data_hash']}`",
        "",
        "## How the pairs were made",
        "",
        "Each study item's current judgments (superseded ones excluded, one per rater) are "
        "aggregated; the unique most frequent outcome wins when the policy below accepts it. "
        "`a`/`b` wins give the winning report as chosen. Ties, when kept, appear in both "
        "orders (train these with `loss_type=ipo`). 'Both unacceptable', when paired with the "
        "reference, gives the human reference as chosen against each report. Automatic pairs "
        "(`provenance.automatic = true`) put the reference report against a generated report "
        "in which the clinical metric found a clinically significant error; no clinician "
        "judged them. On-policy pairs from an annotation study (`provenance.source = "
        "correction`) put a clinician's correction of the model's report (chosen) against "
        "the model's own output (rejected); `provenance.detail` names the annotation, the "
        "annotator, the generation and the system.",
        "",
        "```json",
        json.dumps(policy, indent=2, sort_keys=True),
        "```",
        "",
        "## Format",
        "",
        "TRL's vision preference format: `prompt` (chat messages: system text, then the user "
        'turn with one `{"type": "image"}` block per image followed by the instruction), '
        "`chosen` and `rejected` (one assistant message each), `images` (list of image files).",
        "",
        "- `hf/`: a `datasets` DatasetDict (`datasets.load_from_disk`), images embedded, "
        "`provenance` as a JSON string.",
        "- `train.jsonl`, `validation.jsonl`: one row per pair, `images` relative to this "
        "folder (`images/<sha256>.<ext>`), `provenance` as an object (study, case, systems, "
        "number of raters, agreement, votes, policy).",
        "",
        "Train: `medvision train dpo --prefs THIS_FOLDER --model MODEL --out ADAPTER`.",
        "",
    ]
    return "\n".join(lines)


def _record(pair: PreferencePair, result: HarvestResult, images: list[str]) -> dict[str, Any]:
    """One pair as the export writes it (TRL's vision preference format plus provenance)."""
    return {
        "prompt": pair.prompt,
        "chosen": assistant_message(pair.chosen),
        "rejected": assistant_message(pair.rejected),
        "images": images,
        "provenance": pair.provenance(result.study, result.policy),
    }


def preference_records(result: HarvestResult) -> list[dict[str, Any]]:
    """The pairs of a harvest as the export's records, `images` as absolute paths (what
    `export_preferences` writes, before it copies the images next to the JSONL)."""
    return [_record(pair, result, [str(path) for path in pair.images]) for pair in result.pairs]


def harvest_corrections(
    store: Store, study_name: str, corrections: list[Any], policy: HarvestPolicy | None = None
) -> HarvestResult:
    """On-policy pairs from an annotation study: each clinician's correction of the model's
    report is chosen, the model's own output rejected (source `correction`). `corrections`
    are studies.readers.annotation_results.corrections(...) (annotation, case, annotator,
    system, generation, both texts); a correction equal to the model's text gives no pair."""
    policy = policy or HarvestPolicy()
    policy.validate()
    dropped: Counter[str] = Counter()
    pairs: list[PreferencePair] = []
    with store.session() as session:
        study = _study(session, study_name)
        benchmarks: dict[int, Benchmark] = {}
        for correction in corrections:
            case = session.get(Case, correction.case_id)
            if case.benchmark_id not in benchmarks:
                benchmarks[case.benchmark_id] = session.get(Benchmark, case.benchmark_id)
            benchmark = benchmarks[case.benchmark_id]
            if case.modality != "image":
                dropped["not_an_image_case"] += 1
                continue
            pairs.append(
                PreferencePair(
                    **_case_fields(benchmark, case, policy),
                    chosen=correction.corrected_report,
                    rejected=correction.model_report,
                    chosen_system=CORRECTION_SYSTEM,
                    rejected_system=correction.system,
                    source="correction",
                    label="corrected",
                    n_raters=1,
                    agreement=None,
                    votes={},
                    detail={
                        "annotation_id": correction.annotation_id,
                        "annotator": correction.annotator,
                        "generation_id": correction.generation_id,
                        "system": correction.system,
                    },
                )
            )
        synthetic = any(b.synthetic for b in benchmarks.values())
        config_hash, name = study.config_hash, study.name
    cases = len({c.case_id for c in corrections})
    return _result(
        name,
        config_hash,
        policy,
        pairs,
        dropped,
        items=cases,
        items_judged=cases,
        current_judgments=len(corrections),
        human_candidates=len(corrections),  # every pair a correction: none automatic
        synthetic=synthetic,
        benchmarks=sorted(b.name for b in benchmarks.values()),
    )


def out_dir_taken(out: Path) -> bool:
    """A destination an export refuses unless told to overwrite: a file, or a non-empty folder."""
    return out.exists() and (not out.is_dir() or any(out.iterdir()))


def export_preferences(
    result: HarvestResult, out_dir: Path | str, overwrite: bool = False
) -> ExportSummary:
    """Write the harvest as hf/ + JSONL + images/ + README.md + export.json.

    The folder is written next to its destination and moved in place at the end, so a
    failure leaves nothing half-written; an existing non-empty folder is refused unless
    `overwrite`.
    """
    out = Path(out_dir)
    if not result.pairs:
        raise PreferenceError(
            f"study {result.study!r} gives no preference pairs under this policy "
            f"(dropped: {json.dumps(result.counts['dropped'], sort_keys=True)}); relax the policy"
        )
    if out_dir_taken(out) and not overwrite:
        raise PreferenceError(f"{out} exists and is not empty; choose another folder or overwrite")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    except OSError as exc:
        raise PreferenceError(
            f"cannot write into {out.parent}: {exc.strerror or exc}; choose another folder"
        ) from None
    try:
        images_dir = staging / "images"
        images_dir.mkdir()
        copied: dict[Path, str] = {}
        rows_by_split: dict[str, list[dict[str, Any]]] = {"train": [], "validation": []}
        digest = hashlib.sha256()
        for pair in result.pairs:
            rel_images = []
            for path in pair.images:
                if path not in copied:
                    sha = _file_sha(path)
                    name = f"{sha}{path.suffix.lower() or '.png'}"
                    if not (images_dir / name).exists():
                        shutil.copyfile(path, images_dir / name)
                    copied[path] = f"images/{name}"
                rel_images.append(copied[path])
            row = _record(pair, result, rel_images)
            digest.update(
                json.dumps(
                    {k: row[k] for k in ("prompt", "chosen", "rejected", "images")}, sort_keys=True
                ).encode()
            )
            rows_by_split[pair.split].append(row)
        for split, rows in rows_by_split.items():
            with (staging / f"{split}.jsonl").open("w", encoding="utf-8") as handle:
                for row in rows:
                    handle.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
        from datasets import DatasetDict

        splits = {
            split: preference_rows_to_dataset(rows, staging, f"{split}.jsonl")
            for split, rows in rows_by_split.items()
            if rows
        }
        DatasetDict(splits).save_to_disk(str(staging / "hf"))
        manifest = {
            "format": "trl-vision-preference",
            "format_version": EXPORT_FORMAT_VERSION,
            "study": result.study,
            "study_config_hash": result.study_config_hash,
            "benchmarks": result.benchmarks,
            "synthetic": result.synthetic,
            "policy": result.policy.to_dict(),
            "policy_hash": result.policy.hash,
            "counts": result.counts,
            "data_hash": digest.hexdigest(),
            "n_images": len(set(copied.values())),
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "research_use": RESEARCH_NOTICE,
        }
        (staging / "export.json").write_text(
            json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
        (staging / "README.md").write_text(_data_card(manifest), encoding="utf-8")
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ExportSummary(
        out_dir=out,
        n_train=len(rows_by_split["train"]),
        n_validation=len(rows_by_split["validation"]),
        n_images=manifest["n_images"],
        data_hash=manifest["data_hash"],
        manifest=manifest,
    )
