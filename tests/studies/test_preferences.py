"""Preference harvesting: policies on both backends, with study rows inserted directly."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support.dpo import export_trains

from studies.preferences.harvest import (
    REFERENCE_SYSTEM,
    HarvestPolicy,
    PreferenceError,
    export_preferences,
    harvest_automatic,
    harvest_preferences,
)
from studies.store.db import Store
from studies.store.schema import (
    Account,
    Assignment,
    Benchmark,
    Case,
    Generation,
    Judgment,
    Study,
    StudyItem,
    System,
)

SYSTEMS = ("alpha", "beta", "gamma")
LIKERT_GOOD = {"accuracy": 5, "completeness": 4, "safety": 5}
LIKERT_BAD = {"accuracy": 2, "completeness": 2, "safety": 3}


class StudyBuilder:
    """Inserts a benchmark, cases, systems, generations, a study, items and judgments."""

    def __init__(self, store: Store, root: Path, n_cases: int = 6, modality: str = "image"):
        self.store = store
        self.root = root
        self.case_ids: list[int] = []
        self.system_ids: dict[str, int] = {}
        self.rater_ids: list[int] = []
        root.mkdir(parents=True, exist_ok=True)
        with store.session() as session:
            bench = Benchmark(
                name="synthetic-prefs",
                loader="synthetic-colon",
                root=str(root),
                task="report",
                synthetic=True,
            )
            session.add(bench)
            session.flush()
            for index in range(n_cases):
                rel = f"images/case{index}.png"
                pixels = np.random.default_rng(index).integers(0, 255, (40, 40, 3), dtype=np.uint8)
                (root / "images").mkdir(exist_ok=True)
                Image.fromarray(pixels).save(root / rel)
                case = Case(
                    benchmark_id=bench.id,
                    case_key=f"case{index}",
                    split="test",
                    modality=modality,
                    media=[{"path": rel, "sha256": "x", "kind": "image"}],
                    references=[f"Reference report {index}: sessile polyp 6 mm in the sigmoid."],
                    content_hash=f"h{index}",
                )
                session.add(case)
                session.flush()
                self.case_ids.append(case.id)
            for name in SYSTEMS:
                system = System(name=name, kind="template", config={}, fingerprint=f"fp-{name}")
                session.add(system)
                session.flush()
                self.system_ids[name] = system.id
            for r in range(4):
                account = Account(username=f"rater{r}", role="rater")
                session.add(account)
                session.flush()
                self.rater_ids.append(account.id)
            study = Study(name="study-1", status="active", config={"seed": 1}, config_hash="c" * 64)
            session.add(study)
            session.flush()
            self.study_id = study.id
        self._order = 0

    def generation(self, system: str, case_index: int, text: str | None = None) -> int:
        with self.store.session() as session:
            row = Generation(
                system_fingerprint=f"fp-{system}",
                system_id=self.system_ids[system],
                case_id=self.case_ids[case_index],
                prompt_hash=uuid.uuid4().hex,
                text=text or f"{system} report for case {case_index}",
            )
            session.add(row)
            session.flush()
            return row.id

    def item(
        self,
        case_index: int,
        a: str = "alpha",
        b: str = "beta",
        kind: str = "regular",
        text_a: str | None = None,
        text_b: str | None = None,
    ) -> int:
        gen_a = self.generation(a, case_index, text_a)
        gen_b = self.generation(b, case_index, text_b)
        with self.store.session() as session:
            row = StudyItem(
                study_id=self.study_id,
                case_id=self.case_ids[case_index],
                system_a_id=self.system_ids[a],
                system_b_id=self.system_ids[b],
                generation_a_id=gen_a,
                generation_b_id=gen_b,
                kind=kind,
            )
            session.add(row)
            session.flush()
            return row.id

    def judge(
        self,
        item_id: int,
        rater: int,
        winner: str,
        likert: dict | None = None,
        supersedes: int | None = None,
        duplicate: bool = False,
    ) -> int:
        with self.store.session() as session:
            assignment = (
                session.query(Assignment)
                .filter_by(item_id=item_id, rater_id=self.rater_ids[rater], is_duplicate=duplicate)
                .one_or_none()
            )
            if assignment is None:
                self._order += 1
                assignment = Assignment(
                    token=uuid.uuid4().hex,
                    study_id=self.study_id,
                    rater_id=self.rater_ids[rater],
                    item_id=item_id,
                    order_index=self._order,
                    a_on_left=True,
                    is_duplicate=duplicate,
                )
                session.add(assignment)
                session.flush()
            judgment = Judgment(
                assignment_id=assignment.id,
                rater_id=self.rater_ids[rater],
                submission_key=uuid.uuid4().hex,
                preference_shown=winner,
                winner=winner,
                likert=likert or {},
                supersedes_id=supersedes,
            )
            session.add(judgment)
            session.flush()
            return judgment.id


@pytest.fixture
def builder(store: Store, tmp_path: Path) -> StudyBuilder:
    return StudyBuilder(store, tmp_path / "bench")


def _by_case(result) -> dict[str, list]:
    out: dict[str, list] = {}
    for pair in result.pairs:
        out.setdefault(pair.case_key, []).append(pair)
    return out


def test_majority_supersession_and_provenance(builder: StudyBuilder, store: Store) -> None:
    first = builder.item(0)
    builder.judge(first, 0, "a")
    builder.judge(first, 1, "a")
    builder.judge(first, 2, "b")
    second = builder.item(1)
    wrong = builder.judge(second, 0, "a")
    builder.judge(second, 0, "b", supersedes=wrong)  # correction: only "b" counts
    split = builder.item(2)
    builder.judge(split, 0, "a")
    builder.judge(split, 1, "b")

    result = harvest_preferences(store, "study-1", HarvestPolicy(validation_fraction=0.0))
    pairs = _by_case(result)
    assert set(pairs) == {"case0", "case1"}
    (p0,) = pairs["case0"]
    assert (p0.chosen_system, p0.rejected_system) == ("alpha", "beta")
    assert p0.chosen == "alpha report for case 0"
    assert p0.n_raters == 3 and p0.agreement == pytest.approx(2 / 3)
    assert p0.votes == {"a": 2, "b": 1, "tie": 0, "both_bad": 0}
    (p1,) = pairs["case1"]
    assert (p1.chosen_system, p1.n_raters) == ("beta", 1)
    assert result.counts["dropped"] == {"no_majority": 1}
    assert result.synthetic is True
    # The user turn holds one image block per image, then the instruction text.
    user = p0.prompt[-1]
    assert user["role"] == "user"
    assert [b["type"] for b in user["content"]] == ["image", "text"]
    assert "colonoscopy report" in user["content"][-1]["text"]
    prov = p0.provenance("study-1", result.policy)
    assert prov["study"] == "study-1" and prov["case_key"] == "case0"
    assert prov["policy"]["min_raters"] == 1 and prov["automatic"] is False


def test_min_raters_and_agreement(builder: StudyBuilder, store: Store) -> None:
    three = builder.item(0)
    for rater, winner in enumerate(("a", "a", "b")):
        builder.judge(three, rater, winner)
    unanimous = builder.item(1)
    for rater in range(3):
        builder.judge(unanimous, rater, "b")
    lone = builder.item(2)
    builder.judge(lone, 0, "a")

    strict = harvest_preferences(store, "study-1", HarvestPolicy(min_raters=3, min_agreement=1.0))
    assert [p.case_key for p in strict.pairs] == ["case1"]
    assert strict.counts["dropped"] == {"low_agreement": 1, "too_few_raters": 1}
    loose = harvest_preferences(store, "study-1", HarvestPolicy(min_raters=1, min_agreement=0.6))
    assert sorted(p.case_key for p in loose.pairs) == ["case0", "case1", "case2"]


def test_duplicate_item_of_one_rater_counts_once(builder: StudyBuilder, store: Store) -> None:
    item = builder.item(0)
    builder.judge(item, 0, "a")
    builder.judge(item, 0, "b", duplicate=True)  # later answer on the duplicate wins
    builder.judge(item, 1, "b")
    result = harvest_preferences(store, "study-1", HarvestPolicy(min_raters=2))
    (pair,) = result.pairs
    assert pair.n_raters == 2 and pair.chosen_system == "beta"


def test_ties_dropped_or_kept_in_both_orders(builder: StudyBuilder, store: Store) -> None:
    item = builder.item(0)
    builder.judge(item, 0, "tie")
    builder.judge(item, 1, "tie")
    dropped = harvest_preferences(store, "study-1", HarvestPolicy())
    assert dropped.pairs == [] and dropped.counts["dropped"] == {"tie": 1}
    kept = harvest_preferences(store, "study-1", HarvestPolicy(ties="keep"))
    assert {(p.chosen_system, p.rejected_system) for p in kept.pairs} == {
        ("alpha", "beta"),
        ("beta", "alpha"),
    }
    assert all(p.label == "tie" for p in kept.pairs)


def test_both_bad_dropped_or_paired_with_reference(builder: StudyBuilder, store: Store) -> None:
    item = builder.item(3)
    builder.judge(item, 0, "both_bad")
    assert harvest_preferences(store, "study-1").counts["dropped"] == {"both_bad": 1}
    result = harvest_preferences(store, "study-1", HarvestPolicy(both_bad="reference"))
    assert len(result.pairs) == 2
    for pair in result.pairs:
        assert pair.chosen.startswith("Reference report 3")
        assert pair.chosen_system == REFERENCE_SYSTEM
        assert pair.source == "human+reference"
    assert {p.rejected_system for p in result.pairs} == {"alpha", "beta"}


def test_likert_margin_filter(builder: StudyBuilder, store: Store) -> None:
    clear = builder.item(0)
    builder.judge(clear, 0, "a", likert={"a": LIKERT_GOOD, "b": LIKERT_BAD})
    close = builder.item(1)
    builder.judge(close, 0, "a", likert={"a": LIKERT_GOOD, "b": LIKERT_GOOD})
    bare = builder.item(2)
    builder.judge(bare, 0, "b")
    result = harvest_preferences(store, "study-1", HarvestPolicy(min_likert_margin=1.0))
    assert [p.case_key for p in result.pairs] == ["case0"]
    assert result.pairs[0].likert_margin == pytest.approx((14 - 7) / 3)
    assert result.counts["dropped"] == {"likert_margin": 1, "no_likert": 1}
    # Only the accuracy criterion: 5 - 2 = 3.
    only = harvest_preferences(
        store, "study-1", HarvestPolicy(min_likert_margin=2.5, likert_criteria=["accuracy"])
    )
    assert [p.likert_margin for p in only.pairs] == [pytest.approx(3.0)]


def test_duplicates_removed_and_gold_excluded(builder: StudyBuilder, store: Store) -> None:
    one = builder.item(0, "alpha", "beta", text_b="same wrong report")
    two = builder.item(
        0, "alpha", "gamma", text_a="alpha report for case 0", text_b="same wrong report"
    )
    gold = builder.item(1, kind="gold")
    same = builder.item(2, text_a="identical", text_b="identical")
    for item in (one, two, gold, same):
        builder.judge(item, 0, "a")
    result = harvest_preferences(store, "study-1")
    assert [p.case_key for p in result.pairs] == ["case0"]
    assert result.counts["dropped"] == {"duplicate": 1, "gold_item": 1, "identical_texts": 1}
    with_gold = harvest_preferences(store, "study-1", HarvestPolicy(include_gold=True))
    assert sorted(p.case_key for p in with_gold.pairs) == ["case0", "case1"]


def test_split_by_case_is_seeded_and_disjoint(builder: StudyBuilder, store: Store) -> None:
    for case in range(6):
        item = builder.item(case)
        builder.judge(item, 0, "tie")
    policy = HarvestPolicy(ties="keep", validation_fraction=0.34, seed=7)
    result = harvest_preferences(store, "study-1", policy)
    train_cases = {p.case_id for p in result.train}
    val_cases = {p.case_id for p in result.validation}
    assert len(val_cases) == 2 and len(train_cases) == 4
    assert not train_cases & val_cases
    again = harvest_preferences(store, "study-1", policy)
    assert {p.case_id for p in again.validation} == val_cases
    other = {
        frozenset(
            p.case_id
            for p in harvest_preferences(
                store, "study-1", HarvestPolicy(ties="keep", validation_fraction=0.34, seed=s)
            ).validation
        )
        for s in range(8)
    }
    assert len(other) > 1  # the seed matters


def test_video_cases_are_skipped(store: Store, tmp_path: Path) -> None:
    builder = StudyBuilder(store, tmp_path / "bench", n_cases=2, modality="video")
    item = builder.item(0)
    builder.judge(item, 0, "a")
    result = harvest_preferences(store, "study-1")
    assert result.pairs == [] and result.counts["dropped"] == {"not_an_image_case": 1}


def test_bad_input_messages(builder: StudyBuilder, store: Store, tmp_path: Path) -> None:
    with pytest.raises(PreferenceError, match="unknown study 'nope'.*study-1"):
        harvest_preferences(store, "nope")
    with pytest.raises(PreferenceError, match="ties must be"):
        harvest_preferences(store, "study-1", HarvestPolicy(ties="sometimes"))
    with pytest.raises(PreferenceError, match="unknown harvest policy field"):
        HarvestPolicy.from_dict({"min_rater": 2})
    empty = harvest_preferences(store, "study-1")
    with pytest.raises(PreferenceError, match="no preference pairs"):
        export_preferences(empty, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_automatic_cold_start_pairs_are_labelled(builder: StudyBuilder, store: Store) -> None:
    # beta misplaces and mis-sizes the lesion: a clinically significant error.
    item = builder.item(
        0,
        text_a="Findings: a sessile polyp of 6 mm in the sigmoid colon.",
        text_b="Findings: a pedunculated polyp of 25 mm in the cecum.",
    )
    builder.judge(item, 0, "tie")
    result = harvest_preferences(store, "study-1", HarvestPolicy(automatic=True))
    automatic = [p for p in result.pairs if p.source == "automatic"]
    assert automatic, result.counts
    assert all(p.chosen_system == REFERENCE_SYSTEM for p in automatic)
    assert "beta" in {p.rejected_system for p in automatic}
    assert all(p.provenance("study-1", result.policy)["automatic"] for p in automatic)
    assert all(p.detail["significant_errors"] >= 1 for p in automatic)
    assert result.counts["automatic_pairs"] == len(automatic)


def test_cold_start_from_cached_reports_without_a_study(
    builder: StudyBuilder, store: Store, tmp_path: Path
) -> None:
    builder.generation("alpha", 0, "Findings: a sessile polyp of 6 mm in the sigmoid colon.")
    builder.generation("beta", 0, "Findings: a pedunculated polyp of 25 mm in the cecum.")
    builder.generation("beta", 1, "Findings: a pedunculated polyp of 30 mm in the rectum.")
    result = harvest_automatic(
        store, "synthetic-prefs", ["alpha", "beta"], split="test", policy=HarvestPolicy(seed=2)
    )
    assert {(p.case_key, p.rejected_system) for p in result.pairs} == {
        ("case0", "beta"),
        ("case1", "beta"),
    }
    assert all(p.source == "automatic" and p.n_raters == 0 for p in result.pairs)
    assert result.counts["automatic_pairs"] == 2 and result.counts["human_pairs"] == 0
    summary = export_preferences(result, tmp_path / "auto")
    assert summary.n_train + summary.n_validation == 2
    assert "Automatic preference pairs" in (tmp_path / "auto" / "README.md").read_text()
    with pytest.raises(PreferenceError, match="unknown system"):
        harvest_automatic(store, "synthetic-prefs", ["ghost"], split="test")
    with pytest.raises(PreferenceError, match="no cached reports"):
        harvest_automatic(store, "synthetic-prefs", ["gamma"], split="test")


def test_export_writes_dataset_jsonl_images_and_card(
    builder: StudyBuilder, store: Store, tmp_path: Path
) -> None:
    from datasets import load_from_disk

    from model.training import load_preference_dataset

    for case in range(4):
        item = builder.item(case)
        builder.judge(item, 0, "a" if case % 2 else "b")
    result = harvest_preferences(store, "study-1", HarvestPolicy(validation_fraction=0.25))
    out = tmp_path / "prefs"
    summary = export_preferences(result, out)
    assert (summary.n_train, summary.n_validation) == (3, 1)
    dataset = load_from_disk(str(out / "hf"))
    assert set(dataset) == {"train", "validation"}
    row = dataset["train"][0]
    assert row["images"][0].size == (40, 40)
    assert row["chosen"][0]["role"] == "assistant"
    lines = (out / "train.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    assert first["images"][0].startswith("images/") and (out / first["images"][0]).is_file()
    assert first["provenance"]["study"] == "study-1"
    assert {"n_raters", "agreement", "chosen_system", "rejected_system", "policy"} <= set(
        first["provenance"]
    )
    card = (out / "README.md").read_text()
    assert "Research software, not a medical device" in card
    assert "Synthetic data" in card
    manifest = json.loads((out / "export.json").read_text())
    assert manifest["policy"]["validation_fraction"] == 0.25
    # Both forms load back for training, with the same rows.
    from_jsonl = load_preference_dataset(out / "train.jsonl")
    from_folder = load_preference_dataset(out)
    assert len(from_jsonl) == len(from_folder) == 3
    # A second export into the same folder is refused and leaves it unchanged.
    with pytest.raises(PreferenceError, match="not empty"):
        export_preferences(result, out)
    assert (out / "train.jsonl").read_text().splitlines() == lines


def test_export_goes_straight_into_dpo_trainer(
    sqlite_store: Store, tmp_path: Path, tiny_model_dir: Path
) -> None:
    builder = StudyBuilder(sqlite_store, tmp_path / "bench", n_cases=3)
    for case in range(3):
        builder.judge(builder.item(case), 0, "a")
    out = tmp_path / "prefs"
    export_preferences(
        harvest_preferences(sqlite_store, "study-1", HarvestPolicy(validation_fraction=0.0)), out
    )
    losses = export_trains(tiny_model_dir, out, tmp_path / "dpo")
    assert len(losses) == 2 and all(np.isfinite(losses))
