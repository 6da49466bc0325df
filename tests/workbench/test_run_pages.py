"""The Run, Case and single-case Report pages through Streamlit's AppTest."""

from __future__ import annotations

import io
import shutil
import time
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from model.spec import SystemSpec
from studies.benchmarks.importer import import_benchmark
from studies.readers import accounts
from studies.store.db import get_store
from studies.store.schema import Account, Case, System
from studies.systems.registry import register_system
from studies.systems.runs import generation_count, list_runs, run_system
from workbench.access import SESSION_KEY

PAGES = Path(__file__).resolve().parents[2] / "workbench" / "views"
APP = str(PAGES.parent / "app.py")


@pytest.fixture
def home(tmp_home: Path, tiny_model_dir: Path, tiny_adapter_dir: Path) -> Path:
    """A small synthetic-colon benchmark, two baselines and the tiny model with its adapter."""
    store = get_store()
    root = tmp_home / "data" / "benchmarks" / "synthetic-colon"
    import_benchmark(store, "synthetic-colon", root, options={"n_images": 10, "n_videos": 2})
    register_system(store, "reference", SystemSpec(kind="reference", batch_size=1))
    register_system(store, "template-baseline", SystemSpec(kind="template", batch_size=1))
    tiny = {"model": str(tiny_model_dir), "adapter": str(tiny_adapter_dir), "max_new_tokens": 8}
    register_system(store, "tiny-lora", SystemSpec(kind="vlm", **tiny))
    return tmp_home


def _page(name: str) -> AppTest:
    """The page as a logged-in admin sees it (the pages are for admins only)."""
    store = get_store()
    with store.session() as session:
        admin_id = session.scalar(select(Account.id).where(Account.username == "run-admin"))
    if admin_id is None:
        admin_id = accounts.create_account(store, "run-admin", "admin", "a long test password 1").id
    page = AppTest.from_file(APP, default_timeout=120)
    page.session_state[SESSION_KEY] = accounts.open_session(store, admin_id)
    page.run()
    page.switch_page(str(PAGES / name)).run()
    assert not page.exception, page.exception
    return page


def _texts(page: AppTest) -> str:
    parts = [e.value for e in page.markdown] + [e.value for e in page.caption]
    parts += [e.value for e in page.success] + [e.value for e in page.warning]
    parts += [e.value for e in page.error] + [e.value for e in page.info]
    return "\n".join(str(p) for p in parts)


def test_run_page_runs_systems_in_the_background(home: Path) -> None:
    page = _page("run.py")
    assert "No runs yet." in _texts(page)
    assert any("SYNTHETIC" in w.value for w in page.warning)
    page.button[0].click().run()
    assert any("pick at least one system" in e.value for e in page.error)
    assert "run_job" not in page.session_state
    page.multiselect(key="run_systems").set_value(["reference", "template-baseline"])
    page.button[0].click().run()
    assert not page.exception
    deadline = time.monotonic() + 120
    while "run_job" not in page.session_state or not page.session_state["run_job"].finished:
        assert time.monotonic() < deadline, "the run did not finish"
        time.sleep(0.2)
    page.run()
    assert not page.exception
    successes = [s.value for s in page.success]
    assert len(successes) == 2 and all("done" in s for s in successes)
    store = get_store()
    with store.session() as session:
        n_test = len(session.scalars(select(Case.id).where(Case.split == "test")).all())
    assert generation_count(store) == 2 * n_test
    assert {(r.system, r.status) for r in list_runs(store)} == {
        ("reference", "done"),
        ("template-baseline", "done"),
    }
    assert len(page.dataframe) == 1


def test_run_pages_are_hidden_from_visitors(home: Path) -> None:
    page = AppTest.from_file(APP, default_timeout=120).run()
    for name in ("run.py", "case.py", "report.py"):
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            page.switch_page(str(PAGES / name))


def test_run_page_without_systems_says_what_to_do(tmp_home: Path) -> None:
    store = get_store()
    root = tmp_home / "data" / "benchmarks" / "synthetic-colon"
    import_benchmark(store, "synthetic-colon", root, options={"n_images": 6, "n_videos": 0})
    page = _page("run.py")
    assert "medvision systems add" in _texts(page)


def test_run_page_cancel_stops_a_run_and_a_rerun_resumes(home: Path) -> None:
    store = get_store()
    page = _page("run.py")
    page.multiselect(key="run_systems").set_value(["tiny-lora"])
    page.session_state["run_limit"] = 0
    page.button[0].click().run()
    assert not page.exception
    job = page.session_state["run_job"]
    cancel = [b for b in page.button if b.key == "cancel_run"]
    if not job.finished:
        assert cancel, "a running job shows its Cancel button"
        cancel[0].click().run()
        assert job.cancelled
    assert job.wait(120)
    page.run()
    assert not page.exception
    assert all(r.status in ("done", "cancelled") for r in job.reports)
    kept = generation_count(store, "tiny-lora")
    # Whatever was committed before the cancel stays; a rerun only adds the rest.
    report = run_system(store, "synthetic-colon", "tiny-lora")
    assert report.n_cached == kept and report.n_done == report.n_cases


def test_case_page_shows_every_system_side_by_side(home: Path) -> None:
    store = get_store()
    for name in ("reference", "template-baseline", "tiny-lora"):
        run_system(store, "synthetic-colon", name)
    note = "Tiny random-weight model; its text is not meaningful."
    with store.session() as session:
        session.scalar(select(System).where(System.name == "tiny-lora")).description = note
    page = _page("case.py")
    texts = _texts(page)
    for name in ("reference", "template-baseline", "tiny-lora"):
        assert f"**{name}**" in texts
    # Each output says what made it, so a demo model's noise is not mistaken for a result.
    assert note in [c.value for c in page.caption]
    assert "**Reference**" in texts
    # Data texts are plain text: the case line, its reference, one report per system.
    plain = [t.value for t in page.text if not t.value.startswith("Logged in as")]
    assert len(plain) == 5 and plain[0].startswith(page.selectbox(key="case_key").value)
    # Another case of the split changes the outputs shown.
    keys = page.selectbox(key="case_key").options
    page.selectbox(key="case_key").set_value(keys[-1]).run()
    assert not page.exception
    assert [t.value for t in page.text][0].startswith(f"{keys[-1]} · ")


def test_case_page_before_any_run_points_to_the_run_page(home: Path) -> None:
    assert "start a run on the Run page" in _texts(_page("case.py"))


def _png(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def test_report_page_writes_a_report_with_downloads(home: Path) -> None:
    page = _page("report.py")
    assert any("Not a medical device" in w.value for w in page.warning)
    assert page.selectbox(key="report_system").options == ["tiny-lora"]
    page.file_uploader(key="report_uploads").set_value(
        [("a.png", _png((200, 80, 80)), "image/png"), ("b.png", _png((80, 80, 200)), "image/png")]
    )
    page.button(key="write_report").click().run()
    assert not page.exception
    assert not page.error, [e.value for e in page.error]
    headers = [h.value for h in page.subheader]
    assert headers == ["Findings", "Impression", "Suggestion"]
    assert [b.label for b in page.get("download_button")] == ["Download Markdown", "Download PDF"]
    document = page.session_state["upload_report"]
    assert document.system == "tiny-lora" and len(document.inputs) == 2
    uploads = sorted((home / "data" / "uploads").iterdir())
    assert [p.name for p in uploads] == sorted(f"{u.sha256}.png" for u in document.inputs)


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("scan.png", b"this is not an image", "scan.png: not a readable image"),
        ("clip.mp4", b"\x00\x00\x00\x18ftypmp42 corrupt", "clip.mp4: corrupt or unreadable"),
        ("notes.txt", b"hello", "notes.txt: unsupported file type .txt"),
    ],
)
def test_report_page_rejects_bad_uploads(home: Path, name: str, data: bytes, message: str) -> None:
    page = _page("report.py")
    page.file_uploader(key="report_uploads").set_value((name, data, "application/octet-stream"))
    page.button(key="write_report").click().run()
    assert not page.exception
    assert any(message in e.value for e in page.error), [e.value for e in page.error]
    assert "upload_report" not in page.session_state
    assert not list((home / "data" / "uploads").glob("*"))


def test_report_page_says_when_the_model_cannot_be_loaded(home: Path, tiny_model_dir: Path) -> None:
    # A system whose model folder was deleted after it was registered.
    folder = home / "moved-model"
    shutil.copytree(tiny_model_dir, folder)
    spec = SystemSpec(kind="vlm", model=str(folder), max_new_tokens=8)
    register_system(get_store(), "gone-model", spec)
    shutil.rmtree(folder)
    page = _page("report.py")
    page.selectbox(key="report_system").set_value("gone-model")
    page.file_uploader(key="report_uploads").set_value(("a.png", _png((9, 9, 9)), "image/png"))
    page.button(key="write_report").click().run()
    assert not page.exception, page.exception
    errors = [e.value for e in page.error]
    assert any("'gone-model' could not write the report" in e for e in errors), errors
    assert "upload_report" not in page.session_state


def test_report_page_rejects_uploads_over_the_size_limit(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEDVISION_MAX_UPLOAD_MB", "0.001")
    page = _page("report.py")
    page.file_uploader(key="report_uploads").set_value(
        ("big.png", _png((1, 2, 3)) * 20, "image/png")
    )
    page.button(key="write_report").click().run()
    assert any("over the upload limit of 0.001 MB" in e.value for e in page.error)
    page.file_uploader(key="report_uploads").set_value(None)
    page.button(key="write_report").click().run()
    assert any("upload one or more images" in e.value for e in page.error)
