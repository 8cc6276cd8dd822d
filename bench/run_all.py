"""`make bench`: every benchmark, one JSON object each (saved under bench/results/), then issue
17's table, each row against its baseline measured in the same run, with `met` per row:
printed last on stdout as one JSON object and saved as bench/results/summary.json (and as a
Markdown table, summary.md).

The warm benchmarks share one store of the bundled notes (BENCH_STORE, else a temporary one
ingested by the first of them). Each benchmark runs in its own process, one after the other.
BENCH_ONLY=a,b / BENCH_SKIP=a,b pick benchmarks by name (e.g. BENCH_SKIP=load,scale);
BENCH_SCALE=skip|measure|build (scale_bench.py) and BENCH_ROUNDS pass through.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = [
    "ingest_bench.py",
    "retrieval_bench.py",
    "quantization_bench.py",
    "cli_bench.py",
    "answer_bench.py",
    "app_start_bench.py",
    "scale_bench.py",
    "load_bench.py",  # concurrent users: not a row of issue 17's table
]


def selected() -> list[str]:
    def names(var: str) -> set[str]:
        return {n.strip().removesuffix(".py").removesuffix("_bench") for n in os.environ.get(var, "").split(",") if n}

    only, skip = names("BENCH_ONLY"), names("BENCH_SKIP")
    out = []
    for name in BENCHES:
        short = name.removesuffix(".py").removesuffix("_bench")
        if (HERE / name).exists() and (not only or short in only) and short not in skip:
            out.append(name)
    return out


def run(name: str, env: dict) -> tuple[int, str, list[str]]:
    """Run one benchmark: its stderr (progress) passes through as it comes, its stdout (one
    JSON object) is kept. Returns exit code, stdout and the last lines of stderr."""
    tail: deque[str] = deque(maxlen=40)
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8") as out:
        proc = subprocess.Popen(
            [sys.executable, str(HERE / name)], cwd=HERE, env=env, stdout=out, stderr=subprocess.PIPE, text=True
        )
        for line in proc.stderr:
            sys.stderr.write(line)
            tail.append(line.rstrip())
        code = proc.wait()
        out.seek(0)
        return code, out.read(), list(tail)


def markdown(rows: list[dict]) -> str:
    def fmt(v: object, unit: str = "") -> str:
        if v is None:
            return "—"
        return f"{v:g} {unit}".strip() if isinstance(v, int | float) else str(v)

    met = {True: "yes", False: "**no**", None: "—"}
    lines = ["| measure | baseline | now | ratio | target | met |", "|---|---|---|---|---|---|"]
    for r in rows:
        ratio = f"{r['ratio']:g}×" if r.get("ratio") is not None else "—"
        lines.append(
            f"| {r['measure']} | {fmt(r['baseline'], r['unit'])} | {fmt(r['now'], r['unit'])} | {ratio} "
            f"| {r['target']} | {met[r['met']]} |"
        )
    return "\n".join(lines)


def main() -> int:
    out_dir = HERE / "results"
    out_dir.mkdir(exist_ok=True)
    env = dict(os.environ)
    scratch = None
    if not env.get("BENCH_STORE"):
        scratch = Path(tempfile.mkdtemp(prefix="bench-store-"))
        env["BENCH_STORE"] = str(scratch)
    status = 0
    rows: list[dict] = []
    runs: dict[str, dict] = {}
    started = time.time()
    try:
        for name in selected():
            load_before = os.getloadavg()
            t = time.perf_counter()
            code, stdout, tail = run(name, env)
            seconds = round(time.perf_counter() - t, 1)
            sys.stdout.write(stdout)
            sys.stdout.flush()
            (out_dir / name.replace(".py", ".json")).write_text(stdout, encoding="utf-8")
            runs[name] = {"seconds": seconds, "exit": code, "loadavg_before": [round(x, 2) for x in load_before]}
            try:
                data = json.loads(stdout)
            except ValueError:
                data = {}
            if code or not data:
                status = 1
                rows.append(
                    {"benchmark": name, "measure": f"{name} failed (exit {code})", "baseline": None, "now": None,
                     "ratio": None, "unit": "", "target": "runs", "met": False, "note": tail[-1] if tail else ""}
                )  # fmt: skip
                continue
            rows += [{"benchmark": data.get("benchmark", name), **r} for r in data.get("rows", [])]
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    judged = [r for r in rows if r["met"] is not None]
    summary = {
        "benchmark": "summary",
        "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)),
        "cpus": os.cpu_count(),
        "runs": runs,
        "all_met": bool(judged) and all(r["met"] for r in judged),
        "rows": rows,
    }
    print(json.dumps(summary, indent=1, ensure_ascii=False))
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False), encoding="utf-8")
    (out_dir / "summary.md").write_text(markdown(rows) + "\n", encoding="utf-8")
    sys.stderr.write("\n" + markdown(rows) + "\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
