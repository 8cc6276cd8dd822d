"""The command line as people script it: whole processes, wall time from spawn to exit.

`python -m assistant search QUERY` and `ask QUESTION` (LLM_PROVIDER=none: a quoted answer)
against `python -m assistant personas --search X` (a name lookup: no Chroma, no model) in the
same run, interleaved, BENCH_CLI_RUNS (default 5) runs of each per query, median. The store is
the shared bench store (BENCH_STORE), ingested already. One more run of each, through a
wrapper that reports at exit whether torch (or sentence-transformers/transformers) was imported.

Target (issue 17): `search` and `ask` <= 1.5 s each (median); the baseline is reported.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys

from common import PROJECT, base_env, bench_store, emit, log, row, timed

TARGET_S = 1.5
SEARCHES = ["linx termnal", "what is cache-aside?", "disadvantages of sharding"]
QUESTIONS = ["what is cache-aside?", "disadvantages of sharding", "what's a CNAME record"]
BASELINE = ["linx termnal", "storyteler", "act as a magican"]

# Runs `python -m assistant ARGS…` and says on stderr which heavy modules it imported.
WRAPPER = r"""
import atexit, json, runpy, sys
def report():
    heavy = [m for m in ("torch", "transformers", "sentence_transformers") if m in sys.modules]
    sys.stderr.write("\nIMPORTED " + json.dumps(heavy) + "\n")
atexit.register(report)
sys.argv = ["assistant", *sys.argv[1:]]
runpy.run_module("assistant", run_name="__main__", alter_sys=True)
"""


def heavy_imports(args: list[str], env: dict) -> list[str]:
    out = subprocess.run([sys.executable, "-c", WRAPPER, *args], cwd=PROJECT, env=env, capture_output=True, text=True)
    for line in out.stderr.splitlines():
        if line.startswith("IMPORTED "):
            return json.loads(line.removeprefix("IMPORTED "))
    return [f"? exit {out.returncode}: {out.stderr[-300:]}"]


def main() -> None:
    store = bench_store()
    env = base_env(STORE_DIR=store)
    timed([sys.executable, "-m", "ingest", "--json"], env)  # nothing to do once run_all's store is ingested
    runs = int(os.environ.get("BENCH_CLI_RUNS", "5"))
    commands = {
        "search": [["search", q] for q in SEARCHES],
        "ask": [["ask", q] for q in QUESTIONS],
        "personas": [["personas", "--search", q] for q in BASELINE],
    }
    samples: dict[str, list[float]] = {k: [] for k in commands}
    timed([sys.executable, "-m", "assistant", "search", "warm the disk cache"], env)
    for n in range(runs):
        log(f"cli: run {n + 1}/{runs}")
        for i in range(len(SEARCHES)):
            for name, cmds in commands.items():
                t, _ = timed([sys.executable, "-m", "assistant", *cmds[i]], env)
                samples[name].append(t)
    med = {k: round(statistics.median(v), 3) for k, v in samples.items()}
    imports = {name: heavy_imports(cmds[0], env) for name, cmds in commands.items()}
    rows = [
        row(
            f"CLI `{name}`, whole process (median of {len(samples[name])})",
            baseline=med["personas"],
            now=med[name],
            unit="s",
            target=f"<= {TARGET_S} s",
            met=med[name] <= TARGET_S,
            note=f"baseline `personas --search`; heavy imports: {', '.join(imports[name]) or 'none'}",
        )
        for name in ("search", "ask")
    ]
    emit(
        {
            "benchmark": "cli",
            "median_s": med,
            "samples_s": {k: [round(x, 3) for x in v] for k, v in samples.items()},
            "heavy_imports": imports,
            "rows": rows,
        }
    )


if __name__ == "__main__":
    main()
