"""One retrieval pipeline: which persona a query means, and the note passages that answer it.

Candidates come from three sources fused by reciprocal rank: dense vectors in Chroma,
BM25 over chunk text, and Levenshtein matching (rapidfuzz) of persona names and section
titles. `NotesRetriever` exposes the same pipeline as a LangChain retriever.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

import numpy as np
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict
from rapidfuzz import fuzz, process

from . import intent
from .index import Index
from .personas import Persona, normalize_name
from .settings import Settings
from .text import clean_query, compact

RRF_K = 60
POOL = 30
# Thresholds on cosine similarity (all-MiniLM-L6-v2, normalised vectors).
PERSONA_WITH_REQUEST = 0.30
PERSONA_BY_NEED = 0.42
PERSONA_CLEAR_WINNER = 0.35
CLEAR_MARGIN = 0.15
PERSONA_FROM_QUESTION = 0.55
NEED_MARGIN = 0.05
NAME_MATCH = 85.0
TITLE_MATCH = 90.0
RELEVANT = 0.40


@dataclass
class Passage:
    id: str
    path: list[str]
    text: str
    score: float
    source: str
    first_line: int
    last_line: int
    kind: str

    @property
    def breadcrumb(self) -> str:
        return " > ".join(self.path)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class SearchResult:
    query: str
    persona: Persona | None
    persona_reason: str  # "name", "need", "emoji" or "" when none was picked
    passages: list[Passage] = field(default_factory=list)
    relevant: bool = True
    intent: str = "notes"  # "persona", "notes" or "none"

    @property
    def message(self) -> str:
        if self.intent == "none":
            return "Nothing relevant in your notes for this query."
        return ""

    def to_prediction(self) -> dict:
        """The evaluation line format of ../shared/eval/README.md."""
        return {
            "query": self.query,
            "persona": self.persona.name if self.persona else None,
            "passages": [{"path": p.path, "text": p.text} for p in self.passages],
        }


class Retriever:
    def __init__(self, index: Index, embeddings):
        self.index = index
        self.embeddings = embeddings
        self.settings: Settings = index.settings
        self._titles = [normalize_name(c.path[-1]) if c.path else "" for c in index.chunks]

    # ------------------------------------------------------------------ public
    def search(self, query: str, k: int | None = None) -> SearchResult:
        k = k or self.settings.retrieval_k
        text = clean_query(query, max(self.settings.query_max_chars, 1))
        has_request, role = intent.split_request(text)
        if has_request and role:
            # The role alone ("bash shell") says more about the persona than the request words.
            both = self.embeddings.embed_documents([text, intent.translate_roles(role)])
            vector, role_vector = (np.asarray(v, dtype=np.float32) for v in both)
        else:
            vector = role_vector = np.asarray(self.embeddings.embed_query(text), dtype=np.float32)
        dense = self._dense(vector)
        titles = self._title_hits(text)
        persona, reason = self._pick_persona(text, (vector + role_vector) / 2, dense)
        ranked = self._fuse(text, dense, titles)
        passages = [self._passage(i, s) for i, s in ranked[:k]]
        if persona is not None:
            row = self.index.row_of_persona.get(persona.key)
            if row is not None:
                passages = [self._passage(row, 1.0)] + [p for p in passages if p.id != self.index.chunks[row].id]
                passages = passages[:k]
        best_dense = max((s for _, s in dense), default=0.0)
        relevant = persona is not None or best_dense >= RELEVANT or bool(titles)
        kind = "persona" if persona else ("notes" if relevant else "none")
        return SearchResult(query=query, persona=persona, persona_reason=reason, passages=passages,
                            relevant=relevant, intent=kind)

    def find_persona(self, text: str) -> Persona | None:
        """Name lookup alone (no model): exact, then Levenshtein-close names."""
        has_request, role = intent.split_request(text)
        return self._name_match(role if has_request else text)

    # ----------------------------------------------------------------- persona
    def _name_match(self, role: str) -> Persona | None:
        return self.index.catalog.match_name(intent.translate_roles(role), NAME_MATCH)

    def _pick_persona(self, text: str, vector: np.ndarray, dense) -> tuple[Persona | None, str]:
        if intent.is_injection(text):
            return None, ""
        has_request, role = intent.split_request(text)
        if has_request:
            head = re.split(r"[,.;:!?(]| and | who | that | to | for ", role, maxsplit=1)[0].split()
            windows = [" ".join(head[:n]) for n in range(min(len(head), 5), 0, -1)]
        else:
            windows = [text] if len(text) <= 60 else []
        catalog = self.index.catalog
        # An exact name first, then a name that holds all the words, then a Levenshtein-close name.
        for window in windows:
            exact = catalog.match_name(intent.translate_roles(window), 100.0)
            if exact is not None:
                return exact, "name"
        subset = catalog.subset_match(intent.translate_roles(role)) if len(role) <= 60 else None
        if subset is not None and has_request:
            return subset, "name"
        for window in windows:
            close = self._name_match(window)
            if close is not None:
                return close, "name"
        if not self.index.persona_rows or (intent.word_count(text) < 2 and not intent.emojis(text)):
            return None, ""
        sims = self.index.persona_vectors @ vector
        order = np.argsort(-sims)
        rows = self.index.persona_rows
        persona_of = lambda j: self.index.persona_by_key[self.index.chunks[rows[j]].persona]  # noqa: E731
        marks = intent.emojis(text)
        if marks:
            holders = [j for j in range(len(rows)) if marks & intent.emojis(persona_of(j).emoji)]
            if len(holders) == 1:
                return persona_of(holders[0]), "emoji"
            if holders:
                j = max(holders, key=lambda h: sims[h])
                if sims[j] >= PERSONA_WITH_REQUEST:
                    return persona_of(j), "emoji"
        if subset is not None and persona_of(order[0]).key == subset.key:
            return subset, "name"
        top = float(sims[order[0]])
        second = float(sims[order[1]]) if len(order) > 1 else 0.0
        notes_best = max((s for i, s in dense if self.index.chunks[i].kind != "persona"), default=0.0)
        if has_request and top >= PERSONA_WITH_REQUEST:
            return persona_of(order[0]), "need"
        if intent.is_question(text):
            # A question goes to a persona only when one persona clearly serves it and the notes don't.
            clear = top >= PERSONA_BY_NEED and top - second >= 0.2 and top - notes_best >= 0.2
            if clear or (top >= PERSONA_FROM_QUESTION and top - notes_best >= 0.15):
                return persona_of(order[0]), "need"
            return None, ""
        if top >= PERSONA_BY_NEED and top - notes_best >= NEED_MARGIN and top - second >= NEED_MARGIN:
            return persona_of(order[0]), "need"
        if top >= PERSONA_CLEAR_WINNER and top - second >= CLEAR_MARGIN and top - notes_best >= 2 * NEED_MARGIN:
            return persona_of(order[0]), "need"
        return None, ""

    # ------------------------------------------------------------------- notes
    def _dense(self, vector: np.ndarray) -> list[tuple[int, float]]:
        # HNSW is approximate and its in-memory graph differs a little between processes: ask
        # for twice the pool and keep the best, so the pool is the same on every run.
        n = min(2 * POOL, len(self.index.chunks))
        res = self.index.collection.query(query_embeddings=[vector.tolist()], n_results=n, include=["distances"])
        hits = [(self.index.by_id[cid], 1.0 - float(d)) for cid, d in zip(res["ids"][0], res["distances"][0])
                if cid in self.index.by_id]
        return sorted(hits, key=lambda h: (-round(h[1], 6), h[0]))[:POOL]

    def _title_hits(self, text: str, limit: int = 10) -> list[tuple[int, float]]:
        query = normalize_name(text)
        if len(query) < 4:
            return []
        hits = process.extract(query, self._titles, scorer=fuzz.ratio, score_cutoff=TITLE_MATCH, limit=limit)
        return [(i, float(s)) for _, s, i in hits]

    def _fuse(self, text: str, dense: list[tuple[int, float]], titles: list[tuple[int, float]]) -> list[tuple[int, float]]:
        scores: dict[int, float] = {}
        for rank, (i, _) in enumerate(dense):
            scores[i] = scores.get(i, 0.0) + 1.0 / (RRF_K + rank)
        for rank, (i, _) in enumerate(self.index.keyword_search(text, POOL)):
            scores[i] = scores.get(i, 0.0) + 0.8 / (RRF_K + rank)
        for rank, (i, _) in enumerate(titles):
            scores[i] = scores.get(i, 0.0) + 2.0 / (RRF_K + rank)
        return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))

    def _passage(self, i: int, score: float) -> Passage:
        c = self.index.chunks[i]
        return Passage(id=c.id, path=c.path, text=compact(c.body), score=round(score, 5), source=c.source,
                       first_line=c.first_line, last_line=c.last_line, kind=c.kind)


class NotesRetriever(BaseRetriever):
    """The pipeline as a LangChain retriever, so it composes in LCEL chains."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    retriever: Retriever
    k: int = 5

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        result = self.retriever.search(query, self.k)
        if not result.relevant:
            return []
        return [
            Document(
                page_content=p.text,
                id=p.id,
                metadata={"path": p.path, "breadcrumb": p.breadcrumb, "source": p.source, "score": p.score,
                          "first_line": p.first_line, "last_line": p.last_line, "kind": p.kind},
            )
            for p in result.passages
        ]
