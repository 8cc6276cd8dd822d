"""The vector store: Chroma (embedded, or a server), with an atomically swapped manifest.

Each ingest writes a fresh collection and then replaces `manifest.json` in one
`os.replace`, so readers see the old index or the new one, never a mix; an ingest that
dies half way leaves the manifest, and so the old index, untouched.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.core.settings import Settings

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

MANIFEST = "manifest.json"


class IndexMissingError(RuntimeError):
    """No index yet: the message says how to build one."""


@dataclass(frozen=True)
class IngestProblem:
    """A file that could not be ingested, or a warning about one line of it."""

    file: str
    message: str
    line: int | None = None
    warning: bool = False

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass
class Manifest:
    collection: str
    notes_path: str
    config_key: str
    files: dict[str, str] = field(default_factory=dict)  # relpath -> sha256 of the bytes
    failed_files: dict[str, str] = field(default_factory=dict)  # files that could not be ingested
    chunks: int = 0
    personas: int = 0
    ingested_at: str = ""
    problems: list[IngestProblem] = field(default_factory=list)
    dropped_lines: int = 0
    crosslingual: str = ""  # the cross-lingual views' collection; empty while they are filled in behind

    @property
    def catalog_file(self) -> str:
        return f"personas-{self.collection}.json"

    @property
    def crosslingual_ready(self) -> bool:
        return bool(self.crosslingual)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        data = json.loads(text)
        data["problems"] = [IngestProblem(**p) for p in data.get("problems", [])]
        return cls(**data)


def manifest_path(settings: Settings) -> Path:
    return Path(settings.store_dir) / MANIFEST


def read_manifest(settings: Settings) -> Manifest | None:
    path = manifest_path(settings)
    if not path.exists():
        return None
    try:
        return Manifest.from_json(path.read_text(encoding="utf-8"))
    except (ValueError, TypeError):
        return None  # unreadable or from an older version: the next ingest rebuilds it


def write_atomic(path: Path, text: str) -> None:
    """Write to a temporary file beside `path`, fsync, then rename over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_manifest(settings: Settings, manifest: Manifest) -> None:
    write_atomic(manifest_path(settings), manifest.to_json())


def require_manifest(settings: Settings) -> Manifest:
    manifest = read_manifest(settings)
    if manifest is None:
        raise IndexMissingError(f"no index in {settings.store_dir}: run `python -m ingest` (or `make run`) to build it")
    return manifest


def chroma_client(settings: Settings) -> ClientAPI:
    """A real Chroma client: a server when CHROMA_HOST is set, else embedded in STORE_DIR."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    if settings.is_server_mode:
        return chromadb.HttpClient(host=settings.chroma_host, port=settings.chroma_port, settings=chroma_settings)
    path = Path(settings.store_dir) / "chroma"
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=chroma_settings)


def open_collection(client: ClientAPI, name: str, create: bool = False) -> Collection:
    """The collection with no embedding function of Chroma's own (it would download one)."""
    if create:
        return client.create_collection(
            name=name,
            embedding_function=None,
            # A wide search beam: near-exact neighbours, the same on every run, still fast.
            metadata={"hnsw:space": "cosine", "hnsw:search_ef": 128, "hnsw:construction_ef": 200},
        )
    return client.get_collection(name=name, embedding_function=None)
