"""The loaded index: manifest, persona catalog, chunks and their keyword/title indexes.

Loaded once per process; the dense part stays in Chroma and is queried there.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .personas import PersonaCatalog
from .settings import Settings
from .store import Manifest, chroma_client, open_collection, require_manifest

WORD = re.compile(r"\w+")


@dataclass
class ChunkRecord:
    id: str
    text: str
    path: list[str]
    kind: str
    source: str
    first_line: int
    last_line: int
    persona: str | None

    @property
    def body(self) -> str:
        """The chunk without its breadcrumb line."""
        return self.text.split("\n", 1)[1] if "\n" in self.text else ""


class Index:
    def __init__(self, settings: Settings, manifest: Manifest):
        self.settings = settings
        self.manifest = manifest
        self.catalog = PersonaCatalog.load(Path(settings.store_dir) / manifest.catalog_file)
        self.collection = open_collection(chroma_client(settings), manifest.collection)
        got = self.collection.get(include=["documents", "metadatas", "embeddings"])
        self.chunks: list[ChunkRecord] = []
        for cid, doc, meta in zip(got["ids"], got["documents"], got["metadatas"]):
            self.chunks.append(
                ChunkRecord(
                    id=cid,
                    text=doc,
                    path=json.loads(meta["path"]),
                    kind=meta["kind"],
                    source=meta["source"],
                    first_line=int(meta["first_line"]),
                    last_line=int(meta["last_line"]),
                    persona=meta.get("persona"),
                )
            )
        order = sorted(range(len(self.chunks)), key=lambda i: (self.chunks[i].source, self.chunks[i].first_line))
        self.chunks = [self.chunks[i] for i in order]
        vectors = np.asarray(got["embeddings"], dtype=np.float32)[order]
        self.by_id = {c.id: i for i, c in enumerate(self.chunks)}
        self.persona_rows = [i for i, c in enumerate(self.chunks) if c.kind == "persona"]
        self.persona_vectors = vectors[self.persona_rows]
        self.persona_by_key = {p.key: p for p in self.catalog.personas}
        self.row_of_persona = {self.chunks[i].persona: i for i in self.persona_rows}
        self._build_keyword_index()

    @classmethod
    def load(cls, settings: Settings) -> "Index":
        return cls(settings, require_manifest(settings))

    def _build_keyword_index(self) -> None:
        import bm25s

        corpus = [" ".join(c.path[-2:]) + " " + c.body for c in self.chunks]
        tokens = bm25s.tokenize(corpus, stopwords="en", show_progress=False)
        self.bm25 = bm25s.BM25()
        self.bm25.index(tokens, show_progress=False)
        self.titles = [c.path[-1] if c.path else "" for c in self.chunks]

    def keyword_search(self, query: str, k: int) -> list[tuple[int, float]]:
        import bm25s

        words = bm25s.tokenize([query], stopwords="en", return_ids=False, show_progress=False)[0]
        words = [w for w in words if w in self.bm25.vocab_dict]
        if not words:
            return []
        scores = self.bm25.get_scores(words)
        top = np.argsort(-scores, kind="stable")[:k]  # ties go to notes order: the same every run
        return [(int(i), float(scores[i])) for i in top if scores[i] > 0]
