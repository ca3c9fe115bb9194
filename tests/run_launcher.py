"""Test helper: a `pixseek` that has already imported itself (and torch) and forks one fresh
process per command, so a test can SIGKILL fifty runs without paying Python's and torch's
start-up fifty times (seconds each on a small machine, and kills during interpreter start-up
test nothing of pixseek).

Each command still runs in a process of its own, in a session of its own (so a test can find
every process it left behind), with its own environment, stdout/stderr file and PID, and what
runs is `web.cli.main`, as the console script calls it. Nothing of pixseek or torch has run in
this process before it forks; its only other thread is numpy's BLAS pool, which re-initialises
itself after a fork exactly as in every DataLoader worker fork.

Protocol, one JSON object per line: `{"op": "run", "args": [...], "env": {...}, "log": PATH}`
answers `{"pid": N}`; `{"op": "wait", "pid": N}` answers `{"returncode": R}` (negative: killed
by signal -R). End of input kills what is still running and exits.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import traceback
from typing import Any


def _run_child(request: dict[str, Any]) -> None:
    code = 1
    try:
        os.setsid()
        os.environ.clear()
        os.environ.update(request["env"])
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        os.close(null)
        sys.argv = ["pixseek", *request["args"]]
        from web.cli import main

        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
    except BaseException:  # noqa: BLE001 - reported in the run's log, like an uncaught error
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def main() -> None:
    import open_clip  # noqa: F401 - imported by the encoder registry on first use (seconds)

    import indexer.enrich.captions
    import indexer.jobs  # noqa: F401
    import search.query.engine
    import search.storage.integrity  # noqa: F401
    import web.cli  # noqa: F401

    children: set[int] = set()
    print(json.dumps({"ready": os.getpid()}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        if request["op"] == "run":
            pid = os.fork()
            if pid == 0:
                _run_child(request)
            children.add(pid)
            print(json.dumps({"pid": pid}), flush=True)
        elif request["op"] == "wait":
            _, status = os.waitpid(request["pid"], 0)
            children.discard(request["pid"])
            print(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}), flush=True)
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


if __name__ == "__main__":
    main()
