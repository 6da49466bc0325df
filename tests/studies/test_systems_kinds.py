"""The one table of system kinds (model.kinds.KINDS) drives the registry and `systems add`.

On the old layout a kind was listed in four places (model/systems.py, studies/systems.py twice,
studies/runs.py), so a kind added to one of them was refused by another; `remote_timeout_s`
and `remote_retries` had no `systems add` option.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from model.kinds import KINDS, SystemKind, build_generator, check_spec, kinds_where
from model.prompts import PromptTemplate, prompt_for_task
from model.requests import ReportRequest, ReportResult
from model.spec import SpecError, SystemSpec
from studies.store.db import Store, get_store
from studies.systems.registry import SystemConfigError, get_system, register_system
from workbench.cli import app

runner = CliRunner()


class EchoGenerator:
    """A generator of a kind that only this test adds: it writes the prompt's instruction."""

    def __init__(self, spec: SystemSpec) -> None:
        self.spec = spec

    def generate(
        self,
        requests: list[ReportRequest],
        prompt: PromptTemplate,
        progress: Callable[[int], None] | None = None,
    ) -> list[ReportResult]:
        return [
            ReportResult(prompt.user_text(r.question), 0.0, None, None, "baseline")
            for r in requests
        ]


@pytest.fixture
def echo_kind(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """One new row in KINDS, and nothing else edited (the CLI module is re-read from it)."""
    import workbench.commands.systems as systems_commands

    monkeypatch.setitem(
        KINDS,
        "echo",
        SystemKind(
            "echo",
            f"{__name__}:EchoGenerator",
            "writes the instruction back (a test kind)",
            options=("remote_model",),
            required=("remote_model",),
            generates_text=True,
        ),
    )
    importlib.reload(systems_commands)
    yield "echo"
    monkeypatch.undo()
    importlib.reload(systems_commands)


def test_a_kind_added_to_the_table_is_accepted_everywhere(echo_kind: str, tmp_home: Path) -> None:
    spec = SystemSpec(kind=echo_kind, remote_model="echo-1")
    assert check_spec(spec).name == echo_kind
    assert echo_kind in kinds_where(generates_text=True)
    generator = build_generator(spec)
    assert isinstance(generator, EchoGenerator)
    request = ReportRequest(key="c1", images=[Path("x.png")])
    prompt = prompt_for_task("report")
    assert generator.generate([request], prompt)[0].text == prompt.user_text(None)

    helped = runner.invoke(app, ["systems", "add", "--help"])
    assert helped.exit_code == 0 and "echo: writes the instruction back" in helped.output
    missing = runner.invoke(app, ["systems", "add", "e", "--kind", echo_kind])
    assert missing.exit_code == 1 and "needs --remote-model" in missing.output
    added = runner.invoke(
        app, ["systems", "add", "e", "--kind", echo_kind, "--remote-model", "echo-1"]
    )
    assert added.exit_code == 0, added.output
    info = get_system(get_store(), "e")
    assert info.kind == echo_kind and info.spec.remote_model == "echo-1"
    assert "max_new_tokens=" in info.summary()  # a text-writing kind shows its length


def test_the_store_refuses_what_the_table_does(store: Store) -> None:
    with pytest.raises(SystemConfigError, match="unknown system kind 'echo'") as unknown:
        register_system(store, "e", SystemSpec(kind="echo"))
    assert unknown.value.fields == ("kind",)
    with pytest.raises(SpecError, match="'remote_retries' only applies to remote systems"):
        register_system(store, "t", SystemSpec(kind="template", remote_retries=5))


def test_systems_add_sets_remote_timeout_and_retries(tmp_home: Path) -> None:
    result = runner.invoke(
        app,
        [
            "systems", "add", "vllm", "--kind", "remote",
            "--remote-url", "http://127.0.0.1:8000/v1", "--remote-model", "qwen",
            "--remote-timeout-s", "30", "--remote-retries", "0", "--remote-concurrency", "2",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    spec = get_system(get_store(), "vllm").spec
    assert (spec.remote_timeout_s, spec.remote_retries, spec.remote_concurrency) == (30.0, 0, 2)
    bad = runner.invoke(
        app,
        [
            "systems", "add", "bad", "--kind", "remote", "--remote-url", "http://x/v1",
            "--remote-model", "q", "--remote-timeout-s", "0",
        ],
    )  # fmt: skip
    assert bad.exit_code == 1 and "--remote-timeout-s must be positive" in bad.output
    wrong_kind = runner.invoke(
        app, ["systems", "add", "t", "--kind", "template", "--remote-retries", "1"]
    )
    assert wrong_kind.exit_code == 1
    assert "--remote-retries only applies to remote systems, not template" in wrong_kind.output


def test_every_spec_field_but_kind_is_a_systems_add_option() -> None:
    import dataclasses

    import typer

    from workbench.commands.systems import systems_app

    add = typer.main.get_command(systems_app).commands["add"]  # type: ignore[attr-defined]
    flags = {flag for param in add.params for flag in param.opts}
    for item in dataclasses.fields(SystemSpec):
        if item.name != "kind":
            assert "--" + item.name.replace("_", "-") in flags, item.name
