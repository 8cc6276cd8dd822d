"""Shared fixtures: a real Chroma store of the bundled notes, built once per test session."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from assistant.core.settings import NOTES_DIR, Settings  # noqa: E402
from tests.support import free_port, stop, wait_for_port  # noqa: E402, F401  (shared with the benchmarks)

PROJECT = Path(__file__).resolve().parent.parent


def make_settings(store: Path, notes: Path = NOTES_DIR, **extra) -> Settings:
    return Settings(_env_file=None, notes_path=notes, store_dir=store, llm_provider="none", **extra)


@pytest.fixture(scope="session")
def bundled_settings(tmp_path_factory) -> Settings:
    """The bundled notes ingested into a fresh embedded store (real embeddings)."""
    from ingest.pipeline import run_ingest

    settings = make_settings(tmp_path_factory.mktemp("store"))
    report = run_ingest(settings)
    assert report.chunks > 500 and report.personas == 158
    return settings


@pytest.fixture(scope="session")
def service(bundled_settings):
    from assistant.service import Service

    return Service(bundled_settings)


@pytest.fixture()
def small_tree(tmp_path) -> Path:
    """A folder tree of notes made in the test."""
    root = tmp_path / "notes"
    (root / "Databases").mkdir(parents=True)
    (root / "Databases" / "Sharding.md").write_text(
        "- Sharding\n"
        "    - Sharding distributes data across different databases.\n"
        "    - Disadvantage(s): sharding>>>\n"
        "        - Joining data from multiple shards is more complex.\n",
        encoding="utf-8",
    )
    (root / "Cooking.txt").write_text(
        "- Bread\n    - Knead the dough for ten minutes.\n- Soup\n    - Simmer the stock slowly.\n",
        encoding="utf-8",
    )
    (root / "ignored.json").write_text("{}", encoding="utf-8")
    return root


@pytest.fixture()
def chroma_server(tmp_path):
    """A real Chroma server (`chroma run`) on a free loopback port."""
    chroma = shutil.which("chroma", path=str(Path(sys.executable).parent)) or shutil.which("chroma")
    if chroma is None:
        pytest.fail("the chroma command of the chromadb package is not installed")
    port = free_port()
    proc = subprocess.Popen(
        [chroma, "run", "--path", str(tmp_path / "server"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, proc=proc)
        yield port
    finally:
        stop(proc)
