"""`medvision --help` imports no command module; `medvision GROUP --help` imports only its own.

Each check runs in a fresh interpreter, so what is imported is exactly what the command
needed (timings are measured in bench/cli_startup.py, not here).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from workbench.cli import COMMANDS

PROBE = """
import json, sys
from typer.testing import CliRunner
from workbench.cli import app
result = CliRunner().invoke(app, sys.argv[1:])
heavy = ("torch", "transformers", "trl", "peft", "pandas", "statsmodels", "streamlit")
print(json.dumps({
    "exit": result.exit_code,
    "output": result.output,
    "commands": sorted(m for m in sys.modules if m.startswith("workbench.commands.")),
    "heavy": sorted(m for m in heavy if m in sys.modules),
}))
"""


def _probe(*args: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_top_level_help_lists_every_command_and_imports_none() -> None:
    seen = _probe("--help")
    assert seen["exit"] == 0
    assert all(name in seen["output"] for name in COMMANDS)
    assert seen["commands"] == [] and seen["heavy"] == []


# Command modules a group's module registers on its group (their commands are in its help).
REGISTERED: dict[str, list[str]] = {"stats": ["workbench.commands.mrmc"]}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_command_help_imports_only_its_own_module(name: str) -> None:
    seen = _probe(name, "--help")
    assert seen["exit"] == 0, seen["output"]
    module = COMMANDS[name].target.partition(":")[0]
    assert seen["commands"] == sorted([module, *REGISTERED.get(name, [])])
    # help must not pay for the model stack or the statistics stack
    assert seen["heavy"] == [], f"`medvision {name} --help` imports {seen['heavy']}"


def test_an_unknown_command_is_a_clear_message() -> None:
    seen = _probe("leaderbord")
    assert seen["exit"] != 0 and "leaderbord" in seen["output"]
