"""Run one store operation and stop it just before its COMMIT, for a SIGKILL from outside.

Usage: python fault_child.py URL MARKER OPERATION JSON_ARGS

Every write of the operation has been sent to the database when the marker file appears;
the process then sleeps until it is killed. Nothing here changes the operation itself: the
pause is a SQLAlchemy event listener on the store's own engine.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from sqlalchemy import event

from studies.store.db import Store

WRITES = ("INSERT", "UPDATE", "DELETE")


def pause_before_commit(store: Store, marker: Path) -> None:
    def wrote(connection, _cursor, statement, _params, context, _many) -> None:  # noqa: ANN001
        # The compiled statement's kind (a PostgreSQL judgment is one WITH ... INSERT).
        kinds = context is not None and (context.isinsert or context.isupdate or context.isdelete)
        if kinds or statement.lstrip().upper().startswith(WRITES):
            connection.info["wrote"] = True

    def commit(connection) -> None:  # noqa: ANN001
        if connection.info.pop("wrote", False):
            marker.write_text("about to commit")
            time.sleep(120)  # killed here

    event.listen(store.engine, "before_cursor_execute", wrote)
    event.listen(store.engine, "commit", commit)


def main() -> None:
    url, marker, operation, raw = sys.argv[1:5]
    args = json.loads(raw)
    store = Store(url)
    pause_before_commit(store, Path(marker))
    if operation in ("submit", "correct"):
        from studies.readers.rating import correct_judgment, submit_judgment

        call = submit_judgment if operation == "submit" else correct_judgment
        call(store, args["rater_id"], args["token"], args["key"], args["preference"],
             args["likert"], args["comment"], 1.0)  # fmt: skip
    elif operation == "start":
        from studies.readers.lifecycle import start_study

        start_study(store, args["study_id"])
    elif operation == "import":
        from studies.benchmarks.importer import import_benchmark

        import_benchmark(store, args["loader"], args["root"], name=args["name"])
    else:
        raise SystemExit(f"unknown operation {operation!r}")
    print("finished without a pause: the operation wrote nothing", file=sys.stderr)
    raise SystemExit(3)


if __name__ == "__main__":
    main()
