"""Warm query latency and memory at 50,000 chunks (the store of `scale_notes.py`).

The store is built once and cached, keyed by the generator, the ingest code and the source
trees (see scale_notes.py); building it takes an hour or more on two cores, so:
- BENCH_SCALE=build (default): build or finish it if needed, then measure (in a new process);
- BENCH_SCALE=measure: measure what is there; a store not finished (English index only) is
  measured as such, and a store built for older code is used if there is no other, both said
  in the rows' notes;
- BENCH_SCALE=skip: rows marked not measured.

In this process: the Service's index load (time, and resident memory before and after), the
models, then `Service.pipeline.search(q)` over the dev queries, BENCH_ROUNDS rounds (default
3), each message timed as new, interleaved with a plain Chroma query of the same store (the
query embedded by the same notes model, then `collection.query(n_results=5)`: HNSW) for
scale. Then one profiled pass (cProfile), whose top entries are in the output.

Targets (issue 17): median <= 60 ms, p95 <= 150 ms at 50,000 chunks.
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import scale_notes
from common import emit, log, queries, row, rss_mb, summary, timed_search

MEDIAN_MAX_MS = 60.0
P95_MAX_MS = 150.0


def find_store(mode: str) -> tuple[Path | None, str]:
    """The store to measure and what to say about it."""
    key = scale_notes.scale_key()
    folder = scale_notes.scale_dir(key)
    if mode == "build":
        log(f"scale: building or checking {folder} (progress below; BENCH_SCALE=skip skips)")
        scale_notes.build(key, log=lambda m: log(f"scale: {m}"))
        return folder, ""
    if scale_notes.status(folder).get("english"):
        return folder, ""
    others = sorted(
        (p for p in scale_notes.cache_root().glob("scale-*") if scale_notes.status(p).get("english")),
        key=lambda p: p.stat().st_mtime,
    )
    if others:
        return others[-1], f"store built for other code (key {others[-1].name}, current {key})"
    return None, f"no store built yet for key {key}: python bench/scale_notes.py build"


def partial_note(build: dict) -> str:
    part = build.get("crosslingual_partial")
    if not part:
        return "not filled yet"
    left = part["views"] - part["views_done_including_cached"]
    rate = part.get("rate_per_s") or 0
    eta = f", about {left / rate / 3600:.1f} h more at that rate" if rate else ""
    return (
        f"not filled yet: {part['views_done_including_cached']:,} of {part['views']:,} views done (cached ones "
        f"included) when stopped at {part['stopped_at']}; {rate} views/s{eta}"
    )


def profile_top(fn, n: int = 14) -> list[str]:  # noqa: ANN001
    prof = cProfile.Profile()
    prof.enable()
    fn()
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(n)
    lines = [ln.rstrip() for ln in out.getvalue().splitlines() if ln.strip()]
    start = next((i for i, ln in enumerate(lines) if ln.lstrip().startswith("ncalls")), 0)
    return lines[start : start + n + 1]


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    mode = os.environ.get("BENCH_SCALE", "build")
    names = ("warm query median at 50,000 chunks", "warm query p95 at 50,000 chunks")
    if mode == "skip":
        emit({"benchmark": "scale", "skipped": "BENCH_SCALE=skip", "rows": [
            row(n, now=None, target=t, met=None, unit="ms", note="skipped (BENCH_SCALE=skip)")
            for n, t in zip(names, (f"<= {MEDIAN_MAX_MS:.0f} ms", f"<= {P95_MAX_MS:.0f} ms"))
        ]})  # fmt: skip
        return
    if mode == "build":
        find_store(mode)
        # Measured in a fresh process: resident memory and thread pools as a server would have them.
        code = subprocess.run([sys.executable, __file__], env={**os.environ, "BENCH_SCALE": "measure"}).returncode
        sys.exit(code)
    folder, caveat = find_store(mode)
    if folder is None:
        emit({"benchmark": "scale", "skipped": caveat, "rows": [
            row(n, now=None, target=t, met=None, unit="ms", note=caveat)
            for n, t in zip(names, (f"<= {MEDIAN_MAX_MS:.0f} ms", f"<= {P95_MAX_MS:.0f} ms"))
        ]})  # fmt: skip
        return
    build = scale_notes.status(folder)
    if not build.get("complete"):
        caveat = "; ".join(filter(None, [caveat, "English index only: the cross-lingual views are not filled yet"]))

    from assistant.service import Service

    settings = scale_notes.settings_for(folder)
    service = Service(settings)
    rss_before = rss_mb()
    shim = ""
    t = time.perf_counter()
    try:
        index = service.index
    except Exception as exc:
        if not scale_notes.too_many_variables(exc):
            raise
        # The product as shipped cannot load this store (one Chroma get of every record);
        # measured with the bench's paged get instead, and the rows say so (met: False).
        shim = f"Index.load fails at this size ({type(exc).__name__}: {exc}); measured with a bench-side paged get"
        log(f"scale: {shim}")
        scale_notes.install_paged_get()
        t = time.perf_counter()
        index = service.index
    index_load_s = time.perf_counter() - t
    rss_index = rss_mb()
    t = time.perf_counter()
    pipeline = service.pipeline
    models_s = time.perf_counter() - t
    rss_loaded = rss_mb()
    chunks = len(index.passages)
    log(f"scale: {chunks:,} chunks loaded in {index_load_s:.1f} s (+{rss_index - rss_before:.0f} MB)")

    source, qs = queries()
    embedder = service.embeddings
    rounds = int(os.environ.get("BENCH_ROUNDS", "3"))

    def ours(q: str) -> float:
        return timed_search(pipeline, q)

    def plain(q: str) -> float:
        t = time.perf_counter()
        index.collection.query(query_embeddings=[embedder.embed_query(q)], n_results=5)
        return time.perf_counter() - t

    def interleaved() -> tuple[dict, dict]:
        for q in qs[:5]:
            ours(q)
            plain(q)
        mine, base = [], []
        for n in range(rounds):
            for q in qs:
                if n % 2:
                    base.append(plain(q))
                    mine.append(ours(q))
                else:
                    mine.append(ours(q))
                    base.append(plain(q))
        return summary(mine), summary(base)

    o, b = interleaved()
    rss_after = rss_mb()
    top = profile_top(lambda: [ours(q) for q in qs])
    standin = None
    if not index.crosslingual_ready:
        # The cross-lingual views are not filled yet: time the query again with stand-in
        # cross-lingual passage vectors (random unit vectors: the same products, timing only;
        # routing and ranking are not meaningful in this pass).
        rng = np.random.default_rng(0)
        fake = rng.standard_normal(index.xl_vectors.shape).astype(np.float32)
        index.xl_vectors = fake / np.linalg.norm(fake, axis=1, keepdims=True)
        index.crosslingual_ready = True
        standin, _ = interleaved()
        index.crosslingual_ready = False
    english = build.get("english", {})
    xl = build.get("crosslingual", {})
    scope = "cross-lingual views loaded" if index.crosslingual_ready else "English only"
    note = "; ".join(
        filter(None, [shim, caveat, f"{chunks:,} chunks, {scope}; baseline: Chroma HNSW query, same embedder"])
    )
    ok = not shim  # the product must load the store itself
    rows = [
        row(names[0], baseline=b["median_ms"], now=o["median_ms"], unit="ms",
            target=f"<= {MEDIAN_MAX_MS:.0f} ms", met=ok and o["median_ms"] <= MEDIAN_MAX_MS, note=note),
        row(names[1], baseline=b["p95_ms"], now=o["p95_ms"], unit="ms",
            target=f"<= {P95_MAX_MS:.0f} ms", met=ok and o["p95_ms"] <= P95_MAX_MS, note=note),
    ]  # fmt: skip
    if standin is not None:
        rows.append(
            row(
                "warm query median / p95 at 50,000 chunks, stand-in cross-lingual vectors (timing only)",
                now=standin["median_ms"],
                unit="ms",
                target=f"<= {MEDIAN_MAX_MS:.0f} ms",
                met=None,
                note=f"p95 {standin['p95_ms']} ms (target <= {P95_MAX_MS:.0f}); the views are not filled yet",
            )
        )
    rows += [
        row("resident memory of the loaded index at 50,000 chunks (Service.index)", now=rss_index - rss_before,
            unit="MB", target="reported", met=None,
            note=f"process {rss_loaded:.0f} MB with both models, {rss_after:.0f} MB after the queries; "
            f"index load {index_load_s:.1f} s, models {models_s:.1f} s"),
        row("ingest at 50,000 chunks: English index", now=english.get("searchable_seconds"), unit="s",
            target="reported", met=None,
            note=f"notes model {english.get('embed_rate_per_s')} passages/s (build run, shared machine)"),
        row("ingest at 50,000 chunks: cross-lingual views", now=xl.get("seconds"), unit="s", target="reported",
            met=None, note=f"{xl.get('views', 0):,} views, {xl.get('rate_per_s_including_cached')} views/s "
            "including those found in the content cache" if xl.get("ready") else partial_note(build)),
    ]  # fmt: skip
    emit(
        {
            "benchmark": "scale",
            "store": str(folder),
            "build": build,
            "chunks": chunks,
            "crosslingual_ready": index.crosslingual_ready,
            "queries": source,
            "ours": o,
            "ours_standin_crosslingual": standin,
            "chroma_hnsw_query": b,
            "rss_mb": {"before_index": rss_before, "index": rss_index, "with_models": rss_loaded, "after": rss_after},
            "profile_top_by_tottime": top,
            "rows": rows,
        }
    )


if __name__ == "__main__":
    main()
