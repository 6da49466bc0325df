"""`medvision extract`: report text -> structured findings."""

from __future__ import annotations

import json
import sys

import typer

extract_app = typer.Typer()


def _fail(message: str) -> None:
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(code=2)


@extract_app.command("extract")
def extract() -> None:
    """Read JSON lines {"text": ...} on stdin; write one findings JSON per line.

    Research software, not a medical device.
    """
    from metrics.clinical import extract_findings

    outputs = []
    for number, line in enumerate(sys.stdin, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            _fail(f"stdin line {number}: not valid JSON ({exc.msg})")
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            _fail(f'stdin line {number}: expected an object with a "text" string')
        outputs.append(json.dumps(extract_findings(record["text"]), sort_keys=False))
    # Written only after every line parsed, so bad input yields no partial output.
    for output in outputs:
        typer.echo(output)
