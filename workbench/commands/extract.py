"""`medvision extract`: report text -> structured findings; `--validate STUDY`: the
extractor against the expert findings of an annotation study."""

from __future__ import annotations

import json
import sys

import typer

extract_app = typer.Typer()

VALIDATION_FORMATS = ("text", "json", "csv")


def _fail(message: str) -> None:
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(code=2)


@extract_app.command("extract")
def extract(
    validate: str | None = typer.Option(
        None,
        "--validate",
        metavar="STUDY",
        help="Instead: run the extractor on the expert reference reports of annotation study "
        "STUDY and print its accuracy per field against the experts' findings, with 95% CIs.",
    ),
    fmt: str = typer.Option("text", "--format", help="--validate: text, json or csv."),
) -> None:
    """Read JSON lines {"text": ...} on stdin; write one findings JSON per line.

    Research software, not a medical device.
    """
    if validate is not None:
        _validate(validate, fmt.lower())
        return
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


def _validate(study: str, fmt: str) -> None:
    if fmt not in VALIDATION_FORMATS:
        _fail(f"--format {fmt!r}: use {', '.join(VALIDATION_FORMATS)}")
    from studies.readers.annotation_results import validate_extractor
    from studies.readers.design import StudyError
    from studies.store.db import get_store

    try:
        validation = validate_extractor(get_store(), study)
    except StudyError as exc:
        _fail(str(exc))
    if fmt == "json":
        typer.echo(json.dumps(validation.to_dict(), indent=2, default=str))
    elif fmt == "csv":
        typer.echo(validation.csv(), nl=False)
    else:
        typer.echo(validation.text())
