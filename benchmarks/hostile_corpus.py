"""The hostile corpus in numbers: its size by kind, exit codes, and the slowest cases, in one run.

    python benchmarks/hostile_corpus.py [--json]

Builds the seeded corpus of ``tests/hostile_corpus.py`` in a temporary folder and runs every file through
``vsr probe``, ``vsr enhance`` (bicubic x2, frame mode) and ``vsr enhance --salvage`` in this process (the
pre-flight still runs in its child process per file), as ``tests/test_hostile_corpus.py`` does; prints
the counts the issue asks for.  The test is the contract; this is the measurement.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import hostile_corpus
    from conftest import invoke

    work = Path(tempfile.mkdtemp(prefix="vsr-corpus-bench-"))
    cases = hostile_corpus.build(work / "corpus")
    runs = {
        "probe": lambda c, out: ["probe", str(c.path)],
        "enhance": lambda c, out: ["enhance", str(c.path), str(out), "--model", "bicubic", "--mode", "frame", "-q"],
        "salvage": lambda c, out: [
            "enhance", str(c.path), str(out), "--model", "bicubic", "--mode", "frame", "-q", "--salvage",
        ],
    }  # fmt: skip
    codes: dict[str, collections.Counter] = {name: collections.Counter() for name in runs}
    timings = []
    for case in cases:
        for name, argv in runs.items():
            out = work / "out.mkv"
            began = time.perf_counter()
            result = invoke(*argv(case, out), "--overwrite") if name != "probe" else invoke(*argv(case, out))
            seconds = time.perf_counter() - began
            codes[name][result.returncode] += 1
            timings.append((seconds, name, case.kind, case.name))
            out.unlink(missing_ok=True)
    kinds = collections.Counter(c.kind for c in cases)
    result = {
        "files": len(cases),
        "by_kind": dict(sorted(kinds.items())),
        "exit_codes": {name: dict(sorted(c.items())) for name, c in codes.items()},
        "slowest": [
            {"seconds": round(s, 3), "command": n, "kind": k, "file": f}
            for s, n, k, f in sorted(timings)[-8:][::-1]
        ],
        "median_seconds": {
            name: round(sorted(s for s, n, _, _ in timings if n == name)[len(cases) // 2], 3) for name in runs
        },
    }
    print(json.dumps(result, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
