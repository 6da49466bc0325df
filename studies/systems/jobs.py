"""Background-job ownership, shared by runs and training jobs.

A job row records which process runs it (`job_owner()`, stored under the key "process");
a later call on the same host closes the rows whose process is gone (killed, crashed), so
a dead job never shows as running. Rows of another host are left alone: their process
cannot be checked from here.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from studies.store.schema import utcnow

Row = TypeVar("Row")


def job_owner() -> dict[str, Any]:
    """The running process, as stored with a job: {"host": ..., "pid": ...}."""
    return {"host": socket.gethostname(), "pid": os.getpid()}


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def gone_pid(owner: Mapping[str, Any] | None) -> int | None:
    """The pid of the owning process when it ran on this host and is gone; else None."""
    owner = owner or {}
    pid = owner.get("pid")
    if owner.get("host") != socket.gethostname() or not isinstance(pid, int):
        return None
    return None if process_alive(pid) else pid


def close_abandoned(
    rows: Iterable[Row],
    owner_of: Callable[[Row], Mapping[str, Any] | None],
    error_of: Callable[[int], str],
) -> int:
    """Mark each running row whose process is gone as failed, with error_of(pid); the count.

    The rows (ORM objects with status, error and finished_at) are changed in their session;
    the caller commits.
    """
    closed = 0
    for row in rows:
        pid = gone_pid(owner_of(row))
        if pid is None:
            continue
        row.status = "failed"
        row.error = error_of(pid)
        row.finished_at = utcnow()
        closed += 1
    return closed
