"""The service the CLI and the UI call: loads index, model and retriever once, lazily."""

from __future__ import annotations

import threading
import time
from functools import cached_property
from pathlib import Path

from .index import Index
from .personas import PersonaCatalog
from .retrieval import Retriever, SearchResult
from .settings import Settings, get_settings
from .store import read_manifest, require_manifest


class Assistant:
    """Everything a front end needs, each part built on first use and then kept."""

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or get_settings()
        self._lock = threading.RLock()
        self._retriever: Retriever | None = None
        self._warming = False
        self.provider_error: str | None = None  # why the configured provider is not in use

    @cached_property
    def catalog(self) -> PersonaCatalog:
        """The persona catalog alone: no Chroma and no model, so name lookups stay instant."""
        manifest = require_manifest(self.settings)
        return PersonaCatalog.load(Path(self.settings.store_dir) / manifest.catalog_file)

    @cached_property
    def index(self) -> Index:
        return Index.load(self.settings)

    @cached_property
    def embeddings(self):
        from .embeddings import get_embeddings

        return get_embeddings(self.settings)

    @property
    def retriever(self) -> Retriever:
        # One retriever even when the warm-up thread and a request ask for it at once.
        with self._lock:
            if self._retriever is None:
                self._retriever = Retriever(self.index, self.embeddings)
            return self._retriever

    @cached_property
    def engine(self):
        """The answering engine with the configured provider; a provider that cannot be set up
        falls back to extractive answers and says why in `provider_error`."""
        from .answering import AnswerEngine
        from .providers import Provider, ProviderError, make_chat_model, resolve

        provider = resolve(self.settings)
        try:
            model = make_chat_model(self.settings, provider)
        except (ProviderError, ImportError, ValueError) as exc:
            self.provider_error = f"{provider.name}: {exc}; answering without a model"
            provider, model = Provider(name="none", model="none"), None
        return AnswerEngine(self, model, provider)

    def start_warmup(self, delay: float = 0.0) -> None:
        """Load index and embedding model in the background, once (torch takes seconds to
        import), so a UI can show its first page at once; the first search waits if needed."""
        with self._lock:
            if self._warming or self._retriever is not None:
                return
            self._warming = True

        def load() -> None:
            time.sleep(delay)
            try:
                _ = self.retriever
            finally:
                self._warming = False

        threading.Thread(target=load, name="assistant-warmup", daemon=True).start()

    def search(self, query: str, k: int | None = None) -> SearchResult:
        return self.retriever.search(query, k)

    def index_info(self) -> dict:
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
            "errors": manifest.errors,
            "store": f"chroma server {self.settings.chroma_host}:{self.settings.chroma_port}"
            if self.settings.is_server_mode else str(self.settings.store_dir),
        }

    def reload(self) -> None:
        """Forget the loaded index after a re-ingest (the model stays loaded)."""
        with self._lock:
            for name in ("catalog", "index"):
                self.__dict__.pop(name, None)
            self._retriever = None
