"""Background-job ownership: runs and training jobs record their process the same way and
a dead owner closes either kind of job as failed."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from sqlalchemy import select

from model.spec import SystemSpec
from studies.store.db import Store
from studies.store.schema import Benchmark, Run, System, TrainingJob
from studies.systems.jobs import gone_pid, job_owner
from studies.systems.registry import register_system
from studies.systems.runs import close_abandoned_runs
from studies.systems.training_jobs import close_abandoned_jobs


def _dead_pid() -> int:
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(child.stdout)


def test_a_dead_owner_is_found_on_this_host_only() -> None:
    dead = _dead_pid()
    assert job_owner() == {"host": socket.gethostname(), "pid": os.getpid()}
    assert gone_pid(job_owner()) is None
    assert gone_pid({"host": socket.gethostname(), "pid": dead}) == dead
    assert gone_pid({"host": "another-host", "pid": dead}) is None  # cannot be checked here
    assert gone_pid(None) is None and gone_pid({"host": socket.gethostname()}) is None


def test_runs_and_training_jobs_close_dead_owners_alike(store: Store) -> None:
    dead, here = _dead_pid(), socket.gethostname()
    owners = {
        "dead": {"process": {"host": here, "pid": dead}},
        "alive": {"process": job_owner()},
        "elsewhere": {"process": {"host": "another-host", "pid": dead}},
        # a run row written before the owner moved under "process"
        "dead-old": {"host": here, "pid": dead},
    }
    register_system(store, "reference", SystemSpec(kind="reference"))
    with store.session() as session:
        benchmark = Benchmark(name="jobs", loader="polyp-reports", root="/tmp/jobs", task="report")
        session.add(benchmark)
        session.flush()
        system_id = session.scalar(select(System.id))
        for key, owner in owners.items():
            session.add(
                Run(
                    system_id=system_id,
                    benchmark_id=benchmark.id,
                    split=key,
                    status="running",
                    settings=owner,
                )
            )
            if key != "dead-old":
                session.add(TrainingJob(kind="sft", status="running", config=owner, output_dir=key))

    assert close_abandoned_runs(store) == 2
    assert close_abandoned_jobs(store) == 1
    with store.session() as session:
        runs = {r.split: (r.status, r.error) for r in session.scalars(select(Run))}
        jobs = {j.output_dir: (j.status, j.error) for j in session.scalars(select(TrainingJob))}
    for table in (runs, jobs):
        assert table["alive"] == ("running", None)
        assert table["elsewhere"] == ("running", None)
        assert table["dead"][0] == "failed" and str(dead) in table["dead"][1]
    assert runs["dead-old"][0] == "failed"
    # a closed job stays closed: a second pass changes nothing
    assert close_abandoned_runs(store) == 0 and close_abandoned_jobs(store) == 0
