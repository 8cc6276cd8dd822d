"""The loaded index: manifest, persona catalog, passages with both models' vectors, section
titles for fuzzy lookup (by length band), and the notes' own vocabulary.

Loaded once per process. Dense search is an exact product over the vectors in memory: one
matrix-vector product per model (fast enough at 50,000 passages: see the retrieval benchmark);
the line vectors answers pick from are read from Chroma on demand.
"""

from __future__ import annotations

import bisect
import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from assistant.core.embeddings import DIMENSIONS
from assistant.core.passages import Passage, notes_order
from assistant.core.personas import PersonaCatalog, normalize_name
from assistant.core.settings import Settings
from assistant.core.vectorstore import Manifest, chroma_client, open_collection, require_manifest
from assistant.search.signals import WORDS, casefold

MENTION_MIN_CHARS = 8
LINE_ROWS_KEPT = 2048  # passages whose line vectors stay in memory (a few MB), most recent first
MENTION_MAX_WORDS = 8

if TYPE_CHECKING:
    from chromadb.api.models.Collection import Collection


class Index:
    def __init__(self, settings: Settings, manifest: Manifest):
        self.settings = settings
        self.manifest = manifest
        store_dir = Path(settings.store_dir)
        self.catalog = PersonaCatalog.load(store_dir / manifest.catalog_file)
        client = chroma_client(settings)
        self.collection = open_collection(client, manifest.collection)
        got = self.collection.get(include=["documents", "metadatas", "embeddings"])
        loaded = [Passage.from_store(i, d, m) for i, d, m in zip(got["ids"], got["documents"], got["metadatas"])]
        order = sorted(range(len(loaded)), key=lambda i: notes_order(loaded[i]))
        self.passages: list[Passage] = [loaded[i] for i in order]
        self.vectors = np.asarray(got["embeddings"], dtype=np.float32).reshape(len(loaded), -1)[order]
        self.by_id = {p.id: i for i, p in enumerate(self.passages)}
        self.row_of_persona = {p.persona: i for i, p in enumerate(self.passages) if p.kind == "persona"}
        self.is_note = np.array([p.kind == "note" for p in self.passages], dtype=bool)
        self.note_rows = np.flatnonzero(self.is_note)
        self.vocabulary = frozenset(w for p in self.passages for w in WORDS.findall(casefold(p.body)))
        # Sections that hold sub-sections: a topic ("Sharding" and its disadvantages), not a leaf.
        self.parents = frozenset(
            (p.source, p.path[:i]) for p in self.passages if p.kind == "note" for i in range(1, len(p.path))
        )
        self._index_titles()
        self.xl_vectors = np.zeros((len(self.passages), DIMENSIONS), dtype=np.float32)
        self.name_vectors: dict[str, np.ndarray] = {}
        self.xl_collection: Collection | None = None
        self._lines: OrderedDict[int, dict[int, np.ndarray]] = OrderedDict()  # row -> line n -> vector
        self._lines_lock = threading.Lock()
        if self.crosslingual_ready:
            self._load_crosslingual(client)

    def topic_of(self, row: int) -> tuple[str, tuple[str, ...]]:
        """The topic a passage belongs to: its own section when that holds sub-sections, else
        its parent section (a leaf such as "Disadvantage(s): sharding" belongs to "Sharding")."""
        p = self.passages[row]
        if (p.source, p.path) in self.parents or len(p.path) < 2:
            return p.source, p.path
        return p.source, p.path[:-1]

    def in_topic(self, row: int, topic: tuple[str, tuple[str, ...]]) -> bool:
        p = self.passages[row]
        return p.source == topic[0] and p.path[: len(topic[1])] == topic[1]

    @property
    def crosslingual_ready(self) -> bool:
        """The cross-lingual views of this index are filled in (the manifest says so)."""
        return self.manifest.crosslingual_ready

    @classmethod
    def load(cls, settings: Settings) -> Index:
        return cls(settings, require_manifest(settings))

    # ------------------------------------------------------------------ views
    def _load_crosslingual(self, client: object) -> None:
        """Passage and persona-name vectors of the cross-lingual model (line vectors on demand)."""
        self.xl_collection = open_collection(client, self.manifest.crosslingual)
        got = self.xl_collection.get(where={"kind": {"$in": ["passage", "name"]}}, include=["metadatas", "embeddings"])
        vectors = np.asarray(got["embeddings"], dtype=np.float32).reshape(len(got["ids"]), -1)
        for meta, vector in zip(got["metadatas"], vectors):
            if meta["kind"] == "name":
                self.name_vectors[meta["persona"]] = vector
            elif meta["passage"] in self.by_id:
                self.xl_vectors[self.by_id[meta["passage"]]] = vector

    def persona_crosslingual(self, key: str) -> np.ndarray:
        row = self.row_of_persona.get(key)
        return self.xl_vectors[row] if row is not None else np.zeros(DIMENSIONS, dtype=np.float32)

    def line_vectors(self, rows: list[int]) -> dict[tuple[int, int], np.ndarray]:
        """Cross-lingual vectors of the lines of these passages: (row, n) -> vector. Read from
        Chroma for the passages not read lately (the passages of recent answers are kept)."""
        if self.xl_collection is None or not rows:
            return {}
        with self._lines_lock:
            missing = [r for r in dict.fromkeys(rows) if r not in self._lines]
        fetched: dict[int, dict[int, np.ndarray]] = {r: {} for r in missing}
        if missing:
            got = self.xl_collection.get(
                where={"$and": [{"kind": "line"}, {"passage": {"$in": [self.passages[r].id for r in missing]}}]},
                include=["metadatas", "embeddings"],
            )
            for m, v in zip(got["metadatas"], got["embeddings"]):
                fetched[self.by_id[m["passage"]]][int(m["n"])] = np.asarray(v, dtype=np.float32)
            with self._lines_lock:
                self._lines.update(fetched)
        with self._lines_lock:
            out = {}
            for r in rows:
                lines = self._lines.get(r, fetched.get(r, {}))
                if r in self._lines:
                    self._lines.move_to_end(r)
                out.update({(r, n): v for n, v in lines.items()})
            while len(self._lines) > LINE_ROWS_KEPT:
                self._lines.popitem(last=False)
        return out

    # ------------------------------------------------------------------- titles
    def _index_titles(self) -> None:
        """Section titles by length: a fuzzy match of a whole message (rapidfuzz ratio >= 90)
        needs a title of nearly its length, so only that band of titles is compared."""
        by_title: dict[str, list[int]] = {}
        for row, p in enumerate(self.passages):
            if p.kind == "note":
                by_title.setdefault(normalize_name(p.title), []).append(row)
        titles = sorted((t for t in by_title if t), key=len)
        # Titles a message can name in passing ("tell me about low code"): two words or more, or
        # one long word; a shorter one ("cache", "goals") is a common word, not a mention.
        self.mentionable = {t: by_title[t] for t in titles if len(t.split()) >= 2 or len(t) >= MENTION_MIN_CHARS}
        self.titles = titles
        self.title_lengths = [len(t) for t in titles]
        self.title_rows = [by_title[t] for t in titles]

    def mentioned_titles(self, text: str) -> list[str]:
        """Section titles the message names as whole words, longest first."""
        words = normalize_name(text).split()
        found = {
            " ".join(words[i : i + n])
            for n in range(1, MENTION_MAX_WORDS + 1)
            for i in range(len(words) - n + 1)
            if " ".join(words[i : i + n]) in self.mentionable
        }
        return sorted(found, key=lambda t: -len(t))

    def titles_near(self, length: int, ratio: float) -> range:
        """Indexes of titles whose length allows a rapidfuzz ratio >= `ratio` (0-1) with a text
        of `length` characters: ratio = 2M / (a + b) <= 2 min / (a + b)."""
        low = int(np.floor(length * ratio / (2 - ratio)))
        high = int(np.ceil(length * (2 - ratio) / ratio))
        return range(bisect.bisect_left(self.title_lengths, low), bisect.bisect_right(self.title_lengths, high))
