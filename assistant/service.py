"""The service every front end calls (the app, the CLI, the MCP server): index, models, search
pipeline, answer engine and chat history, each built on first use and kept (one per process).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from langchain_core.messages import BaseMessage

from assistant.core.personas import Persona, PersonaCatalog
from assistant.core.settings import Settings, get_settings
from assistant.core.vectorstore import IngestProblem, read_manifest, require_manifest
from assistant.search.retrieval import SearchPipeline, SearchResult

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings

    from assistant.answer.chains import AnswerEngine, AnswerStream
    from assistant.answer.compose import Composer
    from assistant.answer.providers import ProviderStatus
    from assistant.chat.store import ChatStore
    from assistant.core.embeddings import E5Embeddings
    from assistant.core.sections import SectionTree
    from assistant.search.context import ContextModel
    from assistant.search.index import Index
    from assistant.search.router import Router

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class IndexInfo:
    """What the index holds, for a front end's status lines."""

    ready: bool
    store_dir: str
    chunks: int = 0
    personas: int = 0
    ingested_at: str = ""
    notes_path: str = ""
    collection: str = ""
    store: str = ""
    problems: tuple[IngestProblem, ...] = field(default=())


@dataclass(frozen=True)
class IngestSummary:
    """What a re-ingest did, or why it failed (the previous index then stays in use)."""

    ok: bool
    message: str


class Service:
    """Everything a front end needs, each part built on first use and then kept."""

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or get_settings()
        self._lock = threading.RLock()
        self._pipeline: SearchPipeline | None = None
        self._warming = False
        self.provider_error: str | None = None  # why the configured provider is not in use
        self.filling: tuple[int, int] | None = None  # cross-lingual views being filled in: done, total

    # ------------------------------------------------------------------ parts
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
        from assistant.search.index import Index

        return Index.load(self.settings)

    @cached_property
    def embeddings(self) -> Embeddings:
        from assistant.core.embeddings import get_embeddings

        return get_embeddings(self.settings)

    @cached_property
    def crosslingual(self) -> E5Embeddings:
        from assistant.core.embeddings import get_crosslingual

        return get_crosslingual()

    @cached_property
    def router(self) -> Router | None:
        """The fitted routing model: ROUTER_FILE if set, else the one shipped in the package."""
        from assistant.search.router import ROUTER_FILE, Router

        path = self.settings.router_file or ROUTER_FILE
        return Router.load(path) if Path(path).exists() else None

    @cached_property
    def context_model(self) -> ContextModel | None:
        """Which turns of a chat need the conversation: CONTEXT_FILE if set, else the shipped one."""
        from assistant.search.context import CONTEXT_FILE, ContextModel

        path = self.settings.context_file or CONTEXT_FILE
        return ContextModel.load(path) if Path(path).exists() else None

    @property
    def pipeline(self) -> SearchPipeline:
        # One pipeline even when the warm-up thread and a request ask for it at once.
        with self._lock:
            if self._pipeline is None:
                self._pipeline = SearchPipeline(self.index, self.embeddings, self.crosslingual, self.router)
            return self._pipeline

    @cached_property
    def sections(self) -> SectionTree:
        from assistant.core.sections import SectionTree

        return SectionTree(self.index.passages)

    @cached_property
    def composer(self) -> Composer:
        from assistant.answer.compose import Composer

        return Composer(self.pipeline, self.settings.answer_budget_chars)

    @cached_property
    def provider_status(self) -> ProviderStatus:
        """The configured provider, and what keeps it from starting (checked without loading it)."""
        from assistant.answer.providers import status

        return status(self.settings)

    @cached_property
    def engine(self) -> AnswerEngine:
        """The answer engine with the configured provider; a provider that cannot start gives
        quoted answers instead, and `provider_error` says why and what fixes it."""
        from assistant.answer.chains import AnswerEngine, estimate_tokens
        from assistant.answer.providers import NONE, ProviderError, make_chat_model

        provider = self.provider_status.provider
        try:
            model = make_chat_model(self.settings, provider)
        except (ProviderError, ImportError, ValueError) as exc:
            self.provider_error = f"{exc}; answering without a model"
            provider, model = NONE, None
        count, window = estimate_tokens, self.settings.context_tokens
        if provider.name == "local" and model is not None:
            count, window = _llama_counter(model), self.settings.local_n_ctx
        return AnswerEngine(
            self.pipeline, self.composer, self.settings, model, provider, count, window, self.context_model
        )

    @cached_property
    def chats(self) -> ChatStore:
        """Sessions, messages, favourites and own personas of every user (HISTORY_DB_URL)."""
        from assistant.chat.store import ChatStore

        return ChatStore(self.settings.resolved_history_url)

    # -------------------------------------------------------------- operations
    def search(self, query: str, k: int | None = None, own: Sequence[Persona] = ()) -> SearchResult:
        """Route a message and find its passages (persona, notes or none)."""
        return self.pipeline.search(query, k, own)

    def stream(
        self,
        question: str,
        history: Sequence[BaseMessage] = (),
        persona: Persona | None = None,
        slots: dict[str, str] | None = None,
        own: Sequence[Persona] = (),
        favourites: Collection[str] = (),
    ) -> AnswerStream:
        """Answer a message: from the notes, as `persona`, or as its slash command says."""
        starred = [p for p in self.personas(own).personas if p.key in favourites]
        return self.engine.stream(question, history, persona, slots, own, starred)

    def rank_personas(self, text: str, own: Sequence[Persona] = (), limit: int = 10) -> list[Persona]:
        """Personas for a name, a typo or a described need, best first."""
        return self.pipeline.rank_personas(text, own, limit)

    def resolve_persona(self, text: str, own: Sequence[Persona] = ()) -> Persona | None:
        """The persona a name, a typo or a need means: the name lookup (no model) first."""
        hits = self.personas(own).fuzzy_names(text, limit=1)
        return hits[0][0] if hits else self.pipeline.resolve_persona(text, own)

    def reingest(self, progress: Progress | None = None) -> IngestSummary:
        """Ingest NOTES_PATH again and answer from the new index; a failure keeps the old one."""
        from ingest.pipeline import IngestError, run_ingest

        try:
            report = run_ingest(self.settings, progress=progress)
        except IngestError as exc:
            return IngestSummary(False, str(exc))
        except Exception as exc:  # the previous index stays in use; say what happened
            return IngestSummary(
                False, f"ingest failed ({type(exc).__name__}: {exc}); the previous index is still in use"
            )
        self.reload()
        return IngestSummary(
            True,
            f"{report.chunks} chunks, {report.personas} personas: {report.added} added, {report.updated} updated, "
            f"{report.removed} removed, {report.unchanged} unchanged ({report.seconds:.1f} s)",
        )

    def watch_notes(self) -> object:
        """A watcher that re-ingests changed note files and reloads this service (WATCH_NOTES)."""
        from ingest.watch import NotesWatcher

        return NotesWatcher(self.settings, on_ingested=self.reload).start()

    def crosslingual_pending(self) -> bool:
        manifest = read_manifest(self.settings)
        return manifest is not None and not manifest.crosslingual

    def start_crosslingual_fill(self) -> None:
        """Fill in the cross-lingual views the ingest left for later, in the background; search
        works in English meanwhile, and `filling` says how far it is."""
        with self._lock:
            if self.filling is not None or not self.crosslingual_pending():
                return
            self.filling = (0, 0)

        def fill() -> None:
            from ingest.pipeline import fill_pending

            def progress(stage: str, done: int, total: int) -> None:
                self.filling = (done, total)

            try:
                if fill_pending(self.settings, progress, wait=600):
                    self.reload()
            finally:
                self.filling = None

        threading.Thread(target=fill, name="crosslingual-fill", daemon=False).start()

    def start_warmup(self, delay: float = 0.0) -> None:
        """Load index and models in the background, once, so a UI can show its first page at
        once; the first search waits if needed."""
        with self._lock:
            if self._warming or self._pipeline is not None:
                return
            self._warming = True

        def load() -> None:
            time.sleep(delay)
            self.start_crosslingual_fill()
            try:
                _ = self.engine
                _ = self.composer
            finally:
                self._warming = False

        # Not a daemon: a process that exits mid-load waits for it, rather than tearing down the
        # models' native thread pools under it (which aborts the process).
        threading.Thread(target=load, name="assistant-warmup", daemon=False).start()

    def example_questions(self) -> list[str]:
        """Topic questions for a first page, from the notes' section titles (no model)."""
        from assistant.starters import example_questions

        return example_questions(self.sections)

    def chat_title(self, question: str, own: Sequence[Persona] = ()) -> str:
        """What a chat's first message names it: a "/persona" command by the persona
        ("🐧 Linux Terminal"), "/notes …" by its question, "/" alone by nothing (""), any other
        message by its first words. Name lookups only: no model."""
        from assistant.answer import commands
        from assistant.chat.store import chat_title

        command = commands.parse(question, lambda name: self.pipeline.find_persona(name, own))
        if command is None:
            return chat_title(question)
        if command.kind == "favourites":
            return ""
        if command.kind == "notes":
            return chat_title(command.rest) if command.rest.strip() else ""
        return command.persona.label if command.persona is not None else chat_title(question)

    def example_needs(self) -> list[tuple[str, Persona]]:
        """Needs worded as the prompts' own example requests, for a first page (no model)."""
        from assistant.starters import example_needs

        return example_needs(self.catalog.personas)

    def example_personas(self, own: Sequence[Persona] = (), favourites: Collection[str] = ()) -> list[Persona]:
        """Personas for a first page: favourites first, then some spread over the catalog."""
        from assistant.starters import example_personas

        return example_personas(list(own) + self.catalog.personas, set(favourites))

    def index_info(self) -> IndexInfo:
        manifest = read_manifest(self.settings)
        if manifest is None:
            return IndexInfo(ready=False, store_dir=str(self.settings.store_dir))
        server = f"chroma server {self.settings.chroma_host}:{self.settings.chroma_port}"
        return IndexInfo(
            ready=True,
            store_dir=str(self.settings.store_dir),
            chunks=manifest.chunks,
            personas=manifest.personas,
            ingested_at=manifest.ingested_at,
            notes_path=manifest.notes_path,
            collection=manifest.collection,
            store=server if self.settings.is_server_mode else str(self.settings.store_dir),
            problems=tuple(manifest.problems),
        )

    def reload_if_reingested(self) -> bool:
        """Another process (`python -m ingest`, another server) swapped the manifest to a new
        collection, or finished its cross-lingual views: forget the loaded index, whose
        collection that ingest drops or whose views were still pending. True if so."""
        loaded = self.__dict__.get("index")  # only an index already loaded can be stale
        manifest = read_manifest(self.settings)
        if loaded is None or manifest is None:
            return False
        same = (manifest.collection, manifest.crosslingual) == (
            loaded.manifest.collection,
            loaded.manifest.crosslingual,
        )
        if same:
            return False
        self.reload()
        return True

    def reload(self) -> None:
        """Forget the loaded index after a re-ingest (the models stay loaded)."""
        with self._lock:
            for name in ("catalog", "index", "sections", "composer", "engine"):
                self.__dict__.pop(name, None)
            self._pipeline = None


def _llama_counter(model: object) -> Callable[[str], int]:
    """Tokens as the local llama.cpp model counts them (its own tokenizer)."""
    client = getattr(model, "client", None)
    if client is None or not hasattr(client, "tokenize"):
        from assistant.answer.chains import estimate_tokens

        return estimate_tokens
    return lambda text: len(client.tokenize(text.encode("utf-8"), add_bos=False, special=False))
