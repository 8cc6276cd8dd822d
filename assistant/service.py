"""The service the CLI and the UI call: index, models, retriever and answer engine, each
built on first use and kept (one per process)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .personas import Persona, PersonaCatalog
from .retrieval import Retriever, SearchResult
from .settings import Settings, get_settings
from .store import read_manifest, require_manifest

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings

    from .answering import AnswerEngine
    from .compose import Composer
    from .embeddings import E5Embeddings
    from .index import Index
    from .router import Router
    from .sections import SectionTree


class Assistant:
    """Everything a front end needs, each part built on first use and then kept."""

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or get_settings()
        self._lock = threading.RLock()
        self._retriever: Retriever | None = None
        self._needs: list[tuple[str, Persona]] | None = None  # first-page examples, made by the warm-up
        self._questions: list[str] | None = None  # likewise
        self._warming = False
        self.provider_error: str | None = None  # why the configured provider is not in use

    @cached_property
    def catalog(self) -> PersonaCatalog:
        """The notes' persona catalog alone: no Chroma and no model, so name lookups stay instant."""
        manifest = require_manifest(self.settings)
        return PersonaCatalog.load(Path(self.settings.store_dir) / manifest.catalog_file)

    def personas(self, own: Sequence[Persona] = ()) -> PersonaCatalog:
        """The notes' personas and someone's own."""
        return PersonaCatalog(self.catalog.personas + list(own)) if own else self.catalog

    @cached_property
    def index(self) -> Index:
        from .index import Index

        return Index.load(self.settings)

    @cached_property
    def embeddings(self) -> Embeddings:
        from .embeddings import get_embeddings

        return get_embeddings(self.settings)

    @cached_property
    def crosslingual(self) -> E5Embeddings:
        from .embeddings import get_crosslingual

        return get_crosslingual()

    @cached_property
    def router(self) -> Router | None:
        """The fitted routing decision shipped in the package (None only before the first fit)."""
        from .router import ROUTER_FILE, Router

        return Router.load() if ROUTER_FILE.exists() else None

    @property
    def retriever(self) -> Retriever:
        # One retriever even when the warm-up thread and a request ask for it at once.
        with self._lock:
            if self._retriever is None:
                self._retriever = Retriever(self.index, self.embeddings, self.crosslingual, self.router)
            return self._retriever

    @cached_property
    def sections(self) -> SectionTree:
        from .sections import SectionTree

        return SectionTree(self.index.passages)

    @cached_property
    def composer(self) -> Composer:
        from .compose import Composer

        return Composer(self.index, self.sections, self.settings.answer_budget_chars)

    @cached_property
    def engine(self) -> AnswerEngine:
        """The answering engine with the configured provider; a provider that cannot be set up
        falls back to extractive answers and says why in `provider_error`."""
        from .answering import AnswerEngine
        from .providers import NONE, ProviderError, make_chat_model, resolve

        provider = resolve(self.settings)
        try:
            model = make_chat_model(self.settings, provider)
        except (ProviderError, ImportError, ValueError) as exc:
            self.provider_error = f"{provider.name}: {exc}; answering without a model"
            provider, model = NONE, None
        return AnswerEngine(self.retriever, self.composer, self.settings, model, provider)

    def start_warmup(self, delay: float = 0.0) -> None:
        """Load index and models in the background, once (torch takes seconds to import), so a
        UI can show its first page at once; the first search waits if needed."""
        with self._lock:
            if self._warming or (self._retriever is not None and self._needs is not None):
                return
            self._warming = True

        def load() -> None:
            time.sleep(delay)
            try:
                _ = self.engine
                _ = self.composer
                if self._needs is None:
                    from .starters import example_needs, example_questions

                    self._questions = example_questions(self.sections, self.search)
                    self._needs = example_needs(self.catalog.personas, self.search)
            finally:
                self._warming = False

        # Not a daemon: a process that exits mid-load waits for it, rather than tearing down the
        # models' native thread pools under it (which aborts the process).
        threading.Thread(target=load, name="assistant-warmup", daemon=False).start()

    def example_questions(self) -> list[str] | None:
        """Topic questions the notes answer, for a first page; None until the warm-up made them."""
        return self._questions

    def example_needs(self) -> list[tuple[str, Persona]] | None:
        """Needs that find their persona, for a first page; None until the warm-up made them."""
        return self._needs

    def search(self, query: str, k: int | None = None, own: Sequence[Persona] = ()) -> SearchResult:
        return self.retriever.search(query, k, own)

    def index_info(self) -> dict[str, Any]:
        manifest = read_manifest(self.settings)
        if manifest is None:
            return {"ready": False, "store_dir": str(self.settings.store_dir)}
        return {
            "ready": True,
            "chunks": manifest.chunks,
            "personas": manifest.personas,
            "ingested_at": manifest.ingested_at,
            "notes_path": manifest.notes_path,
            "collection": manifest.collection,
            "problems": manifest.problems,
            "store": f"chroma server {self.settings.chroma_host}:{self.settings.chroma_port}"
            if self.settings.is_server_mode
            else str(self.settings.store_dir),
        }

    def reload_if_reingested(self) -> bool:
        """Another process (`python -m ingest`, another server) swapped the manifest to a new
        collection: forget the loaded index, whose collection that ingest drops. True if so."""
        loaded = self.__dict__.get("index")  # only an index already loaded can be stale
        manifest = read_manifest(self.settings)
        if loaded is None or manifest is None or manifest.collection == loaded.manifest.collection:
            return False
        self.reload()
        return True

    def reload(self) -> None:
        """Forget the loaded index after a re-ingest (the models stay loaded)."""
        with self._lock:
            for name in ("catalog", "index", "sections", "composer", "engine"):
                self.__dict__.pop(name, None)
            self._retriever = None
            self._needs = self._questions = None
