"""The ingest: notes tree -> chunks -> a new Chroma collection, swapped in atomically.

Incremental by content: chunk ids hash the chunk's source, breadcrumb, text and model,
so a re-ingest copies the vectors of unchanged chunks from the previous collection and
embeds only what is new. When no file changed, nothing heavy is even imported.
"""

from __future__ import annotations

import hashlib
from collections import Counter
import json
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from filelock import FileLock, Timeout

from assistant.embeddings import model_key
from assistant.personas import PersonaCatalog
from assistant.settings import Settings
from assistant.store import (
    Manifest,
    chroma_client,
    open_collection,
    read_manifest,
    write_manifest,
)

from .chunking import CHUNKER_VERSION, Chunk, Chunker, assign_ids, file_path_parts
from .outline import parse_outline
from .reading import NoteFileError, discover, file_digest, read_note_file

Progress = Callable[[str, int, int], None]
COPY_BATCH = 256


class IngestError(RuntimeError):
    """An ingest that could not run at all (missing path, lock held, nothing readable)."""


@dataclass
class IngestReport:
    files: int = 0
    chunks: int = 0
    personas: int = 0
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    skipped: int = 0
    errors: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    collection: str = ""
    dropped_lines: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ParsedTree:
    chunks: list[Chunk]
    digests: dict[str, str]
    failed: dict[str, str]
    errors: list[dict]
    dropped_lines: int


def _code_digest() -> str:
    """The reading, parsing and chunking code itself: a change to it re-chunks the notes."""
    h = hashlib.sha256()
    for name in ("reading.py", "outline.py", "chunking.py"):
        h.update((Path(__file__).parent / name).read_bytes())
    return h.hexdigest()[:12]


def config_key(settings: Settings) -> str:
    raw = (f"{CHUNKER_VERSION}|{_code_digest()}|{model_key(settings)}|{settings.chunk_max_chars}|"
           f"{settings.chunk_min_chars}")
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def parse_tree(root: Path, settings: Settings) -> ParsedTree:
    """Read, repair, parse and chunk every note file; a bad file becomes an error entry."""
    found = discover(root)
    single = root.is_file()
    chunker = Chunker(settings.chunk_max_chars, settings.chunk_min_chars)
    chunks: list[Chunk] = []
    digests: dict[str, str] = {}
    failed: dict[str, str] = {}
    errors: list[dict] = []
    dropped = 0
    for path, rel in found:
        try:
            note = read_note_file(path, rel)
        except NoteFileError as exc:
            errors.append({"file": rel, "line": None, "message": str(exc)})
            failed[rel] = _safe_digest(path)
            continue
        parsed = parse_outline(note.lines)
        for warning in parsed.warnings:
            line = int(warning.split(":")[0].removeprefix("line ")) if warning.startswith("line ") else None
            errors.append({"file": rel, "line": line, "message": warning, "warning": True})
        file_chunks, dropped_lines = chunker.chunk_tree(parsed.root, rel, file_path_parts(rel, single))
        if not file_chunks:
            errors.append({"file": rel, "line": None, "message": "no notes found in file"})
            failed[rel] = note.sha256
            continue
        digests[rel] = note.sha256
        chunks.extend(file_chunks)
        dropped += len(dropped_lines)
    assign_ids(chunks, model_key(settings))
    return ParsedTree(chunks=chunks, digests=digests, failed=failed, errors=errors, dropped_lines=dropped)


def _safe_digest(path: Path) -> str:
    try:
        return file_digest(path)
    except OSError:
        return ""


def chunk_metadata(chunk: Chunk) -> dict:
    meta = {
        "path": json.dumps(chunk.path, ensure_ascii=False),
        "breadcrumb": chunk.breadcrumb,
        "title": chunk.path[-1] if chunk.path else "",
        "kind": chunk.kind,
        "source": chunk.source,
        "first_line": chunk.first_line,
        "last_line": chunk.last_line,
        "key": f"{chunk.source}|{chunk.breadcrumb}",
    }
    if chunk.persona is not None:
        meta["persona"] = chunk.persona.key
    return meta


def _quick_unchanged(root: Path, settings: Settings, manifest: Manifest | None) -> bool:
    """True when files, notes path and configuration match the manifest: nothing to do."""
    if manifest is None or manifest.config_key != config_key(settings) or manifest.notes_path != str(root):
        return False
    try:
        found = discover(root)
        digests = {rel: file_digest(path) for path, rel in found}
    except OSError:
        return False
    return digests == {**manifest.files, **manifest.failed_files}


def run_ingest(
    settings: Settings,
    path: Path | None = None,
    rebuild: bool = False,
    progress: Progress | None = None,
) -> IngestReport:
    """Ingest the notes tree at `path` (default NOTES_PATH) into the store."""
    started = time.perf_counter()
    root = Path(path or settings.notes_path).expanduser().resolve()
    if not root.exists():
        raise IngestError(f"notes path does not exist: {root}")
    store_dir = Path(settings.store_dir)
    store_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(store_dir / "ingest.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout as exc:
        raise IngestError(f"another ingest is running on {store_dir} (lock {lock.lock_file}); try again when it ends") from exc
    try:
        previous = read_manifest(settings)
        if not rebuild and _quick_unchanged(root, settings, previous):
            return IngestReport(
                files=len(previous.files),
                chunks=previous.chunks,
                personas=previous.personas,
                unchanged=previous.chunks,
                skipped=len([e for e in previous.errors if not e.get("warning")]),
                errors=previous.errors,
                seconds=round(time.perf_counter() - started, 3),
                collection=previous.collection,
                dropped_lines=previous.dropped_lines,
            )
        tree = parse_tree(root, settings)
        report = IngestReport(
            files=len(tree.digests),
            chunks=len(tree.chunks),
            skipped=len({e["file"] for e in tree.errors if not e.get("warning")}),
            errors=tree.errors,
            dropped_lines=tree.dropped_lines,
        )
        if not tree.chunks:
            detail = "; ".join(f"{e['file']}: {e['message']}" for e in tree.errors) or "no note files found"
            raise IngestError(f"nothing could be ingested from {root} ({detail})")
        _write_collection(settings, root, tree, previous, rebuild, report, progress)
        report.seconds = round(time.perf_counter() - started, 3)
        return report
    finally:
        lock.release()


def _write_collection(settings, root, tree, previous, rebuild, report, progress) -> None:
    client = chroma_client(settings)
    old = None
    old_meta: dict[str, dict] = {}
    if previous is not None and not rebuild:
        try:
            old = open_collection(client, previous.collection)
            got = old.get(include=["metadatas"])
            old_meta = dict(zip(got["ids"], got["metadatas"]))
        except Exception:  # the old collection is gone: everything is new
            old, old_meta = None, {}

    new_ids = {c.id for c in tree.chunks}
    keep = [c for c in tree.chunks if c.id in old_meta]
    fresh = [c for c in tree.chunks if c.id not in old_meta]
    gone = Counter(m.get("key") for i, m in old_meta.items() if i not in new_ids)
    came = Counter(f"{c.source}|{c.breadcrumb}" for c in fresh)
    report.unchanged = len(keep)
    report.updated = sum(min(n, gone[key]) for key, n in came.items())  # same note, new text
    report.added = len(fresh) - report.updated
    report.removed = sum(gone.values()) - report.updated

    name = f"{settings.collection_prefix}-{datetime.now(timezone.utc):%Y%m%d%H%M%S}-{uuid.uuid4().hex[:6]}"
    target = open_collection(client, name, create=True)
    try:
        total = len(tree.chunks)
        done = 0
        for i in range(0, len(keep), COPY_BATCH):
            batch = keep[i : i + COPY_BATCH]
            got = old.get(ids=[c.id for c in batch], include=["embeddings"])
            vectors = dict(zip(got["ids"], got["embeddings"]))
            target.add(
                ids=[c.id for c in batch],
                embeddings=[list(vectors[c.id]) for c in batch],
                documents=[c.text for c in batch],
                metadatas=[chunk_metadata(c) for c in batch],
            )
            done += len(batch)
            if progress:
                progress("copy", done, total)
        if fresh:
            from assistant.embeddings import get_embeddings

            embedder = get_embeddings(settings)
            step = max(settings.embed_batch_size * 4, 64)
            for i in range(0, len(fresh), step):
                batch = fresh[i : i + step]
                vectors = embedder.embed_documents([c.embed_text() for c in batch])
                target.add(
                    ids=[c.id for c in batch],
                    embeddings=vectors,
                    documents=[c.text for c in batch],
                    metadatas=[chunk_metadata(c) for c in batch],
                )
                done += len(batch)
                if progress:
                    progress("embed", done, total)
        personas = [c.persona for c in tree.chunks if c.persona is not None]
        manifest = Manifest(
            collection=name,
            notes_path=str(root),
            config_key=config_key(settings),
            files=tree.digests,
            failed_files=tree.failed,
            chunks=len(tree.chunks),
            personas=len(personas),
            ingested_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            errors=tree.errors,
            dropped_lines=tree.dropped_lines,
        )
        catalog_path = Path(settings.store_dir) / manifest.catalog_file
        PersonaCatalog(personas).save(catalog_path)
        write_manifest(settings, manifest)  # the switch: readers now see the new index
    except BaseException:
        try:
            client.delete_collection(name)
        except Exception:
            pass
        raise
    report.personas = len(personas)
    report.collection = name
    _cleanup(settings, client, keep_name=name)


def _cleanup(settings: Settings, client, keep_name: str) -> None:
    """Drop older collections of ours (including leftovers of killed ingests) and their catalogs."""
    prefix = f"{settings.collection_prefix}-"
    for col in client.list_collections():
        col_name = col if isinstance(col, str) else col.name
        if col_name.startswith(prefix) and col_name != keep_name:
            try:
                client.delete_collection(col_name)
            except Exception:
                pass
    for path in Path(settings.store_dir).glob(f"personas-{prefix}*.json"):
        if path.name != f"personas-{keep_name}.json":
            path.unlink(missing_ok=True)
