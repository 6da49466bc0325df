"""Runs through the generation cache: cache hits, resume after interruption, baselines."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select

from model.spec import SystemSpec
from studies.store.db import Store
from studies.store.media import sha256_file
from studies.store.schema import Benchmark, Case, Generation, Run, System
from studies.systems.registry import register_system
from studies.systems.runs import (
    RunError,
    _insert_ignoring_duplicates,
    case_outputs,
    generation_count,
    list_runs,
    run_system,
    start_run_job,
)

COLOURS = [(200, 60, 60), (60, 200, 60), (60, 60, 200), (200, 200, 60), (60, 200, 200)]
REPORTS = [
    "Findings: sessile polyp 6 mm in the sigmoid colon, Paris 0-Is, NICE 2. "
    "Impression: adenoma. Recommendation: cold snare polypectomy.",
    "Findings: normal mucosa, no polyps. Impression: normal colonoscopy. "
    "Recommendation: surveillance in 10 years.",
    "Findings: pedunculated polyp 15 mm in the descending colon, Paris 0-Ip. "
    "Impression: adenoma. Recommendation: hot snare polypectomy.",
]


def make_benchmark(
    store: Store,
    root: Path,
    *,
    name: str = "tiny-colon",
    task: str = "report",
    n_train: int = 4,
    n_test: int = 5,
) -> None:
    """A small image-report benchmark written straight into the store (SYNTHETIC)."""
    root.mkdir(parents=True, exist_ok=True)
    with store.session() as session:
        benchmark = Benchmark(
            name=name, loader="polyp-reports", root=str(root), task=task, synthetic=True
        )
        session.add(benchmark)
        session.flush()
        index = 0
        for split, count in (("train", n_train), ("test", n_test)):
            for _ in range(count):
                path = root / f"{split}-{index:02d}.png"
                Image.new("RGB", (64, 64), COLOURS[index % len(COLOURS)]).save(path)
                label = "adenoma" if index % 3 != 1 else "normal"
                session.add(
                    Case(
                        benchmark_id=benchmark.id,
                        case_key=f"{split}-{index:02d}",
                        split=split,
                        modality="image",
                        media=[{"path": path.name, "sha256": sha256_file(path), "kind": "image"}],
                        references=[REPORTS[index % len(REPORTS)]],
                        question="Is there a polyp?" if task == "vqa" else None,
                        meta={"label": label},
                        content_hash=f"{index:064d}",
                    )
                )
                index += 1


@pytest.fixture
def bench(store: Store, tmp_path: Path) -> Store:
    make_benchmark(store, tmp_path / "bench")
    register_system(store, "reference", SystemSpec(kind="reference", batch_size=2))
    return store


def _generations(store: Store, system_id: int | None = None) -> list[tuple[int, str]]:
    with store.session() as session:
        query = select(Generation.case_id, Generation.text).order_by(Generation.case_id)
        return [tuple(row) for row in session.execute(query)]


def _run_statuses(store: Store) -> list[str]:
    with store.session() as session:
        return list(session.scalars(select(Run.status).order_by(Run.id)))


def test_rerun_hits_the_cache(bench: Store) -> None:
    seen: list[tuple[int, int]] = []
    first = run_system(bench, "tiny-colon", "reference", progress=lambda d, t: seen.append((d, t)))
    assert (first.status, first.n_cases, first.n_cached, first.n_generated) == ("done", 5, 0, 5)
    assert seen == [(0, 5), (2, 5), (4, 5), (5, 5)]
    texts = [text for _, text in _generations(bench)]
    assert texts == [REPORTS[i % 3] for i in range(4, 9)]

    again = run_system(bench, "tiny-colon", "reference")
    assert (again.status, again.n_cached, again.n_generated) == ("done", 5, 0)
    assert generation_count(bench) == 5
    assert _run_statuses(bench) == ["done", "done"]
    runs = list_runs(bench)
    assert [(r.system, r.n_done, r.n_cases) for r in runs] == [("reference", 5, 5)] * 2


def test_cancel_mid_run_then_resume_without_loss_or_duplicates(bench: Store) -> None:
    chunks: list[int] = []

    def progress(done: int, total: int) -> None:
        chunks.append(done)

    # Cancel once the first chunk (batch size 2) is committed.
    cancelled = run_system(
        bench, "tiny-colon", "reference", progress=progress, cancel=lambda: len(chunks) >= 2
    )
    assert cancelled.status == "cancelled" and cancelled.n_generated == 2
    assert generation_count(bench) == 2
    resumed = run_system(bench, "tiny-colon", "reference")
    assert (resumed.n_cached, resumed.n_generated, resumed.status) == (2, 3, "done")
    rows = _generations(bench)
    assert len(rows) == 5 and len({case_id for case_id, _ in rows}) == 5
    assert _run_statuses(bench) == ["cancelled", "done"]


def test_exception_mid_run_keeps_committed_chunks_and_resumes(bench: Store) -> None:
    def explode(done: int, total: int) -> None:
        if done == 4:
            raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):
        run_system(bench, "tiny-colon", "reference", progress=explode)
    assert generation_count(bench) == 4
    with bench.session() as session:
        failed = session.scalars(select(Run)).one()
        assert failed.status == "failed" and "killed" in failed.error
        assert failed.n_done == 4 and failed.finished_at is not None
    resumed = run_system(bench, "tiny-colon", "reference")
    assert (resumed.n_cached, resumed.n_generated) == (4, 1)
    assert len({case_id for case_id, _ in _generations(bench)}) == 5 == generation_count(bench)


def test_keyboard_interrupt_marks_the_run_cancelled(bench: Store) -> None:
    def interrupt(done: int, total: int) -> None:
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_system(bench, "tiny-colon", "reference", progress=interrupt)
    assert _run_statuses(bench) == ["cancelled"]
    assert run_system(bench, "tiny-colon", "reference").n_generated == 3


def test_every_baseline_produces_output(bench: Store) -> None:
    register_system(bench, "retrieval-baseline", SystemSpec(kind="retrieval"))
    register_system(bench, "template-baseline", SystemSpec(kind="template"))
    for name in ("retrieval-baseline", "template-baseline", "reference"):
        report = run_system(bench, "tiny-colon", name)
        assert (report.status, report.n_generated) == ("done", 5), report.summary()
        assert generation_count(bench, name) == 5
    with bench.session() as session:
        case_id = session.scalar(select(Case.id).where(Case.case_key == "test-04"))
        train_reports = set(REPORTS)
    outputs = {o.system: o for o in case_outputs(bench, case_id)}
    assert set(outputs) == {"retrieval-baseline", "template-baseline", "reference"}
    assert all(o.current and o.text.strip() for o in outputs.values())
    # Both trained baselines answer with a report of the train split.
    assert outputs["retrieval-baseline"].text in train_reports
    assert outputs["template-baseline"].text in train_reports
    assert outputs["reference"].text == REPORTS[4 % 3]


def test_limit_runs_the_first_cases_only(bench: Store) -> None:
    report = run_system(bench, "tiny-colon", "reference", limit=3)
    assert (report.n_cases, report.n_generated) == (3, 3)
    assert run_system(bench, "tiny-colon", "reference").n_cached == 3


def test_the_same_system_on_another_task_is_cached_apart(bench: Store, tmp_path: Path) -> None:
    make_benchmark(bench, tmp_path / "vqa", name="tiny-vqa", task="vqa", n_train=0, n_test=2)
    report = run_system(bench, "tiny-colon", "reference")
    vqa = run_system(bench, "tiny-vqa", "reference")
    assert vqa.n_generated == 2
    assert vqa.prompt_hash != report.prompt_hash and vqa.fingerprint != report.fingerprint


def test_runs_that_cannot_start_say_why_and_write_nothing(bench: Store, tmp_path: Path) -> None:
    register_system(bench, "retrieval-baseline", SystemSpec(kind="retrieval"))
    make_benchmark(bench, tmp_path / "no-train", name="no-train", n_train=0, n_test=2)
    problems = [
        (("nope", "reference", "test"), "unknown benchmark 'nope'; imported benchmarks: no-train"),
        (("tiny-colon", "nope", "test"), "unknown system 'nope'; registered systems: reference"),
        (("tiny-colon", "reference", "dev"), "unknown split 'dev'"),
        (("tiny-colon", "reference", "val"), "has no val cases"),
        (("no-train", "retrieval-baseline", "test"), "needs the train split"),
    ]
    for (benchmark, system, split), message in problems:
        with pytest.raises(RunError, match=message):
            run_system(bench, benchmark, system, split=split)
    (tmp_path / "bench" / "test-06.png").unlink()
    with pytest.raises(RunError, match="case 'test-06': media file 'test-06.png' is missing"):
        run_system(bench, "tiny-colon", "reference")
    assert _run_statuses(bench) == [] and generation_count(bench) == 0


def test_conflicting_inserts_are_ignored(bench: Store) -> None:
    with bench.session() as session:
        case_id = session.scalar(select(Case.id).limit(1))
    row = {
        "system_fingerprint": "f" * 64,
        "case_id": case_id,
        "prompt_hash": "p" * 64,
        "input_hash": "i" * 64,
        "text": "first",
    }
    with bench.session() as session:
        assert _insert_ignoring_duplicates(session, [row]) == 1
    with bench.session() as session:
        assert _insert_ignoring_duplicates(session, [dict(row, text="second")]) == 0
    with bench.session() as session:
        texts = session.scalars(select(Generation.text)).all()
        assert texts == ["first"]
        assert session.scalar(select(func.count()).select_from(Generation)) == 1


def test_background_job_runs_several_systems_and_can_be_cancelled(bench: Store) -> None:
    register_system(bench, "template-baseline", SystemSpec(kind="template", batch_size=1))
    job = start_run_job(bench, "tiny-colon", ["reference", "template-baseline"])
    assert job.wait(120)
    assert job.error is None
    assert [r.status for r in job.reports] == ["done", "done"]
    assert generation_count(bench) == 10

    cancelled = start_run_job(bench, "tiny-colon", ["reference"])
    cancelled.cancel()
    assert cancelled.wait(120)
    assert all(r.status in ("done", "cancelled") for r in cancelled.reports)
    assert generation_count(bench) == 10

    with pytest.raises(RunError, match="at least one system"):
        start_run_job(bench, "tiny-colon", [])

    # A system that cannot run is reported; the next one still runs.
    make_benchmark(bench, bench_root(bench) / "more", name="more", n_train=1, n_test=2)
    mixed = start_run_job(bench, "more", ["nope", "reference"])
    assert mixed.wait(120)
    assert mixed.error is not None and "nope: unknown system 'nope'" in mixed.error
    assert [(r.system, r.status, r.n_generated) for r in mixed.reports] == [
        ("reference", "done", 2)
    ]


def bench_root(store: Store) -> Path:
    with store.session() as session:
        root = session.scalar(select(Benchmark.root).where(Benchmark.name == "tiny-colon"))
    return Path(root).parent


KILLED_RUN = """
import sys, time
from pathlib import Path
from studies.store.db import Store
from studies.systems.runs import run_system

marker = Path(sys.argv[2])

def progress(done, total):
    if done >= 2:
        marker.write_text(str(done))
        time.sleep(600)  # killed here, with the first chunk committed

run_system(Store(sys.argv[1]), "tiny-colon", "reference", progress=progress)
"""


def test_a_killed_process_loses_only_the_chunk_in_flight(bench: Store, tmp_path: Path) -> None:
    marker = tmp_path / "first-chunk-done"
    script = tmp_path / "killed_run.py"
    script.write_text(KILLED_RUN)
    root = Path(__file__).resolve().parents[2]
    process = subprocess.Popen(
        [sys.executable, str(script), bench.url, str(marker)],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert process.poll() is None, "the run exited before it was killed"
            assert time.monotonic() < deadline, "the first chunk never finished"
            time.sleep(0.1)
    finally:
        process.kill()
        process.wait()
    assert generation_count(bench) == 2
    # The killed run never finished; its row still says running.
    assert _run_statuses(bench) == ["running"]
    resumed = run_system(bench, "tiny-colon", "reference")
    assert (resumed.n_cached, resumed.n_generated, resumed.status) == (2, 3, "done")
    assert len({case_id for case_id, _ in _generations(bench)}) == 5 == generation_count(bench)
    # Starting the new run closed the killed one.
    assert _run_statuses(bench) == ["failed", "done"]
    killed = list_runs(bench)[-1]
    assert "killed or crashed" in killed.error and killed.n_done == 2


# --- content-addressed cases: a cached report belongs to what its case holds --------------


def _outputs_by_case(store: Store, benchmark: str) -> dict[str, tuple[str, str | None, str]]:
    """case key -> (the reference system's newest output, the case's question, its reference)."""
    with store.session() as session:
        rows = session.execute(
            select(Case.case_key, Case.question, Case.references, Generation.text)
            .join(Generation, Generation.case_id == Case.id)
            .join(Benchmark, Benchmark.id == Case.benchmark_id)
            .where(Benchmark.name == benchmark)
            .order_by(Generation.id)
        ).all()
    return {key: (text, question, refs[0]) for key, question, refs, text in rows}


def _write_manifest(root: Path, rows: list[tuple[str, int, str]]) -> None:
    """A polyp-reports manifest: (case id, image colour index, report) per row, all test."""
    import csv

    root.mkdir(parents=True, exist_ok=True)
    with open(root / "manifest.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["case_id", "images", "report", "split"])
        for case_id, colour, report in rows:
            image = root / f"img-{colour}.png"
            if not image.exists():
                Image.new("RGB", (32, 32), COLOURS[colour]).save(image)
            writer.writerow([case_id, image.name, report, "test"])


MANIFEST = [("c0", 0, REPORTS[0]), ("c1", 1, REPORTS[1]), ("c2", 2, REPORTS[2]), ("c3", 3, "x")]


def test_swapped_rows_regenerate_exactly_the_swapped_cases(store: Store, tmp_path: Path) -> None:
    """Two cases exchange their image and report in place (as reordered rows of a dataset
    keyed by row position do): those two are regenerated, the other two stay cached, and
    every output belongs to its case. Fails on ebb17df: 4 cached, 0 generated, two outputs
    of the other case."""
    from studies.benchmarks.importer import import_benchmark

    root = tmp_path / "swap"
    _write_manifest(root, MANIFEST)
    import_benchmark(store, "polyp-reports", root, name="swap")
    register_system(store, "reference", SystemSpec(kind="reference"))
    assert run_system(store, "swap", "reference").n_generated == 4

    swapped = [("c0", 1, REPORTS[1]), ("c1", 0, REPORTS[0]), MANIFEST[2], MANIFEST[3]]
    _write_manifest(root, swapped)
    imported = import_benchmark(store, "polyp-reports", root, name="swap")
    assert (imported.updated, imported.unchanged) == (2, 2)
    again = run_system(store, "swap", "reference")
    assert (again.n_generated, again.n_cached) == (2, 2)
    outputs = _outputs_by_case(store, "swap")
    assert {key: text for key, (text, _, _) in outputs.items()} == {
        "c0": REPORTS[1],
        "c1": REPORTS[0],
        "c2": REPORTS[2],
        "c3": "x",
    }
    # Swapping back finds the first reports again: nothing is generated.
    _write_manifest(root, MANIFEST)
    import_benchmark(store, "polyp-reports", root, name="swap")
    back = run_system(store, "swap", "reference")
    assert (back.n_generated, back.n_cached) == (0, 4)
    # The case page shows the report of what each case holds now, not the newer one.
    with store.session() as session:
        ids = dict(session.execute(select(Case.case_key, Case.id)).all())
    for key, _, report in MANIFEST:
        [output] = case_outputs(store, ids[key])
        assert (output.text, output.current) == (report, True), key


def test_an_edited_case_regenerates_only_itself(store: Store, tmp_path: Path) -> None:
    """A new image under the same file name changes only that case's media hash: one case is
    regenerated, three stay cached. Fails on ebb17df (0 generated)."""
    from studies.benchmarks.importer import import_benchmark

    root = tmp_path / "edit"
    _write_manifest(root, MANIFEST)
    import_benchmark(store, "polyp-reports", root, name="edit")
    register_system(store, "reference", SystemSpec(kind="reference"))
    run_system(store, "edit", "reference")
    Image.new("RGB", (48, 48), (10, 10, 10)).save(root / "img-3.png")
    imported = import_benchmark(store, "polyp-reports", root, name="edit")
    assert (imported.updated, imported.unchanged) == (1, 3)
    again = run_system(store, "edit", "reference")
    assert (again.n_generated, again.n_cached) == (1, 3)
    with store.session() as session:
        edited = session.scalar(select(Case).where(Case.case_key == "c3"))
        hashes = session.scalars(
            select(Generation.input_hash)
            .where(Generation.case_id == edited.id)
            .order_by(Generation.id)
        ).all()
        from studies.systems.runs import case_input_hash

        assert len(set(hashes)) == 2 and hashes[-1] == case_input_hash(edited)


def test_a_reordered_kvasir_file_gives_every_question_its_own_answer(
    store: Store, tmp_path: Path
) -> None:
    """The review's Kvasir-VQA-x1 case: two questions on one image change places in the file.
    However the loader keys them, every cached answer belongs to its question and exactly
    the cases the re-import changed are regenerated. Fails on ebb17df (2 updated, 0
    generated, two answers of the other question)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from studies.benchmarks.importer import import_benchmark

    root = tmp_path / "kvasir"
    rows = [
        ("cl8k2u1qa1ekz08324rek2qcv", "Have all polyps been removed?", "Polyps remain."),
        ("cl8k2u1qa1ekz08324rek2qcv", "Is there any text in the image?", "Yes, text."),
        ("cl8k2u1qa1ekz08324rek2qcw", "Where is the polyp?", "In the cecum."),
        ("cl8k2u1qa1ekz08324rek2qcw", "What colour is the mucosa?", "Pink."),
    ]
    for seed, img_id in enumerate(sorted({row[0] for row in rows})):
        (root / "images").mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (32, 32), COLOURS[seed]).save(root / "images" / f"{img_id}.jpg")

    def write(order: list[int]) -> None:
        table = [
            {
                "img_id": rows[i][0],
                "complexity": 1,
                "question": rows[i][1],
                "answer": rows[i][2],
                "original": "[]",
                "question_class": ["polyp"],
            }
            for i in order
        ]
        path = root / "data" / "train-00000-of-00001.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(table), path)

    write([0, 1, 2, 3])
    import_benchmark(store, "kvasir-vqa-x1", root, name="kv")
    register_system(store, "reference", SystemSpec(kind="reference"))
    first = run_system(store, "kv", "reference", split="train")
    assert (first.n_cached, first.n_generated) == (0, 4)

    write([1, 0, 2, 3])
    imported = import_benchmark(store, "kvasir-vqa-x1", root, name="kv")
    again = run_system(store, "kv", "reference", split="train")
    assert again.n_generated == imported.updated
    assert again.n_cached == 4 - imported.updated
    answers = {question: answer for _, question, answer in rows}
    outputs = _outputs_by_case(store, "kv")
    assert len(outputs) == 4
    for text, question, reference in outputs.values():
        assert text == reference == answers[question]


def test_readers_of_reports_leave_out_reports_of_a_changed_case(store: Store, tmp_path: Path):
    """After two cases exchange image and report, and before a run catches up, their old
    reports answer other media: the leaderboard scores only the unchanged cases (the other
    two count as dropped) and a study started then leaves them out; after the run every case
    is back. On ebb17df the leaderboard scored the stale reports against the new references."""
    from studies.benchmarks.importer import import_benchmark
    from studies.leaderboard.build import LeaderboardConfig, build_leaderboard
    from studies.readers.lifecycle import _latest_generations

    root = tmp_path / "swap"
    _write_manifest(root, MANIFEST)
    import_benchmark(store, "polyp-reports", root, name="swap")
    register_system(store, "reference", SystemSpec(kind="reference"))
    register_system(store, "reference-copy", SystemSpec(kind="reference", batch_size=2))
    for name in ("reference", "reference-copy"):
        run_system(store, "swap", name)
    config = LeaderboardConfig(
        benchmark="swap",
        baseline="reference",
        metrics=["bleu"],
        n_resamples=10,
        n_permutations=10,
        include_reference=True,  # both systems copy the references
    )
    assert build_leaderboard(store, config).n_cases == 4

    swapped = [("c0", 1, REPORTS[1]), ("c1", 0, REPORTS[0]), MANIFEST[2], MANIFEST[3]]
    _write_manifest(root, swapped)
    import_benchmark(store, "polyp-reports", root, name="swap")
    stale = build_leaderboard(store, config)
    assert sorted(c.case_key for c in stale.cases) == ["c2", "c3"]
    assert stale.dropped == {"reference": 2, "reference-copy": 2}
    with store.session() as session:
        systems = list(session.scalars(select(System).order_by(System.id)))
        cases = list(session.scalars(select(Case).order_by(Case.case_key)))
        chosen = _latest_generations(session, systems, cases)
        assert sorted({case_id for _, case_id in chosen}) == [cases[2].id, cases[3].id]

    for name in ("reference", "reference-copy"):
        run_system(store, "swap", name)
    fresh = build_leaderboard(store, config)
    assert fresh.n_cases == 4 and fresh.dropped == {}
    # every scored output is the case's own report again (the reference system copies it)
    assert all(c.outputs["reference"] == c.references[0] for c in fresh.cases)


def test_reports_cut_at_max_new_tokens_are_counted(
    sqlite_store: Store, tmp_path: Path, tiny_model_dir: Path
) -> None:
    make_benchmark(sqlite_store, tmp_path / "bench", n_test=3)
    spec = SystemSpec(kind="vlm", model=str(tiny_model_dir), max_new_tokens=2, batch_size=2)
    register_system(sqlite_store, "short", spec)
    report = run_system(sqlite_store, "tiny-colon", "short")
    with sqlite_store.session() as session:
        reasons = [g.meta["finish_reason"] for g in session.scalars(select(Generation))]
    assert len(reasons) == 3 and set(reasons) <= {"stop", "length"}
    assert report.n_truncated == reasons.count("length")
    # The random tiny model does not end a report within 2 tokens.
    assert report.n_truncated == 3
    assert "3 report(s) cut at max_new_tokens" in report.summary()
