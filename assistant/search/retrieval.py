"""The search pipeline: which persona a message means, and the note passages that answer it.

1. A persona's exact or misspelt name decides at once (rapidfuzz, no model).
2. Otherwise both models embed the message. Note passages come from four rankings fused by
   reciprocal rank: dense vectors in Chroma, BM25, fuzzy section titles, and cross-lingual
   section titles (weighted by how foreign the message is to the notes' vocabulary).
   Personas are ranked by a fitted linear model over both models' scores, name windows and
   emoji (`router.py`).
3. One fitted decision says persona, notes or none. Whatever it says, the best three other
   personas come back as suggestions.

`NotesRetriever` is the notes half as a LangChain `BaseRetriever`: the one way every front end
and the answer chains get passages. The analysis of a message is kept for a while (a small
LRU), so routing it and then retrieving for it embeds it once.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict
from rapidfuzz import fuzz, process

from assistant.core.embeddings import E5Embeddings
from assistant.core.passages import Passage
from assistant.core.personas import Persona, normalize_name
from assistant.core.settings import Settings
from assistant.core.text import clean_query
from assistant.search import signals
from assistant.search.index import Index
from assistant.search.persona_space import PersonaScores, PersonaSpace
from assistant.search.router import Decision, MessageSignals, Route, Router, rank_matrix, route_vector

PersonaReason = Literal["name", "ranked"]

# Reciprocal-rank fusion of the note rankings: score += weight / (RRF_K + rank).
RRF_K = 60  # the usual constant of Cormack et al.; damps the difference between close ranks
DENSE_WEIGHT = 1.0  # notes-model vectors in Chroma
KEYWORD_WEIGHT = 0.8  # BM25: exact words, slightly less trusted than meaning
TITLE_FUZZY_WEIGHT = 2.0  # a message that spells a section title ("desing a parkng lot")
# Cross-lingual titles count with the square of the share of the message's words that are
# not in the notes: nothing for English about the notes' topics, fully for other languages.
# On the training and dev notes questions this took multilingual hit@1/hit@5 from 7/8 to
# 10/12 of 14, English unchanged at 85/90 of 91 (weights 1-6 tried; 4 and 6 tie).
CROSSLINGUAL_TITLE_WEIGHT = 4.0
POOL = 30  # candidates each ranking contributes
NAME_MATCH = 85.0  # rapidfuzz ratio of a whole message to a name: a typo, not another word
TITLE_MATCH = 90.0  # ratio of a whole message to a section title
SUBSET_MAX_WORDS = 6  # "r interpreter" names part of one persona; longer messages are sentences
SUGGESTIONS = 3
ANALYSES_KEPT = 64  # recent messages whose analysis is kept (a route and its retrieval share one)
OWN_SPACES_KEPT = 32  # distinct sets of own personas kept embedded (one per signed-in user, roughly)
# A request's head: up to the first clause break in any script ("sé mi asesor legal: me
# despidieron…" -> "sé mi asesor legal"). It names the role; the rest describes the need.
CLAUSE_BREAK = re.compile(r"[,:;.!?，。：；、？！\n]|\s[-–—]\s")


def peak(similarities: np.ndarray) -> float:
    """How many standard deviations the best similarity stands above the mean."""
    if len(similarities) < 2:
        return 0.0
    return float((similarities.max() - similarities.mean()) / (similarities.std() + 1e-6))


def head_clause(text: str) -> str:
    head = CLAUSE_BREAK.split(text.strip(), maxsplit=1)[0].strip()
    return head if signals.WORDS.search(head) else text


@dataclass
class SearchResult:
    query: str
    route: Route
    persona: Persona | None = None
    persona_reason: PersonaReason | None = None
    suggestions: list[Persona] = field(default_factory=list)
    passages: list[Passage] = field(default_factory=list)
    probabilities: dict[Route, float] = field(default_factory=dict)
    # Which persona, if any: the ranker's choice probabilities (softmax of its scores, the
    # Bradley-Terry reading of a pairwise logistic ranker), for the picked one and suggestions.
    persona_probabilities: dict[str, float] = field(default_factory=dict)
    analysis: Analysis | None = field(default=None, repr=False, compare=False)

    @property
    def relevant(self) -> bool:
        return self.route != "none"

    @property
    def message(self) -> str:
        return "Nothing relevant in your notes for this query." if self.route == "none" else ""

    def to_prediction(self) -> dict[str, Any]:
        """The evaluation line format of ../shared/eval/README.md."""
        return {
            "query": self.query,
            "persona": self.persona.name if self.persona else None,
            "suggestions": [p.name for p in self.suggestions],
            "passages": [p.to_prediction() for p in self.passages],
        }

    def to_dict(self) -> dict[str, Any]:
        """Everything, for `search --json`."""
        return {
            **self.to_prediction(),
            "intent": self.route,
            "persona_reason": self.persona_reason,
            "probabilities": {k: round(v, 4) for k, v in self.probabilities.items()},
            "persona_probabilities": self.persona_probabilities,
            "message": self.message,
            "passages": [p.to_dict() for p in self.passages],
        }


@dataclass
class Analysis:
    """What is known of a message before the decision: what `fit-router` learns from."""

    text: str
    name_match: Persona | None
    space: PersonaSpace | None = None  # the personas it was scored against
    notes_query: np.ndarray | None = None  # the message under the notes model
    crosslingual_query: np.ndarray | None = None  # ... and under the cross-lingual model
    scores: PersonaScores | None = None
    matrix: np.ndarray | None = None  # RANK_FEATURES, one row per persona
    rank: np.ndarray | None = None  # the ranker's score per persona (None before any fit)
    signals: MessageSignals | None = None
    notes: list[tuple[int, float]] = field(default_factory=list)

    @property
    def route_features(self) -> np.ndarray:
        return route_vector(self.rank, self.scores, self.signals)


class SearchPipeline:
    """Routing and notes retrieval over one loaded index and both embedding models."""

    def __init__(self, index: Index, notes_model: Embeddings, crosslingual: E5Embeddings, router: Router | None):
        self.index = index
        self.notes_model = notes_model
        self.crosslingual = crosslingual
        self.router = router
        self.settings: Settings = index.settings
        catalog = index.catalog
        notes_vectors = (
            np.stack([index.vectors[index.row_of_persona[p.key]] for p in catalog.personas])
            if len(catalog)
            else np.zeros((0, index.vectors.shape[1]), dtype=np.float32)
        )

        def stacked(vectors: dict[str, np.ndarray]) -> np.ndarray:
            return np.stack([vectors[p.key] for p in catalog.personas]) if len(catalog) else np.zeros((0, 384))

        self._notes_space = PersonaSpace(
            catalog, notes_vectors, stacked(index.persona_crosslingual), stacked(index.persona_name_crosslingual)
        )
        self._spaces: OrderedDict[tuple, PersonaSpace] = OrderedDict()  # own personas -> space (LRU)
        self._space_lock = threading.Lock()
        self._titles = [normalize_name(p.title) for p in index.passages]
        self._injection = crosslingual.embed_queries(list(signals.INJECTION_EXAMPLES))
        self._analyses: OrderedDict[tuple, Analysis] = OrderedDict()  # recent messages, LRU
        self._analyses_lock = threading.Lock()

    def clean(self, query: str | None) -> str:
        return clean_query(query, self.settings.query_max_chars)

    # ------------------------------------------------------------------ personas
    @property
    def space(self) -> PersonaSpace:
        """The notes' own personas."""
        return self._notes_space

    def space_for(self, own: Sequence[Persona] = ()) -> PersonaSpace:
        """The notes' personas and someone's own, which are found by name, typo and need
        alike. Each set of own personas is embedded once and kept (a few per process)."""
        if not own:
            return self._notes_space
        fingerprint = tuple((p.key, p.name, p.prompt) for p in own)
        with self._space_lock:
            if fingerprint in self._spaces:
                self._spaces.move_to_end(fingerprint)
                return self._spaces[fingerprint]
        space = self._notes_space.with_personas(list(own), self.notes_model, self.crosslingual)
        with self._space_lock:
            self._spaces[fingerprint] = space
            while len(self._spaces) > OWN_SPACES_KEPT:
                self._spaces.popitem(last=False)
        return space

    def find_persona(self, text: str, own: Sequence[Persona] = ()) -> Persona | None:
        """Name lookup alone (no model): an exact name, the words of one name, or a misspelt name."""
        catalog = self.space_for(own).catalog
        found = catalog.match_name(text, 100.0)
        if found is None and len(text.split()) <= SUBSET_MAX_WORDS:
            found = catalog.subset_match(text)  # "r interpreter" before "dream interpreter" by typo
        return found or catalog.match_name(text, NAME_MATCH)

    def resolve_persona(self, text: str, own: Sequence[Persona] = ()) -> Persona | None:
        """A persona named, misspelt or described: what `ask --persona` and the UI's persona
        box take. The name lookup first, then the best of the ranking."""
        return next(iter(self.rank_personas(text, own, limit=1)), None)

    def rank_personas(self, text: str, own: Sequence[Persona] = (), limit: int = 10) -> list[Persona]:
        """Personas for a name, a typo or a described need, best first."""
        cleaned = self.clean(text)
        found = self.find_persona(cleaned, own)
        analysis = self.analyse(cleaned, own)
        if analysis.rank is None:
            return [found] if found else []
        ranked = [analysis.space.personas[int(i)] for i in np.argsort(-analysis.rank)]
        if found is not None:
            ranked = [found] + [p for p in ranked if p.key != found.key]
        return ranked[:limit]

    def persona_passage(self, persona: Persona) -> Passage:
        row = self.index.row_of_persona.get(persona.key)
        if row is not None:
            return self.index.passages[row].with_score(1.0)
        return Passage(
            id=persona.key,
            path=("My personas", persona.name),
            body=persona.prompt,
            source="my personas",
            first_line=0,
            last_line=0,
            kind="persona",
            persona=persona.key,
            score=1.0,
        )

    # ------------------------------------------------------------------ search
    def analyse(self, text: str, own: Sequence[Persona] = ()) -> Analysis:
        """Scores and signals of a cleaned message, no decision yet; a message analysed a moment
        ago (routed, then retrieved for) is not embedded again."""
        key = (text, tuple(p.key for p in own))
        with self._analyses_lock:
            if key in self._analyses:
                self._analyses.move_to_end(key)
                return self._analyses[key]
        analysis = self._analyse(text, own)
        with self._analyses_lock:
            self._analyses[key] = analysis
            while len(self._analyses) > ANALYSES_KEPT:
                self._analyses.popitem(last=False)
        return analysis

    def _analyse(self, text: str, own: Sequence[Persona]) -> Analysis:
        space = self.space_for(own)
        name = None if signals.has_scaffolding(text) else self.find_persona(text, own)
        notes_query = np.asarray(self.notes_model.embed_query(text), dtype=np.float32)
        cross_query = self.crosslingual.query_vector(text)
        head = head_clause(text)
        head_query = cross_query if head == text else self.crosslingual.query_vector(head)
        known = signals.known_share(text, self.index.vocabulary)
        dense = self._dense(notes_query)
        title_sims = self.index.title_vectors @ cross_query if len(self.index.titles) else np.zeros(0)
        notes = self._fuse(text, dense, title_sims, known)
        note_sims = self.index.vectors[self.index.note_rows] @ notes_query
        message = MessageSignals(
            notes_best=float(note_sims.max(initial=0.0)),
            title_best=float(title_sims.max(initial=0.0)),
            notes_peak=peak(note_sims),
            title_peak=peak(title_sims),
            request=signals.is_request(text),
            question=signals.is_question(text),
            injection=signals.is_injection(text),
            injection_similarity=float((self._injection @ cross_query).max(initial=0.0)),
            words=signals.word_count(text),
            markup=signals.markup_share(text),
            known=known,
            scaffolding=signals.has_scaffolding(text),
        )
        base = dict(
            text=text,
            name_match=name,
            notes_query=notes_query,
            crosslingual_query=cross_query,
            signals=message,
            notes=notes,
            space=space,
        )
        if not len(space):
            return Analysis(**base)
        scores = space.scores(text, notes_query, cross_query, head_query)
        matrix = rank_matrix(scores, known)
        rank = self.router.rank(matrix) if self.router is not None else None
        return Analysis(**base, scores=scores, matrix=matrix, rank=rank)

    def search(self, query: str, k: int | None = None, own: Sequence[Persona] = ()) -> SearchResult:
        """Route a message (persona, notes or none) and find its note passages."""
        k = k or self.settings.retrieval_k
        analysis = self.analyse(self.clean(query), own)
        return self.decide(query, analysis, k)

    def notes(self, query: str, k: int | None = None) -> list[Passage]:
        """The note passages for a query, best first, whatever the route (NotesRetriever)."""
        analysis = self.analyse(self.clean(query))
        return [self.index.passages[i].with_score(s) for i, s in analysis.notes[: k or self.settings.retrieval_k]]

    def decide(self, query: str, analysis: Analysis, k: int) -> SearchResult:
        result = self._decide(query, analysis, k)
        result.analysis = analysis
        if analysis.rank is not None and len(analysis.rank):
            shown = ([result.persona] if result.persona else []) + result.suggestions
            choice = np.exp(analysis.rank - analysis.rank.max())
            choice /= choice.sum()
            row = {p.key: i for i, p in enumerate(analysis.space.personas)}
            result.persona_probabilities = {p.key: round(float(choice[row[p.key]]), 4) for p in shown}
        return result

    def _decide(self, query: str, analysis: Analysis, k: int) -> SearchResult:
        space = analysis.space
        order = [int(i) for i in np.argsort(-analysis.rank)] if analysis.rank is not None else []
        passages = [self.index.passages[i].with_score(s) for i, s in analysis.notes[:k]]
        if analysis.name_match is not None:
            picked = analysis.name_match
            others = [space.personas[i] for i in order if space.personas[i].key != picked.key]
            return SearchResult(
                query=query,
                route="persona",
                persona=picked,
                persona_reason="name",
                suggestions=others[:SUGGESTIONS],
                probabilities={"persona": 1.0},
                passages=[self.persona_passage(picked), *passages][:k],
            )
        if analysis.rank is None:
            decision = Decision(route="notes" if passages else "none", probabilities={})
        else:
            scaffolding = analysis.signals.scaffolding or analysis.signals.injection
            decision = self.router.decide(analysis.route_features, scaffolding=scaffolding)
        ranked = [space.personas[i] for i in order]
        if decision.route == "persona":
            picked = ranked[0]
            return SearchResult(
                query=query,
                route="persona",
                persona=picked,
                persona_reason="ranked",
                suggestions=ranked[1 : 1 + SUGGESTIONS],
                probabilities=decision.probabilities,
                passages=[self.persona_passage(picked), *passages][:k],
            )
        return SearchResult(
            query=query,
            route=decision.route,
            suggestions=ranked[:SUGGESTIONS],
            passages=passages,
            probabilities=decision.probabilities,
        )

    # ------------------------------------------------------------------- notes
    def _dense(self, vector: np.ndarray) -> list[tuple[int, float]]:
        # HNSW is approximate and its in-memory graph differs a little between processes: ask
        # for twice the pool and keep the best, so the pool is the same on every run.
        n = min(2 * POOL, len(self.index.passages))
        res = self.index.collection.query(query_embeddings=[vector.tolist()], n_results=n, include=["distances"])
        hits = [
            (self.index.by_id[cid], 1.0 - float(d))
            for cid, d in zip(res["ids"][0], res["distances"][0])
            if cid in self.index.by_id
        ]
        return sorted(hits, key=lambda h: (-round(h[1], 6), h[0]))[:POOL]

    def _title_hits(self, text: str, limit: int = 10) -> list[tuple[int, float]]:
        query = normalize_name(text)
        if len(query) < 4:
            return []
        hits = process.extract(query, self._titles, scorer=fuzz.ratio, score_cutoff=TITLE_MATCH, limit=limit)
        return [(i, float(s)) for _, s, i in hits]

    def _fuse(
        self, text: str, dense: list[tuple[int, float]], title_sims: np.ndarray, known: float
    ) -> list[tuple[int, float]]:
        """Note passages (never persona prompts) by weighted reciprocal rank, best first."""
        scores: dict[int, float] = {}

        def add(rows: list[int], weight: float) -> None:
            for rank, i in enumerate(rows):
                if self.index.passages[i].kind == "note":
                    scores[i] = scores.get(i, 0.0) + weight / (RRF_K + rank)

        add([i for i, _ in dense], DENSE_WEIGHT)
        add([i for i, _ in self.index.keyword_search(text, POOL)], KEYWORD_WEIGHT)
        add([i for i, _ in self._title_hits(text)], TITLE_FUZZY_WEIGHT)
        foreign = 1.0 - known
        if foreign > 0 and len(title_sims):
            top = np.argsort(-title_sims, kind="stable")[:POOL]
            for rank, j in enumerate(top):
                weight = CROSSLINGUAL_TITLE_WEIGHT * foreign**2 / self.index.title_sections[int(j)]
                for i in self.index.title_rows[int(j)]:
                    # A reading list's title says what it is about, not what it holds.
                    if not self.index.passages[i].link_only:
                        scores[i] = scores.get(i, 0.0) + weight / (RRF_K + rank)
        return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


class NotesRetriever(BaseRetriever):
    """The notes as a LangChain retriever: Documents whose metadata carry the breadcrumb, the
    file and its lines (a `Passage.to_dict()`), so it plugs into any LCEL chain.

    It returns the passages whatever the route; `only_relevant=True` returns nothing for a
    message the notes hold no answer to (the routing decision's "none")."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    pipeline: SearchPipeline
    k: int = 5
    only_relevant: bool = False

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        if self.only_relevant and not self.pipeline.search(query, self.k).relevant:
            return []
        return [to_document(p) for p in self.pipeline.notes(query, self.k)]


def to_document(passage: Passage) -> Document:
    return Document(page_content=passage.text, id=passage.id, metadata=passage.to_dict())


def from_document(document: Document) -> Passage:
    return Passage.from_dict({**document.metadata, "text": document.page_content})
