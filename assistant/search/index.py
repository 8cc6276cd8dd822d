"""The loaded index: manifest, persona catalog, passages with their vectors, the keyword
index, the cross-lingual views and the notes' own vocabulary.

Loaded once per process; dense notes search stays in Chroma and is queried there.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from assistant.core.passages import Passage
from assistant.core.personas import PersonaCatalog
from assistant.core.settings import Settings
from assistant.core.vectorstore import Manifest, chroma_client, open_collection, require_manifest
from assistant.search.signals import WORDS, casefold

if TYPE_CHECKING:
    from chromadb.api import ClientAPI


class Index:
    def __init__(self, settings: Settings, manifest: Manifest):
        self.settings = settings
        self.manifest = manifest
        self.catalog = PersonaCatalog.load(Path(settings.store_dir) / manifest.catalog_file)
        client = chroma_client(settings)
        self.collection = open_collection(client, manifest.collection)
        got = self.collection.get(include=["documents", "metadatas", "embeddings"])
        loaded = [Passage.from_store(i, d, m) for i, d, m in zip(got["ids"], got["documents"], got["metadatas"])]
        order = sorted(range(len(loaded)), key=lambda i: (loaded[i].source, loaded[i].first_line))
        self.passages: list[Passage] = [loaded[i] for i in order]
        self.vectors = np.asarray(got["embeddings"], dtype=np.float32)[order]
        self.by_id = {p.id: i for i, p in enumerate(self.passages)}
        self.row_of_persona = {p.persona: i for i, p in enumerate(self.passages) if p.kind == "persona"}
        self.note_rows = np.array([i for i, p in enumerate(self.passages) if p.kind == "note"], dtype=int)
        self.vocabulary = frozenset(w for p in self.passages for w in WORDS.findall(casefold(p.body)))
        self._load_crosslingual(client)
        self._build_keyword_index()

    @classmethod
    def load(cls, settings: Settings) -> Index:
        return cls(settings, require_manifest(settings))

    def _load_crosslingual(self, client: ClientAPI) -> None:
        """Persona and section-title vectors of the cross-lingual model."""
        col = open_collection(client, self.manifest.crosslingual)
        got = col.get(include=["metadatas", "embeddings"])
        vectors = np.asarray(got["embeddings"], dtype=np.float32).reshape(len(got["ids"]), -1)
        self.persona_crosslingual: dict[str, np.ndarray] = {}
        self.persona_name_crosslingual: dict[str, np.ndarray] = {}
        titles: list[str] = []
        title_vectors: list[np.ndarray] = []
        for meta, vector in zip(got["metadatas"], vectors):
            if meta["kind"] == "persona":
                self.persona_crosslingual[meta["persona"]] = vector
            elif meta["kind"] == "persona_name":
                self.persona_name_crosslingual[meta["persona"]] = vector
            else:
                titles.append(meta["title"])
                title_vectors.append(vector)
        rows_of_title: dict[str, list[int]] = {}
        for i, p in enumerate(self.passages):
            if p.kind == "note":
                rows_of_title.setdefault(p.title, []).append(i)
        self.title_vector = dict(zip(titles, title_vectors))  # any section title, for choosing sections
        keep = [j for j, t in enumerate(titles) if t in rows_of_title]
        self.titles = [titles[j] for j in keep]  # titles that head passages, for retrieval
        self.title_vectors = np.asarray([title_vectors[j] for j in keep], dtype=np.float32).reshape(len(keep), -1)
        self.title_rows = [rows_of_title[t] for t in self.titles]
        # How many sections share a title ("Source(s) and further reading" heads a dozen): a
        # shared title names none of them, so its cross-lingual evidence is spread over them.
        self.title_sections = [len({self.passages[i].path for i in rows}) for rows in self.title_rows]

    def _build_keyword_index(self) -> None:
        import bm25s

        corpus = [" ".join(p.path[-2:]) + " " + p.body for p in self.passages]
        tokens = bm25s.tokenize(corpus, stopwords="en", show_progress=False)
        self.bm25 = bm25s.BM25()
        self.bm25.index(tokens, show_progress=False)

    def keyword_search(self, query: str, k: int) -> list[tuple[int, float]]:
        import bm25s

        words = bm25s.tokenize([query], stopwords="en", return_ids=False, show_progress=False)[0]
        words = [w for w in words if w in self.bm25.vocab_dict]
        if not words:
            return []
        scores = self.bm25.get_scores(words)
        top = np.argsort(-scores, kind="stable")[:k]  # ties go to notes order: the same every run
        return [(int(i), float(scores[i])) for i in top if scores[i] > 0]
