"""Helpers for the benchmarks: timing, percentiles, the dev queries, a scratch store."""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

SHARED_DEV = PROJECT.parent / "shared" / "eval" / "dev_queries.jsonl"
OWN_GOLD = PROJECT / "assistant" / "data" / "gold.jsonl"


def queries() -> tuple[str, list[str]]:
    path = SHARED_DEV if SHARED_DEV.exists() else OWN_GOLD
    with open(path, encoding="utf-8") as fh:
        return str(path), [json.loads(line)["query"] for line in fh if line.strip()]


def summary(samples_s: list[float]) -> dict:
    ms = sorted(x * 1000 for x in samples_s)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    return {"median_ms": round(statistics.median(ms), 3), "p95_ms": round(p95, 3), "n": len(ms)}


def emit(data: dict) -> None:
    print(json.dumps(data, indent=1, ensure_ascii=False))
