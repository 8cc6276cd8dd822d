"""The ingest: notes tree -> passages -> new Chroma collections, swapped in atomically.

Two collections per ingest: the passages with the notes model's vectors, and the
cross-lingual views (each persona's name and opening, each section title) with the
cross-lingual model's vectors. Incremental by content: ids hash what was embedded and by
which model, so a re-ingest copies the vectors of unchanged items from the previous
collections and embeds only what is new. When no file changed, nothing heavy is imported.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from filelock import FileLock, Timeout

from assistant.core.embeddings import CROSSLINGUAL_KEY, model_key
from assistant.core.passages import Passage
from assistant.core.personas import Persona, PersonaCatalog
from assistant.core.settings import Settings
from assistant.core.vectorstore import (
    IngestProblem,
    Manifest,
    chroma_client,
    open_collection,
    read_manifest,
    write_manifest,
)

from .chunking import CHUNKER_VERSION, Chunker, assign_ids, embed_text, file_path_parts
from .outline import parse_outline
from .reading import NoteFileError, discover, file_digest, read_note_file

if TYPE_CHECKING:  # chromadb is imported only when something is written
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

Progress = Callable[[str, int, int], None]
ViewKind = Literal["persona", "persona_name", "title"]
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
    problems: list[IngestProblem] = field(default_factory=list)
    seconds: float = 0.0
    collection: str = ""
    dropped_lines: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ParsedTree:
    passages: list[Passage]
    personas: list[Persona]
    digests: dict[str, str]
    failed: dict[str, str]
    problems: list[IngestProblem]
    dropped_lines: int


@dataclass(frozen=True)
class View:
    """One text the cross-lingual model embeds: a persona's prompt or name, a section title."""

    id: str
    kind: ViewKind
    text: str
    persona: str = ""

    @property
    def as_query(self) -> bool:
        """Names meet the head of a request, query to query; the rest are passages."""
        return self.kind == "persona_name"

    def metadata(self) -> dict:
        return {"kind": self.kind, "persona": self.persona, "title": self.text if self.kind == "title" else ""}


def _code_digest() -> str:
    """The reading, parsing and chunking code itself: a change to it re-chunks the notes."""
    h = hashlib.sha256()
    for name in ("reading.py", "outline.py", "chunking.py"):
        h.update((Path(__file__).parent / name).read_bytes())
    return h.hexdigest()[:12]


def config_key(settings: Settings) -> str:
    raw = (
        f"{CHUNKER_VERSION}|{_code_digest()}|{model_key(settings)}|{CROSSLINGUAL_KEY}|"
        f"{settings.chunk_max_chars}|{settings.chunk_min_chars}"
    )
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def parse_tree(root: Path, settings: Settings) -> ParsedTree:
    """Read, repair, parse and chunk every note file; a bad file becomes a problem entry."""
    found = discover(root)
    single = root.is_file()
    chunker = Chunker(settings.chunk_max_chars, settings.chunk_min_chars)
    passages: list[Passage] = []
    personas: list[Persona] = []
    digests: dict[str, str] = {}
    failed: dict[str, str] = {}
    problems: list[IngestProblem] = []
    dropped = 0
    for path, rel in found:
        try:
            note = read_note_file(path, rel)
        except NoteFileError as exc:
            problems.append(IngestProblem(rel, str(exc)))
            failed[rel] = _safe_digest(path)
            continue
        parsed = parse_outline(note.lines)
        problems.extend(replace(w, file=rel) for w in parsed.warnings)
        chunked = chunker.chunk_tree(parsed.root, rel, file_path_parts(rel, single))
        if not chunked.passages:
            problems.append(IngestProblem(rel, "no notes found in file"))
            failed[rel] = note.sha256
            continue
        digests[rel] = note.sha256
        passages.extend(chunked.passages)
        personas.extend(chunked.personas)
        dropped += len(chunked.dropped)
    return ParsedTree(
        passages=assign_ids(passages, model_key(settings)),
        personas=personas,
        digests=digests,
        failed=failed,
        problems=problems,
        dropped_lines=dropped,
    )


def crosslingual_views(passages: list[Passage], personas: list[Persona]) -> list[View]:
    """Persona prompts and names, and every distinct section title (the titles of sections
    with sub-sections of their own too), with content-derived ids."""

    def vid(kind: str, text: str) -> str:
        return hashlib.sha256(f"{CROSSLINGUAL_KEY}\x00{kind}\x00{text}".encode("utf-8", "surrogatepass")).hexdigest()[
            :32
        ]

    views = [
        View(vid("persona", f"{p.key}\x00{p.crosslingual_text}"), "persona", p.crosslingual_text, p.key)
        for p in personas
    ]
    views += [View(vid("persona_name", f"{p.key}\x00{p.name}"), "persona_name", p.name, p.key) for p in personas]
    titles = dict.fromkeys(t for p in passages if p.kind == "note" for t in p.path if t)
    return views + [View(vid("title", t), "title", t) for t in titles]


def _safe_digest(path: Path) -> str:
    try:
        return file_digest(path)
    except OSError:
        return ""


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
        raise IngestError(f"notes path does not exist: {root} (set NOTES_PATH to a notes file or folder)")
    store_dir = Path(settings.store_dir)
    store_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(store_dir / "ingest.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout as exc:
        raise IngestError(
            f"another ingest is running on {store_dir} (lock {lock.lock_file}); try again when it ends"
        ) from exc
    try:
        previous = read_manifest(settings)
        if not rebuild and _quick_unchanged(root, settings, previous):
            return IngestReport(
                files=len(previous.files),
                chunks=previous.chunks,
                personas=previous.personas,
                unchanged=previous.chunks,
                skipped=len({p.file for p in previous.problems if not p.warning}),
                problems=previous.problems,
                seconds=round(time.perf_counter() - started, 3),
                collection=previous.collection,
                dropped_lines=previous.dropped_lines,
            )
        tree = parse_tree(root, settings)
        report = IngestReport(
            files=len(tree.digests),
            chunks=len(tree.passages),
            skipped=len({p.file for p in tree.problems if not p.warning}),
            problems=tree.problems,
            dropped_lines=tree.dropped_lines,
        )
        if not tree.passages:
            detail = "; ".join(f"{p.file}: {p.message}" for p in tree.problems) or "no note files found"
            raise IngestError(f"nothing could be ingested from {root} ({detail})")
        _write_collections(settings, root, tree, previous, rebuild, report, progress)
        report.seconds = round(time.perf_counter() - started, 3)
        return report
    finally:
        lock.release()


def _existing(client: ClientAPI, name: str | None) -> tuple[Collection | None, dict[str, dict]]:
    """The previous collection and its metadata by id; nothing when it is gone."""
    if not name:
        return None, {}
    try:
        col = open_collection(client, name)
        got = col.get(include=["metadatas"])
        return col, dict(zip(got["ids"], got["metadatas"]))
    except Exception:  # the old collection is gone: everything is new
        return None, {}


def _copy(old: Collection, target: Collection, ids: list[str], documents: list[str], metadatas: list[dict]) -> None:
    for i in range(0, len(ids), COPY_BATCH):
        batch = ids[i : i + COPY_BATCH]
        got = old.get(ids=batch, include=["embeddings"])
        vectors = dict(zip(got["ids"], got["embeddings"]))
        target.add(
            ids=batch,
            embeddings=[list(vectors[x]) for x in batch],
            documents=documents[i : i + COPY_BATCH],
            metadatas=metadatas[i : i + COPY_BATCH],
        )


def _write_collections(
    settings: Settings,
    root: Path,
    tree: ParsedTree,
    previous: Manifest | None,
    rebuild: bool,
    report: IngestReport,
    progress: Progress | None,
) -> None:
    client = chroma_client(settings)
    old, old_meta = _existing(client, None if rebuild or previous is None else previous.collection)
    old_xl, old_xl_meta = _existing(client, None if rebuild or previous is None else previous.crosslingual)

    # The cross-lingual model needs no torch: it embeds its new views on one thread while the
    # notes model is imported and loaded on the other (an import uses one core for seconds).
    views = crosslingual_views(tree.passages, tree.personas)
    fresh_views = [v for v in views if v.id not in old_xl_meta]
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="crosslingual")
    pending: Future | None = pool.submit(_embed_views, fresh_views) if fresh_views else None

    new_ids = {p.id for p in tree.passages}
    keep = [p for p in tree.passages if p.id in old_meta]
    fresh = [p for p in tree.passages if p.id not in old_meta]
    gone = Counter(m.get("key") for i, m in old_meta.items() if i not in new_ids)
    came = Counter(f"{p.source}|{p.breadcrumb}" for p in fresh)
    report.unchanged = len(keep)
    report.updated = sum(min(n, gone[key]) for key, n in came.items())  # same note, new text
    report.added = len(fresh) - report.updated
    report.removed = sum(gone.values()) - report.updated

    name = f"{settings.collection_prefix}-{datetime.now(UTC):%Y%m%d%H%M%S}-{uuid.uuid4().hex[:6]}"
    xl_name = f"{name}-xl"
    target = open_collection(client, name, create=True)
    try:
        total = len(tree.passages)
        if keep:
            _copy(old, target, [p.id for p in keep], [p.document for p in keep], [p.metadata() for p in keep])
            if progress:
                progress("copy", len(keep), total)
        done = len(keep)
        if fresh:
            from assistant.core.embeddings import get_embeddings

            embedder = get_embeddings(settings)
            step = max(settings.embed_batch_size * 4, 64)
            for i in range(0, len(fresh), step):
                batch = fresh[i : i + step]
                target.add(
                    ids=[p.id for p in batch],
                    embeddings=embedder.embed_documents([embed_text(p) for p in batch]),
                    documents=[p.document for p in batch],
                    metadatas=[p.metadata() for p in batch],
                )
                done += len(batch)
                if progress:
                    progress("embed", done, total)
        xl = open_collection(client, xl_name, create=True)
        kept_views = [v for v in views if v.id in old_xl_meta]
        if kept_views:
            _copy(
                old_xl, xl, [v.id for v in kept_views], [v.text for v in kept_views], [v.metadata() for v in kept_views]
            )
        if pending is not None:
            if progress:
                progress("cross-lingual", total, total)
            vectors = pending.result()
            for i in range(0, len(fresh_views), COPY_BATCH):
                batch = fresh_views[i : i + COPY_BATCH]
                xl.add(
                    ids=[v.id for v in batch],
                    embeddings=vectors[i : i + COPY_BATCH].tolist(),
                    documents=[v.text for v in batch],
                    metadatas=[v.metadata() for v in batch],
                )
        manifest = Manifest(
            collection=name,
            notes_path=str(root),
            config_key=config_key(settings),
            files=tree.digests,
            failed_files=tree.failed,
            chunks=len(tree.passages),
            personas=len(tree.personas),
            ingested_at=datetime.now(UTC).isoformat(timespec="seconds"),
            problems=tree.problems,
            dropped_lines=tree.dropped_lines,
            crosslingual=xl_name,
        )
        PersonaCatalog(tree.personas).save(Path(settings.store_dir) / manifest.catalog_file)
        write_manifest(settings, manifest)  # the switch: readers now see the new index
    except BaseException:
        for col_name in (name, xl_name):
            try:
                client.delete_collection(col_name)
            except Exception:
                pass
        raise
    finally:
        pool.shutdown(wait=True)
    report.personas = len(tree.personas)
    report.collection = name
    # The previous index stays one ingest longer: a server that loaded it may be answering from
    # it right now (it moves to the new one on its next run); the next ingest drops it.
    previous_names = {previous.collection, previous.crosslingual} if previous is not None else set()
    _cleanup(settings, client, keep={name, xl_name} | {n for n in previous_names if n})


def _embed_views(views: list[View]):
    """Vectors row for row with `views`: names as queries, the rest as passages."""
    import numpy as np

    from assistant.core.embeddings import get_crosslingual

    model = get_crosslingual()
    queries = [i for i, v in enumerate(views) if v.as_query]
    passages = [i for i, v in enumerate(views) if not v.as_query]
    out = np.zeros((len(views), 384), dtype=np.float32)
    if queries:
        out[queries] = model.embed_queries([views[i].text for i in queries])
    if passages:
        out[passages] = model.embed_passages([views[i].text for i in passages])
    return out


def _cleanup(settings: Settings, client: ClientAPI, keep: set[str]) -> None:
    """Drop older collections of ours (including leftovers of killed ingests) and their catalogs."""
    prefix = f"{settings.collection_prefix}-"
    for col in client.list_collections():
        col_name = col if isinstance(col, str) else col.name
        if col_name.startswith(prefix) and col_name not in keep:
            try:
                client.delete_collection(col_name)
            except Exception:
                pass
    for path in Path(settings.store_dir).glob(f"personas-{prefix}*.json"):
        if path.name[len("personas-") : -len(".json")] not in keep:
            path.unlink(missing_ok=True)
