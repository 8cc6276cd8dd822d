"""`make bench`: every benchmark, one JSON object each, also saved under bench/results/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = ["ingest_bench.py", "retrieval_bench.py", "answer_bench.py", "app_start_bench.py", "load_bench.py"]


def main() -> int:
    out_dir = HERE / "results"
    out_dir.mkdir(exist_ok=True)
    status = 0
    for name in BENCHES:
        if not (HERE / name).exists():
            continue
        proc = subprocess.run([sys.executable, str(HERE / name)], cwd=HERE, capture_output=True, text=True)
        sys.stdout.write(proc.stdout)
        if proc.returncode:
            sys.stderr.write(proc.stderr[-2000:])
            status = 1
        (out_dir / name.replace(".py", ".json")).write_text(proc.stdout, encoding="utf-8")
    return status


if __name__ == "__main__":
    sys.exit(main())
