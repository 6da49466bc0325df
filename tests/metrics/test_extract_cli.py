"""`medvision extract`: JSON lines in, one findings object per line out."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from metrics.clinical import extract_findings
from workbench.cli import app


def test_extract_reads_json_lines_and_writes_findings() -> None:
    texts = ["A 12 mm pedunculated polyp in the sigmoid, hot snare.", "No polyps. BBPS 8."]
    stdin = "\n".join(json.dumps({"text": t}) for t in texts) + "\n\n"
    result = CliRunner().invoke(app, ["extract"], input=stdin)
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in result.stdout.splitlines()]
    assert lines == [extract_findings(t) for t in texts]
    assert lines[0]["lesions"][0]["paris"] == "0-Ip"
    assert lines[1]["no_polyps"] is True and lines[1]["bbps_total"] == 8


def test_extract_names_the_bad_line_and_writes_nothing() -> None:
    stdin = json.dumps({"text": "A polyp."}) + "\n{not json\n"
    result = CliRunner().invoke(app, ["extract"], input=stdin)
    assert result.exit_code == 2
    assert "stdin line 2: not valid JSON" in result.output
    assert "lesions" not in result.stdout
    result = CliRunner().invoke(app, ["extract"], input='{"report": "x"}\n')
    assert (
        result.exit_code == 2 and 'stdin line 1: expected an object with a "text"' in result.output
    )


def test_extract_writes_null_for_silence_and_flags_hedges() -> None:
    texts = ["", "xq blorp zzt", "Rule out adenoma.", "Normal colonoscopy."]
    stdin = "\n".join(json.dumps({"text": t}) for t in texts) + "\n"
    result = CliRunner().invoke(app, ["extract"], input=stdin)
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in result.stdout.splitlines()]
    assert [line["no_polyps"] for line in lines] == [None, None, None, True]
    assert [line["hedged"] for line in lines] == [False, False, True, False]
    assert lines[2]["lesions"] == [] and lines[2]["hedged_lesions"][0]["histology"] == "adenoma"
