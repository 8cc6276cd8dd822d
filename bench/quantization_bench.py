"""Int8 passages against the float model: notes hit@5 on the dev questions, on this CPU.

The passages of the shared bench store were embedded by the int8 export (what ships). Here the
same passages are embedded again by the float export, and the whole search pipeline (both
models, fusion, titles) answers the dev set's notes questions over each set of vectors.

Target (issue 23): int8 within 1 point of float. Int8 kernels differ by CPU (AVX2, AVX-512,
VNNI), so the row names the instruction sets it ran on.
"""

from __future__ import annotations

import json
import os

from common import SHARED_DEV, bench_store, emit, log, row

MAX_DROP = 1.0  # points of hit@5


def hit5(pipeline: object, gold: list[dict]) -> float:
    from assistant.evaluation import score

    preds = [pipeline.search(g["query"]).to_prediction() for g in gold]
    return 100 * score(gold, preds)["ALL"]["notes_hit5"]


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import numpy as np

    from assistant.core.embeddings import cpu_flags
    from assistant.core.settings import Settings
    from assistant.search.retrieval import SearchPipeline
    from assistant.service import Service
    from ingest.chunking import embed_text
    from ingest.pipeline import run_ingest

    if not SHARED_DEV.exists():
        emit({"benchmark": "quantization", "rows": [row("int8 vs float notes hit@5", now=None, target="runs",
                                                         met=None, note="no dev_queries.jsonl")]})  # fmt: skip
        return
    with open(SHARED_DEV, encoding="utf-8") as fh:
        gold = [g for g in (json.loads(line) for line in fh if line.strip()) if g["kind"] == "notes"]
    settings = Settings(_env_file=None, store_dir=bench_store(), llm_provider="none")
    run_ingest(settings)
    service = Service(settings)
    int8 = hit5(service.pipeline, gold)
    log(f"quantization: re-embedding {len(service.index.passages)} passages with the float export")
    index = service.index
    float_vectors = service.embeddings.encode([embed_text(p) for p in index.passages])  # float session
    int8_vectors = index.vectors
    index.vectors = np.asarray(float_vectors, dtype=np.float32)
    as_float = hit5(SearchPipeline(index, service.embeddings, service.crosslingual, service.router), gold)
    index.vectors = int8_vectors
    cosine = (float_vectors * int8_vectors).sum(axis=1)
    flags = cpu_flags()
    emit(
        {
            "benchmark": "quantization",
            "cpu_flags": flags,
            "questions": len(gold),
            "hit5_int8": round(int8, 2),
            "hit5_float": round(as_float, 2),
            "passage_cosine_int8_float": {"min": round(float(cosine.min()), 4), "mean": round(float(cosine.mean()), 4)},
            "rows": [
                row(
                    "notes hit@5 on dev questions, int8 passages vs float (points)",
                    baseline=as_float,
                    now=int8,
                    unit="%",
                    target=f">= float - {MAX_DROP:g}",
                    met=int8 >= as_float - MAX_DROP,
                    note=f"CPU flags: {flags}; min cosine int8/float {cosine.min():.3f}",
                )
            ],
        }
    )


if __name__ == "__main__":
    main()
