"""How long the package takes to give up on what does not answer (moved from the tests).

Usage (from the project root)::

    python benchmarks/bench_timeouts.py [--timeout 2]

Measures, with ``--timeout`` seconds configured, the wall time until

* ``map_tasks`` on the dask backend reports an unreachable scheduler (``connect_timeout``);
* ``fetch`` reports a server that accepts the connection and never answers (``timeout``).

Each should be close to the configured timeout (plus the start of a Dask client); the
results are printed and appended as JSON lines to ``benchmarks/results.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import socket
import tempfile
import threading
import time
from pathlib import Path

from analysis.data.fetch import fetch
from analysis.errors import FetchError, ParallelError
from analysis.parallel import ParallelSettings, map_tasks

RESULTS = Path(__file__).with_name("results.jsonl")


def _draw(item: int, seed: int) -> int:
    return item + seed


def unreachable_scheduler(timeout: float) -> float:
    """Seconds until an unreachable scheduler is reported."""
    s = ParallelSettings(backend="dask", address="tcp://127.0.0.1:9", connect_timeout=timeout)
    started = time.perf_counter()
    try:
        map_tasks(_draw, range(3), seed=0, settings=s)
    except ParallelError:
        return time.perf_counter() - started
    raise RuntimeError("a scheduler answered at tcp://127.0.0.1:9")


def silent_server(timeout: float) -> float:
    """Seconds until a server that never answers is reported."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(5)
    accepted = []  # keep the connection open: the server accepts and says nothing
    threading.Thread(target=lambda: accepted.append(sock.accept()), daemon=True).start()
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            fetch("ml-latest-small", Path(tmp) / "raw",
                  base_url=f"http://127.0.0.1:{sock.getsockname()[1]}", timeout=timeout)
    except FetchError:
        return time.perf_counter() - started
    finally:
        sock.close()
    raise RuntimeError("the silent server answered")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=2.0)
    args = parser.parse_args()
    row = {"bench": "timeouts", "timeout_s": args.timeout,
           "unreachable_scheduler_s": round(unreachable_scheduler(args.timeout), 2),
           "silent_server_s": round(silent_server(args.timeout), 2)}
    print(json.dumps(row))
    with RESULTS.open("a") as fh:
        fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
