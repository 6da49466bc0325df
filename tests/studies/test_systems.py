"""Registering systems: validation messages, idempotent re-adds, versions, fingerprints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from model.prompts import prompt_for_task
from model.spec import SystemSpec
from studies.store.db import Store
from studies.store.schema import System
from studies.systems.registry import (
    SystemConfigError,
    get_system,
    list_systems,
    register_system,
    spec_from_options,
    system_fingerprint,
)


def _count(store: Store) -> int:
    with store.session() as session:
        return session.scalar(select(func.count()).select_from(System)) or 0


def _fake_adapter(folder: Path, rank: int = 4) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "adapter_config.json").write_text(json.dumps({"r": rank}))
    return folder


def _fake_model(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text("{}")
    return folder


def test_register_list_get_and_idempotent_readd(store: Store) -> None:
    info, created = register_system(store, "reference", SystemSpec(kind="reference"))
    assert created and info.kind == "reference" and info.version == "1"
    assert len(info.fingerprint) == 64
    again, created_again = register_system(store, "reference", SystemSpec(kind="reference"))
    assert not created_again and again.id == info.id
    register_system(store, "template-baseline", SystemSpec(kind="template"))
    assert [s.name for s in list_systems(store)] == ["reference", "template-baseline"]
    assert get_system(store, "template-baseline").config["kind"] == "template"
    assert _count(store) == 2


def test_other_definition_under_same_name_is_refused_unless_replaced(
    store: Store, tmp_path: Path
) -> None:
    model = _fake_model(tmp_path / "model")
    first, _ = register_system(store, "m", SystemSpec(kind="vlm", model=str(model)))
    with pytest.raises(SystemConfigError, match="already exists.*--replace"):
        register_system(store, "m", SystemSpec(kind="vlm", model=str(model), max_new_tokens=9))
    assert get_system(store, "m").config["max_new_tokens"] == 256
    replaced, created = register_system(
        store, "m", SystemSpec(kind="vlm", model=str(model), max_new_tokens=9), replace=True
    )
    assert not created and replaced.id == first.id
    assert replaced.version == "2"
    assert replaced.fingerprint != first.fingerprint
    assert _count(store) == 1


def test_relative_paths_are_stored_absolute(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_model(tmp_path / "model")
    _fake_adapter(tmp_path / "adapter")
    monkeypatch.chdir(tmp_path)
    info, _ = register_system(
        store, "lora", SystemSpec(kind="vlm", model="./model", adapter="adapter")
    )
    assert info.config["model"] == str(tmp_path / "model")
    assert info.config["adapter"] == str(tmp_path / "adapter")


def test_adapter_content_changes_the_fingerprint(tmp_path: Path) -> None:
    model = _fake_model(tmp_path / "model")
    adapter = _fake_adapter(tmp_path / "adapter")
    spec = SystemSpec(kind="vlm", model=str(model), adapter=str(adapter), device="cpu")
    before, _ = system_fingerprint(spec)
    (adapter / "adapter_model.safetensors").write_bytes(b"new weights")
    after, _ = system_fingerprint(spec)
    assert before != after
    # The prompt of another task is part of the fingerprint too.
    vqa, prompt = system_fingerprint(spec, "vqa")
    assert prompt.hash == prompt_for_task("vqa").hash and vqa != after


@pytest.mark.parametrize(
    ("kind", "options", "message"),
    [
        ("lora", {}, "unknown system kind 'lora'; expected one of: vlm, vlm-base"),
        ("remote", {}, "needs 'remote_url'"),
        ("remote", {"remote_url": "http://127.0.0.1:9/v1"}, "needs 'remote_model'"),
        ("vlm", {}, "needs 'model'"),
        ("retrieval", {"max_new_tokens": 0}, "max_new_tokens"),
    ],
)
def test_spec_from_options_names_what_to_fix(kind: str, options: dict, message: str) -> None:
    with pytest.raises(SystemConfigError, match=message):
        spec_from_options(kind, **options)


def test_validation_messages_and_nothing_written(store: Store, tmp_path: Path) -> None:
    model = _fake_model(tmp_path / "model")
    cases = [
        (
            SystemSpec(kind="vlm", model=str(model), adapter=str(tmp_path / "nope")),
            "adapter folder .*nope.* does not exist",
        ),
        (
            SystemSpec(kind="vlm", model=str(model), adapter=str(tmp_path)),
            "no adapter_config.json",
        ),
        (SystemSpec(kind="vlm", model=str(tmp_path / "gone")), "model folder .* does not exist"),
        (SystemSpec(kind="vlm-base", model=str(model)), "vlm-base .* 'adapter' it disables"),
        (SystemSpec(kind="reference", prompt="no-such-prompt"), "unknown prompt"),
        (
            SystemSpec(kind="remote", remote_url="ftp://x", remote_model="m"),
            "must start with http",
        ),
        (SystemSpec(kind="template", remote_url="http://x"), "only applies to remote"),
    ]
    for spec, message in cases:
        with pytest.raises(SystemConfigError, match=message):
            register_system(store, "bad", spec)
    with pytest.raises(SystemConfigError, match="non-empty name"):
        register_system(store, "  ", SystemSpec(kind="reference"))
    assert _count(store) == 0


def test_unknown_system_lists_the_registered(store: Store) -> None:
    with pytest.raises(SystemConfigError, match="none yet"):
        get_system(store, "x")
    register_system(store, "reference", SystemSpec(kind="reference"))
    with pytest.raises(SystemConfigError, match="registered systems: reference"):
        get_system(store, "x")


def test_hub_model_ids_are_accepted_without_a_folder(store: Store) -> None:
    info, _ = register_system(
        store, "qwen", SystemSpec(kind="vlm", model="Qwen/Qwen3-VL-2B-Instruct", device="cpu")
    )
    assert info.config["model"] == "Qwen/Qwen3-VL-2B-Instruct"
    assert "model=Qwen/Qwen3-VL-2B-Instruct" in info.summary()
