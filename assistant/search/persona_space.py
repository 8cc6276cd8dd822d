"""Every persona as vectors of both models, ready to score a message against.

Built from the index for the notes' own personas; your own personas join it with vectors
embedded when they are added. Scores are computed for all personas at once (a few
hundred rows: a matrix product, well under a millisecond).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from langchain_core.embeddings import Embeddings

from assistant.core.embeddings import E5Embeddings
from assistant.core.personas import Persona, PersonaCatalog
from assistant.search.signals import emojis


@dataclass(frozen=True)
class PersonaScores:
    """How one message relates to each persona, row for row with the catalog."""

    notes_model: np.ndarray  # cosine with the persona's prompt, notes model
    crosslingual: np.ndarray  # cosine with the persona's name and prompt, cross-lingual model
    crosslingual_name: np.ndarray  # cosine of the request's head clause with the name, cross-lingual
    name_window: np.ndarray  # 0-1: some run of the message's words spells the name
    emoji: np.ndarray  # 1 where the message carries the persona's emoji
    # Contrast with the nearest other persona (its cosine minus the neighbour's), per model: of
    # two close personas, the message leans to the one whose own distinct words it shares.
    notes_contrast: np.ndarray
    crosslingual_contrast: np.ndarray


def nearest_other(vectors: np.ndarray) -> np.ndarray:
    """For each row, the row most similar to it among the others (itself when alone)."""
    if len(vectors) < 2:
        return np.zeros(len(vectors), dtype=int)
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    return np.argmax(sims, axis=1)


class PersonaSpace:
    def __init__(
        self,
        catalog: PersonaCatalog,
        notes_vectors: np.ndarray,
        crosslingual_vectors: np.ndarray,
        name_vectors: np.ndarray,
    ):
        self.catalog = catalog
        self.notes_vectors = np.asarray(notes_vectors, dtype=np.float32)
        self.crosslingual_vectors = np.asarray(crosslingual_vectors, dtype=np.float32)
        self.name_vectors = np.asarray(name_vectors, dtype=np.float32)
        self._emojis = [emojis(p.emoji) for p in catalog.personas]
        self.jailbreak = np.array([p.is_jailbreak for p in catalog.personas], dtype=bool)
        self._notes_neighbour = nearest_other(self.notes_vectors)
        self._crosslingual_neighbour = nearest_other(self.crosslingual_vectors)

    @property
    def personas(self) -> list[Persona]:
        return self.catalog.personas

    def __len__(self) -> int:
        return len(self.catalog)

    def scores(
        self, text: str, notes_query: np.ndarray, crosslingual_query: np.ndarray, head_query: np.ndarray
    ) -> PersonaScores:
        marks = emojis(text)
        notes = self.notes_vectors @ notes_query
        cross = self.crosslingual_vectors @ crosslingual_query
        alone = len(notes) < 2
        return PersonaScores(
            notes_model=notes,
            crosslingual=cross,
            notes_contrast=np.zeros_like(notes) if alone else notes - notes[self._notes_neighbour],
            crosslingual_contrast=np.zeros_like(cross) if alone else cross - cross[self._crosslingual_neighbour],
            crosslingual_name=self.name_vectors @ head_query,
            name_window=self.catalog.window_scores(text),
            emoji=np.array([1.0 if marks & e else 0.0 for e in self._emojis], dtype=np.float32),
        )

    def with_personas(self, extra: list[Persona], notes_model: Embeddings, crosslingual: E5Embeddings) -> PersonaSpace:
        """This space plus `extra` personas (your own), embedded now by both models."""
        if not extra:
            return self
        notes = np.asarray(notes_model.embed_documents([p.embed_text for p in extra]), dtype=np.float32)
        cross = crosslingual.embed_passages([p.crosslingual_text for p in extra])
        names = crosslingual.embed_queries([p.name for p in extra])
        return PersonaSpace(
            PersonaCatalog(self.personas + list(extra)),
            np.vstack([self.notes_vectors, notes.reshape(len(extra), -1)]),
            np.vstack([self.crosslingual_vectors, cross]),
            np.vstack([self.name_vectors, names]),
        )
