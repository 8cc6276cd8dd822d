"""The ingest pipeline against a real Chroma store with real embeddings."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from filelock import FileLock

from assistant.core.vectorstore import chroma_client, read_manifest
from assistant.service import Service
from ingest.pipeline import IngestError, run_ingest
from tests.conftest import PROJECT, make_settings


def search_paths(settings, query):
    return [p.breadcrumb for p in Service(settings).search(query).passages]


def test_folder_tree_breadcrumbs_and_search(tmp_path, small_tree):
    settings = make_settings(tmp_path / "store", small_tree)
    report = run_ingest(settings)
    assert report.files == 2 and report.added == report.chunks and report.problems == []
    top = search_paths(settings, "joining data across shards")[0]
    assert top.startswith("Databases > Sharding > Sharding")


def test_incremental_edit_and_delete(tmp_path, small_tree):
    settings = make_settings(tmp_path / "store", small_tree)
    first = run_ingest(settings)
    again = run_ingest(settings)
    assert (again.added, again.updated, again.removed, again.unchanged) == (0, 0, 0, first.chunks)

    cooking = small_tree / "Cooking.txt"
    cooking.write_text(cooking.read_text().replace("ten minutes", "twelve minutes"), encoding="utf-8")
    edited = run_ingest(settings)
    assert edited.updated == 1 and edited.added == 0 and edited.removed == 0
    assert edited.unchanged == first.chunks - 1
    service = Service(settings)
    texts = [d for d in service.index.collection.get(include=["documents"])["documents"]]
    assert any("twelve minutes" in t for t in texts) and not any("ten minutes" in t for t in texts)

    edited_manifest = read_manifest(settings)
    (small_tree / "Databases" / "Sharding.md").unlink()
    deleted = run_ingest(settings)
    assert deleted.removed >= 1 and deleted.added == 0 and deleted.files == 1
    sources = {m["source"] for m in Service(settings).index.collection.get(include=["metadatas"])["metadatas"]}
    assert sources == {"Cooking.txt"}
    # The current index and the one before it (a running app may still be answering from it)
    # are left; older ones were dropped after the switch.
    names = [c if isinstance(c, str) else c.name for c in chroma_client(settings).list_collections()]
    manifest = read_manifest(settings)
    assert sorted(names) == sorted(
        [manifest.collection, manifest.crosslingual, edited_manifest.collection, edited_manifest.crosslingual]
    )


def test_no_change_reingest_imports_neither_torch_nor_chroma(tmp_path, small_tree):
    settings = make_settings(tmp_path / "store", small_tree)
    run_ingest(settings)
    code = (
        "import sys, json; from ingest.pipeline import run_ingest; from tests.conftest import make_settings;"
        f"r = run_ingest(make_settings({str(tmp_path / 'store')!r}, {str(small_tree)!r}));"
        "print(json.dumps([r.unchanged, r.added, 'torch' in sys.modules, 'chromadb' in sys.modules,"
        " 'sentence_transformers' in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, capture_output=True, text=True, check=True)
    unchanged, added, torch, chroma, st = json.loads(out.stdout.strip().splitlines()[-1])
    assert unchanged > 0 and added == 0 and not torch and not chroma and not st


def test_second_ingest_is_refused_while_one_runs(tmp_path, small_tree):
    settings = make_settings(tmp_path / "store", small_tree)
    (tmp_path / "store").mkdir()
    with FileLock(str(tmp_path / "store" / "ingest.lock")):
        with pytest.raises(IngestError, match="another ingest is running"):
            run_ingest(settings)


def test_failed_ingest_keeps_the_previous_index(tmp_path, small_tree, monkeypatch):
    settings = make_settings(tmp_path / "store", small_tree)
    run_ingest(settings)
    before = read_manifest(settings)
    (small_tree / "New.md").write_text("- Kites\n    - Fly them on windy days.\n", encoding="utf-8")

    import assistant.core.embeddings as emb

    class Broken:
        def embed_documents(self, texts):
            raise RuntimeError("model crashed")

    monkeypatch.setattr(emb, "get_embeddings", lambda s: Broken())
    with pytest.raises(RuntimeError, match="model crashed"):
        run_ingest(settings)
    monkeypatch.undo()
    assert read_manifest(settings) == before
    assert search_paths(settings, "knead dough")[0].startswith("Cooking > Bread")
    names = [c if isinstance(c, str) else c.name for c in chroma_client(settings).list_collections()]
    assert sorted(names) == sorted([before.collection, before.crosslingual])


def test_killed_ingest_leaves_the_old_index_answering(tmp_path, small_tree):
    settings = make_settings(tmp_path / "store", small_tree)
    run_ingest(settings)
    before = read_manifest(settings)
    env = {**os.environ, "STORE_DIR": str(tmp_path / "store"), "NOTES_PATH": str(PROJECT / "notes")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ingest", "--json"], cwd=PROJECT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    store = tmp_path / "store"
    existing = len(list((store / "chroma").glob("*-*-*-*-*")))
    deadline = time.time() + 60
    # Wait until the new collection is being written, then kill the process outright.
    while time.time() < deadline and proc.poll() is None:
        if len(list((store / "chroma").glob("*-*-*-*-*"))) > existing:
            break
        time.sleep(0.2)
    time.sleep(2)
    assert proc.poll() is None, "ingest finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert read_manifest(settings) == before
    assert search_paths(settings, "simmer stock")[0].startswith("Cooking > Soup")
    # The next ingest of the small tree cleans up the half-written collection (and keeps the one before).
    report = run_ingest(settings, rebuild=True)
    names = [c if isinstance(c, str) else c.name for c in chroma_client(settings).list_collections()]
    kept = [report.collection, f"{report.collection}-xl", before.collection, before.crosslingual]
    assert sorted(names) == sorted(kept)


def run_cli(args, env_extra):
    env = {**os.environ, **env_extra}
    return subprocess.run(
        [sys.executable, "-m", "ingest", *args], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=300
    )


def test_bad_inputs_are_reported_by_file_and_the_rest_ingested(tmp_path, small_tree):
    (small_tree / "empty.md").write_text("", encoding="utf-8")
    (small_tree / "binary.md").write_bytes(b"\x00\xff\x00 not text")
    (small_tree / "long.md").write_text("- " + "word " * 220_000 + "\n", encoding="utf-8")
    (small_tree / "tabs.md").write_text("- Tabs\n\t- child one\n  \t- mixed child\n", encoding="utf-8")
    (small_tree / "fence.md").write_text("- Code\n    - ```\nprint('never closed')\n", encoding="utf-8")
    (small_tree / "latin.txt").write_bytes("- Cr\u00e8me br\u00fbl\u00e9e\n".encode("latin-1"))
    out = run_cli(["--json"], {"STORE_DIR": str(tmp_path / "store"), "NOTES_PATH": str(small_tree)})
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    by_file = {}
    for err in report["problems"]:
        by_file.setdefault(err["file"], []).append(err)
    assert "empty" in by_file["empty.md"][0]["message"]
    assert "binary" in by_file["binary.md"][0]["message"]
    assert "tabs.md" not in by_file  # a tab is an indent level (4 spaces), as editors show it
    assert by_file["fence.md"][0]["line"] == 2 and "never closed" in by_file["fence.md"][0]["message"]
    assert report["skipped"] == 2 and report["files"] == 6
    settings = make_settings(tmp_path / "store", small_tree)
    assert search_paths(settings, "Crème brûlée")[0] == "latin > Cr\u00e8me br\u00fbl\u00e9e"
    assert search_paths(settings, "Tabs child one")[0].startswith("tabs > Tabs")


def test_unreadable_file_is_named(tmp_path, small_tree, monkeypatch):
    bad = small_tree / "secret.md"
    bad.write_text("- hidden\n", encoding="utf-8")
    real = Path.read_bytes

    def read_bytes(self):
        if self.name == "secret.md":
            raise PermissionError(13, "Permission denied")
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    report = run_ingest(make_settings(tmp_path / "store", small_tree))
    assert report.files == 2
    assert any(p.file == "secret.md" and "Permission denied" in p.message and not p.warning for p in report.problems)


def test_nothing_ingestable_exits_non_zero(tmp_path):
    missing = run_cli(["--json"], {"STORE_DIR": str(tmp_path / "s1"), "NOTES_PATH": str(tmp_path / "nope")})
    assert missing.returncode == 1 and "does not exist" in json.loads(missing.stdout)["error"]
    only_empty = tmp_path / "empty"
    only_empty.mkdir()
    (only_empty / "a.md").write_text("", encoding="utf-8")
    out = run_cli([], {"STORE_DIR": str(tmp_path / "s2"), "NOTES_PATH": str(only_empty)})
    assert out.returncode == 1 and "a.md: empty file" in out.stderr and "Traceback" not in out.stderr


def test_chroma_server_mode(tmp_path, small_tree, chroma_server):
    settings = make_settings(tmp_path / "store", small_tree, chroma_host="127.0.0.1", chroma_port=chroma_server)
    report = run_ingest(settings)
    assert report.chunks > 0
    import chromadb

    client = chromadb.HttpClient(host="127.0.0.1", port=chroma_server)
    names = [c if isinstance(c, str) else c.name for c in client.list_collections()]
    assert sorted(names) == sorted([report.collection, f"{report.collection}-xl"])
    assert client.get_collection(report.collection, embedding_function=None).count() == report.chunks
    assert search_paths(settings, "joining data across shards")[0].startswith("Databases > Sharding")
    assert not (tmp_path / "store" / "chroma").exists()
