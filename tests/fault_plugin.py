"""A throwaway plugin for the fault tests (a slow job that logs its start and end),
and a worker that loads it: ``python -m tests.fault_plugin`` runs ``trellis worker``
with this plugin registered as if installed."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from trellis import hookimpl
from trellis.specs import JobSpec, Manifest


@hookimpl
def trellis_manifest() -> Manifest:
    return Manifest(label="Faults", description="A slow job for the fault tests.")


def slow(path: str, seconds: float) -> None:
    with Path(path).open("a") as log:
        log.write("start\n")
    time.sleep(seconds)
    with Path(path).open("a") as log:
        log.write("done\n")


@hookimpl
def trellis_jobs() -> list[JobSpec]:
    return [JobSpec("faults.slow", slow, timeout=120)]


if __name__ == "__main__":
    from flask.cli import ScriptInfo

    from trellis.app import create_app
    from trellis.cli import main

    this = sys.modules[__name__]
    main(["worker"], obj=ScriptInfo(
        create_app=lambda: create_app(extra_plugins=[("faults", this)])))
