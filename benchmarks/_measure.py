"""Fallback timer when GNU ``/usr/bin/time`` is missing: run a command, record wall and peak RSS.

    python benchmarks/_measure.py OUT.json CMD [ARGS...]

This wrapper is a fresh process per measured command, so ``RUSAGE_CHILDREN.ru_maxrss`` is the
peak resident set of that one command (the largest of it and its waited-for descendants, as
GNU time reports). Writes ``{"wall_s", "max_rss_kib", "exit_code", "timer"}`` to OUT.json and
exits with the command's exit code.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: _measure.py OUT.json CMD [ARGS...]", file=sys.stderr)
        return 2
    out, cmd = argv[0], argv[1:]
    t0 = time.perf_counter()
    rc = subprocess.call(cmd)
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    with open(out, "w") as f:
        json.dump(
            {
                "wall_s": round(wall, 3),
                "max_rss_kib": int(peak),
                "exit_code": rc,
                "timer": "python-resource",
            },
            f,
        )
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
