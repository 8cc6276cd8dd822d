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
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from filelock import FileLock, Timeout

import assistant.core.personas
import assistant.core.text
from assistant.core.embeddings import CROSSLINGUAL_KEY, EXPORT_VERSION, model_key
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

from .chunking import CHUNKER_VERSION, Chunker, aliases_of, assign_ids, embed_text, file_path_parts
from .crosslingual import fill_crosslingual
from .outline import parse_outline
from .reading import NoteFileError, discover, file_digest, read_note_file

if TYPE_CHECKING:  # chromadb is imported only when something is written
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

Progress = Callable[[str, int, int], None]
CrosslingualMode = Literal["now", "later"]
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
    searchable_seconds: float = 0.0  # when the notes could be searched in English

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


def _code_digest() -> str:
    """The reading, parsing and chunking code itself, the text functions it shares with search
    (lines are keyed by their place among `units_of`) and the persona catalog's reading of
    prompts (names, slots): a change re-chunks the notes."""
    h = hashlib.sha256()
    here = Path(__file__).parent
    files = [here / n for n in ("reading.py", "outline.py", "chunking.py", "crosslingual.py")]
    for path in (*files, Path(assistant.core.text.__file__), Path(assistant.core.personas.__file__)):
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


def config_key(settings: Settings) -> str:
    raw = (
        f"{CHUNKER_VERSION}|{_code_digest()}|{model_key(settings)}|{CROSSLINGUAL_KEY}|{EXPORT_VERSION}|"
        f"{settings.chunk_max_chars}|{settings.chunk_min_chars}|{settings.follow_symlinks}"
    )
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def parse_tree(root: Path, settings: Settings) -> ParsedTree:
    """Read, repair, parse and chunk every note file; a bad file becomes a problem entry."""
    discovery = discover(root, settings.follow_symlinks)
    found = discovery.files
    single = root.is_file()
    chunker = Chunker(settings.chunk_max_chars, settings.chunk_min_chars)
    passages: list[Passage] = []
    personas: list[Persona] = []
    digests: dict[str, str] = {}
    failed: dict[str, str] = {}
    problems: list[IngestProblem] = [
        IngestProblem(rel, "skipped: a link to a file outside the notes folder (FOLLOW_SYMLINKS=true reads it)")
        for rel in discovery.outside
    ]
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
        top = file_path_parts(rel, single, parsed.properties)
        chunked = chunker.chunk_tree(parsed.root, rel, top, aliases_of(parsed.properties), parsed.metadata_lines)
        if not chunked.passages and parsed.properties:
            problems.append(IngestProblem(rel, "holds only page properties: nothing to search", warning=True))
            failed[rel] = note.sha256
            continue
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
        discovery = discover(root, settings.follow_symlinks)
        digests = {rel: file_digest(path) for path, rel in discovery.files}
    except OSError:
        return False
    return digests == {**manifest.files, **manifest.failed_files}


def run_ingest(
    settings: Settings,
    path: Path | None = None,
    rebuild: bool = False,
    progress: Progress | None = None,
    crosslingual: CrosslingualMode = "now",
) -> IngestReport:
    """Ingest the notes tree at `path` (default NOTES_PATH) into the store. The English index
    first; then, with `crosslingual="now"`, the cross-lingual views (`"later"` leaves them to
    `fill_pending`, e.g. the app's background thread)."""
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
            if crosslingual == "now" and not previous.crosslingual:
                fill_crosslingual(settings, progress)
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
        report.searchable_seconds = round(time.perf_counter() - started, 3)
        if crosslingual == "now":
            fill_crosslingual(settings, progress)
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
    """The English index: passages embedded by the notes model (vectors of unchanged passages
    copied from the previous collection), the persona catalog, and the
    manifest that switches readers to them. The cross-lingual views come after (`crosslingual`)."""
    client = chroma_client(settings)
    old, old_meta = _existing(client, None if rebuild or previous is None else previous.collection)
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
            crosslingual="",  # filled in behind (`crosslingual.fill_crosslingual`)
        )
        store_dir = Path(settings.store_dir)
        PersonaCatalog(tree.personas).save(store_dir / manifest.catalog_file)
        write_manifest(settings, manifest)  # the switch: readers now see the new index
    except BaseException:
        try:
            client.delete_collection(name)
        except Exception:
            pass
        raise
    report.personas = len(tree.personas)
    report.collection = name
    # The previous index stays one ingest longer: a server that loaded it may be answering from
    # it right now (it moves to the new one on its next run); the next ingest drops it.
    kept = {name, f"{name}-xl"}
    if previous is not None:
        kept |= {previous.collection, previous.crosslingual}
    _cleanup(settings, client, keep={n for n in kept if n})


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


def fill_pending(settings: Settings, progress: Progress | None = None, wait: float = 0.0) -> bool:
    """The cross-lingual views of the current index, if an ingest left them to be filled in
    behind (`crosslingual="later"`); under the ingest lock. True when it filled them."""
    lock = FileLock(str(Path(settings.store_dir) / "ingest.lock"))
    try:
        lock.acquire(timeout=wait)
    except Timeout:
        return False  # an ingest is running: it fills them itself
    try:
        return fill_crosslingual(settings, progress) is not None
    finally:
        lock.release()
