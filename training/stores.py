"""Stores of the notes trees the training judges on, ingested once and kept (git-ignored)."""

from __future__ import annotations

from pathlib import Path

from assistant.core.settings import NOTES_DIR, Settings
from assistant.service import Service
from ingest.pipeline import run_ingest
from training.datasets import LOGSEQ_TREE

NO_ROUTER = Path("/nonexistent/router.json")  # analyses for fitting need no routing model


def settings_for(store: str | Path, notes: Path, router: Path | None = NO_ROUTER) -> Settings:
    return Settings(_env_file=None, store_dir=Path(store), notes_path=notes, llm_provider="none", router_file=router)


def service_for(store: str | Path, notes: Path, router: Path | None = NO_ROUTER) -> Service:
    settings = settings_for(store, notes, router)
    run_ingest(settings)  # nothing to do when the notes and the code are unchanged
    return Service(settings)


def bundled_service(store: str | Path, router: Path | None = NO_ROUTER) -> Service:
    return service_for(store, NOTES_DIR, router)


def logseq_service(store: str | Path, router: Path | None = NO_ROUTER) -> Service:
    return service_for(store, LOGSEQ_TREE, router)
