"""row 38: no SQL built from strings, no pickle (or torch.load without weights_only=True),
no shell. The code of the app and the benches is read as Python syntax trees, so a new
occurrence anywhere fails here until it is reviewed and listed below with its reason."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("studies", "workbench", "model", "metrics", "bench")
SQL_CALLS = {"text", "execute", "exec_driver_sql", "executescript", "executemany"}
UNPICKLERS = {"pickle", "cPickle", "dill", "shelve", "marshal", "joblib", "cloudpickle"}

# SQL text with values put in by Python, each reviewed: the values are code constants or
# numbers, never input. (file, the call as ast.unparse writes it)
REVIEWED_SQL = {
    # A boolean chosen by the code, and a number of milliseconds.
    (
        "studies/store/db.py",
        "cursor.execute(f\"PRAGMA foreign_keys={('OFF' if migrating else 'ON')}\")",
    ),
    ("studies/store/db.py", "cursor.execute(f'PRAGMA busy_timeout={int(busy_timeout_s * 1000)}')"),
    # Trigger and table names from the migration's own constant tuples.
    (
        "studies/store/migrations/versions/0003_judgment_rules_in_the_database.py",
        "op.execute(f'DROP TRIGGER IF EXISTS {name}')",
    ),
    (
        "studies/store/migrations/versions/0003_judgment_rules_in_the_database.py",
        "op.execute(f'DROP TRIGGER IF EXISTS {table}_append_only ON {table}')",
    ),
    (
        "studies/store/migrations/versions/0003_judgment_rules_in_the_database.py",
        "op.execute(f'DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}')",
    ),
    # The bench's scratch PostgreSQL database, named by a uuid hex.
    ("bench/rater_load.py", "admin.execute(f'CREATE DATABASE \"{name}\"')"),
    ("bench/rater_load.py", "admin.execute(f'DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)')"),
}


def _built(node: ast.expr) -> bool:
    """A string made by the program: an f-string with values, '%' or '+', or .format()."""
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(part, ast.FormattedValue) for part in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod | ast.Add):
        return any(
            isinstance(side, ast.Constant | ast.JoinedStr) for side in (node.left, node.right)
        )
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "format"
    )


def _name(call: ast.Call) -> tuple[str, str]:
    """(owner, name) of a call: ('torch', 'load'), ('', 'text'), ('st', 'text')."""
    func = call.func
    if isinstance(func, ast.Attribute):
        owner = func.value.id if isinstance(func.value, ast.Name) else ""
        return owner, func.attr
    return "", getattr(func, "id", "")


def _findings() -> list[str]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            where = path.relative_to(ROOT).as_posix()
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    modules = [alias.name for alias in node.names]
                    if isinstance(node, ast.ImportFrom) and node.module:
                        modules.append(node.module)
                    if any(module.split(".")[0] in UNPICKLERS for module in modules):
                        found.append(f"{where}:{node.lineno}: imports an unpickler")
                if not isinstance(node, ast.Call):
                    continue
                owner, name = _name(node)
                keywords = {k.arg: k.value for k in node.keywords}
                code = ast.unparse(node)
                if (
                    name in SQL_CALLS
                    and owner != "st"
                    and node.args
                    and _built(node.args[0])
                    and (where, code) not in REVIEWED_SQL
                ):
                    found.append(f"{where}:{node.lineno}: SQL built from strings: {code}")
                shell = keywords.get("shell")
                if shell is not None and not (isinstance(shell, ast.Constant) and not shell.value):
                    found.append(f"{where}:{node.lineno}: shell=True")
                if (owner, name) in {("os", "system"), ("os", "popen")}:
                    found.append(f"{where}:{node.lineno}: a shell through os.{name}")
                if (owner, name) == ("torch", "load"):
                    weights = keywords.get("weights_only")
                    if not (isinstance(weights, ast.Constant) and weights.value is True):
                        found.append(f"{where}:{node.lineno}: torch.load without weights_only")
                if name == "read_pickle":
                    found.append(f"{where}:{node.lineno}: read_pickle")
                allow = keywords.get("allow_pickle")
                if allow is not None and not (isinstance(allow, ast.Constant) and not allow.value):
                    found.append(f"{where}:{node.lineno}: allow_pickle")
    return found


def test_no_string_built_sql_no_pickle_no_shell() -> None:
    """row 38: each finding names the file, the line and what it is."""
    assert _findings() == []


def test_the_scan_finds_what_it_looks_for(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """row 38: the scan is not empty by construction: planted code is found."""
    planted = tmp_path / "studies"
    planted.mkdir()
    (planted / "bad.py").write_text(
        "import pickle\n"
        "import subprocess\n"
        "import torch\n"
        "from sqlalchemy import text\n"
        "def f(session, name, path):\n"
        "    session.execute(text(f\"SELECT * FROM accounts WHERE username = '{name}'\"))\n"
        "    session.execute('DELETE FROM judgments WHERE id = %s' % name)\n"
        "    subprocess.run('ls ' + path, shell=True)\n"
        "    torch.load(path)\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    kinds = sorted(line.split(": ", 1)[1].split(":")[0] for line in _findings())
    assert kinds == [
        "SQL built from strings",
        "SQL built from strings",
        "imports an unpickler",
        "shell=True",
        "torch.load without weights_only",
    ]
