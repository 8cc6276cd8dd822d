"""The notes model without torch: its ONNX export against sentence-transformers, and the
command line and ingest that never import torch once the export exists."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from assistant.core.embeddings import cpu_flags, export_onnx, get_embeddings, load_sentence_transformer, model_path
from tests.conftest import PROJECT, make_settings

# Fifty texts of every shape: short queries, long paragraphs past the 256-token window, other
# languages and scripts, code, emoji, near-empty strings.
TEXTS = [
    "what is cache-aside",
    "sharding downsides",
    "linx termnal",
    "?",
    "ok",
    "How does a write-behind cache lose data when the cache node crashes before flushing?",
    "Explain the CAP theorem with an example of a partition between two data centres.",
    "¿Qué es el teorema CAP y por qué no se pueden tener las tres garantías a la vez?",
    "Wie funktioniert ein Lastverteiler mit aktiven und passiven Servern?",
    "Comment fonctionne la réplication maître-esclave dans une base de données ?",
    "キャッシュの無効化はなぜ難しいのですか？",
    "什么是反向代理，它和负载均衡器有什么区别？",
    "Что такое шардирование базы данных?",
    "ما هو موازن التحميل؟",
    "데이터베이스 복제란 무엇입니까?",
    "def levenshtein(a, b):\n    return 0 if a == b else 1 + min(len(a), len(b))",
    "SELECT name, levenshtein(name, 'jon') AS d FROM people ORDER BY d LIMIT 5;",
    "🐧 terminal mode: ls -la",
    "🎩✨ show me a trick",
    "I want you to act as a linux terminal. I will type commands and you will reply with what "
    "the terminal should show.",
    "- Load balancers distribute incoming client requests to computing resources such as "
    "application servers and databases.\n- Useful for preventing requests going to unhealthy servers.",
]
TEXTS += [
    " ".join(f"paragraph {i} about consistent hashing, virtual nodes and rebalancing keys" for _ in range(12 + i))
    for i in range(10)
]  # 100 to 200 words each: past the model's 256 tokens
TEXTS += [
    f"note {i}: {w}"
    for i, w in enumerate(
        "kites bread soup latency throughput queue index replica quorum gossip bloom trie heap".split()
    )
]
TEXTS += [
    "a" * 3000,
    "   spaced    out    words   ",
    "Ünïcödé ñame with accents",
    "1 2 3 4 5 6 7 8 9 10",
    "Κάνε τον ρόλο ενός ταξιδιωτικού οδηγού",
    "ช่วยเป็นครูสอนโยคะให้หน่อย",
]
TEXTS = TEXTS[:50]


def test_onnx_export_matches_sentence_transformers(tmp_path):
    """Queries run the float model and match torch; passages run the int8 model, close enough
    that the ranking holds (the speed is in bench/ingest_bench.py)."""
    assert len(TEXTS) == 50
    settings = make_settings(tmp_path / "store")
    export_onnx(settings)
    embeddings = get_embeddings(settings)
    torch_model = load_sentence_transformer(model_path(settings), 32)
    torch_vectors = np.array(torch_model.embed_documents(TEXTS))
    queries = np.array([embeddings.embed_query(text) for text in TEXTS])
    passages = np.array(embeddings.embed_documents(TEXTS))

    def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))

    query_cos = cosines(queries, torch_vectors)
    assert query_cos.min() >= 0.999, (query_cos.min(), TEXTS[int(query_cos.argmin())][:60], cpu_flags())
    passage_cos = cosines(passages, torch_vectors)
    worst = TEXTS[int(passage_cos.argmin())][:60]
    assert passage_cos.min() >= 0.95 and passage_cos.mean() >= 0.98, (
        f"int8 passages: min cosine {passage_cos.min():.3f} ({worst!r}), mean {passage_cos.mean():.3f} "
        f"on a CPU with {cpu_flags()}"
    )
    # int8 passages keep the ranking: the five nearest passages of each query mostly agree
    top = 5
    int8_top = np.argsort(-(queries @ passages.T), axis=1)[:, :top]
    torch_top = np.argsort(-(queries @ torch_vectors.T), axis=1)[:, :top]
    agreement = np.mean([len(set(a) & set(b)) / top for a, b in zip(int8_top, torch_top, strict=True)])
    assert agreement >= 0.9, f"top-5 agreement {agreement:.2f} on a CPU with {cpu_flags()}"


@pytest.mark.parametrize(
    "args",
    [["search", "what is sharding", "--json"], ["ask", "what is cache-aside?", "--json"], ["personas", "--json"]],
)
def test_command_line_never_imports_torch(bundled_settings, args):
    probe = (
        "import sys, runpy; sys.argv = ['assistant', *sys.argv[1:]]\n"
        "try:\n    runpy.run_module('assistant', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "print('\\nTORCH-LOADED' if 'torch' in sys.modules else '\\nNO-TORCH')"
    )
    env = {
        "STORE_DIR": str(bundled_settings.store_dir),
        "LLM_PROVIDER": "none",
        "PATH": "/usr/bin:/bin",
        "HOME": str(PROJECT.parent),
        "XDG_CACHE_HOME": str(bundled_settings.model_cache_dir.parent),
    }
    out = subprocess.run([sys.executable, "-c", probe, *args], cwd=PROJECT, env=env, capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.rstrip().endswith("NO-TORCH"), out.stdout[-300:]
    json.loads(out.stdout.rstrip().rsplit("\n", 1)[0])  # the command's own output is intact


def test_ingest_with_the_export_present_never_imports_torch(tmp_path, small_tree):
    settings = make_settings(tmp_path / "store", small_tree)
    export_onnx(settings)
    probe = (
        "import sys\nfrom ingest.__main__ import main\ncode = main(['--json'])\n"
        "print('TORCH-LOADED' if 'torch' in sys.modules else 'NO-TORCH')"
    )
    env = {
        "STORE_DIR": str(settings.store_dir),
        "NOTES_PATH": str(small_tree),
        "PATH": "/usr/bin:/bin",
        "XDG_CACHE_HOME": str(settings.model_cache_dir.parent),
    }
    out = subprocess.run([sys.executable, "-c", probe], cwd=PROJECT, env=env, capture_output=True, text=True,
                         timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr
    report, marker = out.stdout.strip().rsplit("\n", 1)
    assert marker == "NO-TORCH" and json.loads(report)["chunks"] >= 3
