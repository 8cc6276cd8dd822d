"""The scale benchmark's store: 50,000 chunks (`scale_bench.py` measures it).

The notes tree is the bundled notes and the Logseq graph plus generated outline notes up to
SCALE_CHUNKS chunks (`scale_generator.py`). The store is built once and cached in a folder keyed
by a hash of the generator (scale_generator.py), of the ingest code (ingest/*.py,
assistant/core/*.py) and of the two source trees; any change builds a new one (older folders
are removed). This file, the builder, is not part of the key. The English index first
(`crosslingual="later"`), then the cross-lingual views (`fill_pending`), each stage timed in
build.json, resumable: a killed build starts again at its stage (e5 vectors already made come
from the folder's own vector cache).

    python bench/scale_notes.py build     # build (or finish) the store for the current code
    python bench/scale_notes.py key       # the current key and folder
    python bench/scale_notes.py status    # what build.json says

Environment: SCALE_CHUNKS (default 50000), BENCH_CACHE_DIR (default
~/.cache/notes-assistant/bench).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import sys
import time
from pathlib import Path

import scale_generator
from scale_generator import PROJECT, SEED, SOURCES, make_tree

sys.path.insert(0, str(PROJECT))

TARGET = int(os.environ.get("SCALE_CHUNKS", "50000"))


# ------------------------------------------------------------------------------ cache key
def cache_root() -> Path:
    from assistant.core.settings import user_cache_dir

    return Path(os.environ.get("BENCH_CACHE_DIR") or user_cache_dir() / "bench")


def scale_key() -> str:
    """The generator, the ingest code and the source trees, hashed: the store's name."""
    digest = hashlib.sha256(f"{TARGET}|{SEED}".encode())
    files = [Path(scale_generator.__file__)]
    files += sorted((PROJECT / "ingest").glob("*.py")) + sorted((PROJECT / "assistant" / "core").glob("*.py"))
    for root in SOURCES.values():
        files += sorted(p for p in root.rglob("*") if p.is_file())
    for path in files:
        digest.update(str(path.relative_to(PROJECT)).encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def scale_dir(key: str | None = None) -> Path:
    return cache_root() / f"scale-{key or scale_key()}"


def settings_for(folder: Path):  # noqa: ANN201
    from assistant.core.settings import Settings

    return Settings(
        _env_file=None,
        store_dir=folder / "store",
        notes_path=folder / "tree",
        model_cache_dir=folder / "model-cache",
        llm_provider="none",
    )


# ------------------------------------------------------------------------------ the store
GET_PAGE = 10_000
_shimmed = False


def too_many_variables(exc: BaseException) -> bool:
    return "too many SQL variables" in str(exc)


def install_paged_get() -> None:
    """A bench-side workaround, not the product: Chroma (1.5.9, embedded) fails a `get` of more
    than 32,766 records at once ("too many SQL variables", SQLite's limit), and the index load
    and the cross-lingual fill each read a whole collection in one `get`. This pages such a
    `get` (no ids, no limit) by GET_PAGE records. A no-op once the product pages its reads."""
    global _shimmed
    if _shimmed:
        return
    import numpy as np
    from chromadb.api.models.Collection import Collection

    original = Collection.get

    def get(self, ids=None, where=None, limit=None, offset=None, where_document=None, include=None, **kw):  # noqa: ANN001, ANN202
        include = include if include is not None else ["metadatas", "documents"]
        if ids is not None or limit is not None or offset is not None:
            return original(self, ids, where, limit, offset, where_document, include, **kw)
        pages, start = [], 0
        while True:
            page = original(self, None, where, GET_PAGE, start, where_document, include, **kw)
            pages.append(page)
            start += len(page["ids"])
            if len(page["ids"]) < GET_PAGE:
                break
        merged = dict(pages[0])
        for key, value in merged.items():
            parts = [p[key] for p in pages]
            if isinstance(value, list):
                merged[key] = [x for part in parts for x in part]
            elif isinstance(value, np.ndarray):
                merged[key] = np.concatenate([np.asarray(part) for part in parts if len(part)] or [value])
        return merged

    Collection.get = get
    _shimmed = True


def _seed_model_cache(settings) -> None:  # noqa: ANN001
    """The user's ONNX exports (linked: the one-time export is not part of this) and a copy
    of their e5 vector cache (so the bundled notes' views are not embedded again)."""
    from assistant.core.settings import user_cache_dir

    cache = Path(settings.model_cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    user = Path(os.environ.get("MODEL_CACHE_DIR") or user_cache_dir())
    if not (cache / "onnx").exists() and (user / "onnx").exists():
        (cache / "onnx").symlink_to((user / "onnx").resolve(), target_is_directory=True)
    vectors = user / "vectors.sqlite3"
    if not (cache / "vectors.sqlite3").exists() and vectors.exists():
        src, dst = sqlite3.connect(vectors), sqlite3.connect(cache / "vectors.sqlite3")
        with dst:
            src.backup(dst)
        src.close()
        dst.close()


class Rate:
    """A progress callback that logs the rate every `every` seconds."""

    def __init__(self, log, every: float = 30.0):  # noqa: ANN001
        self.log, self.every = log, every
        self.started = time.perf_counter()
        self.last = 0.0
        self.first: dict[str, tuple[float, int]] = {}
        self.latest: dict[str, tuple[int, int]] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.perf_counter()
        self.first.setdefault(stage, (now, done))
        self.latest[stage] = (done, total)
        if now - self.last >= self.every:
            self.last = now
            t0, d0 = self.first[stage]
            rate = (done - d0) / max(now - t0, 1e-9)
            self.log(f"{stage}: {done:,}/{total:,} ({rate:.1f}/s, {now - self.started:.0f} s)")

    def rate(self, stage: str) -> float | None:
        if stage not in self.first:
            return None
        t0, d0 = self.first[stage]
        return round((self.latest[stage][0] - d0) / max(time.perf_counter() - t0, 1e-9), 2)


def status(folder: Path) -> dict:
    path = folder / "build.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _save(folder: Path, data: dict) -> None:
    tmp = folder / "build.json.tmp"
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(folder / "build.json")


def build(key: str | None = None, log=None) -> Path:  # noqa: ANN001
    """Build, or finish, the store for the current code. Returns its folder."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    log = log or (lambda m: print(f"[scale {time.strftime('%H:%M:%S')}] {m}", file=sys.stderr, flush=True))
    key = key or scale_key()
    folder = scale_dir(key)
    folder.mkdir(parents=True, exist_ok=True)
    for other in cache_root().glob("scale-*"):  # stale keys: another generator or ingest code
        if other != folder and other.is_dir() and not os.environ.get("BENCH_KEEP_OLD_SCALE"):
            log(f"removing the stale store {other}")
            shutil.rmtree(other, ignore_errors=True)
    settings = settings_for(folder)
    data = status(folder)
    data.setdefault("key", key)
    if data.get("complete"):
        return folder
    t = time.perf_counter()
    data["tree"] = make_tree(folder, settings, TARGET, log)
    data.setdefault("tree_seconds", round(time.perf_counter() - t, 1))
    _save(folder, data)
    _seed_model_cache(settings)

    from ingest.pipeline import fill_pending, run_ingest

    if not data.get("english"):
        rate = Rate(log)
        log(f"English index of {data['tree']['chunks']:,} chunks")
        report = run_ingest(settings, crosslingual="later", progress=rate)
        data["english"] = {
            "seconds": report.seconds,
            "searchable_seconds": report.searchable_seconds,
            "chunks": report.chunks,
            "embed_rate_per_s": rate.rate("embed"),
        }
        _save(folder, data)
        log(f"English index: {data['english']}")
    if not data.get("crosslingual", {}).get("ready"):
        install_paged_get()  # fill_crosslingual reads the whole collection in one get
        data["paged_get_shim"] = True
        data["omp_wait_policy"] = os.environ.get("OMP_WAIT_POLICY", "")
        rate = Rate(log)
        t = time.perf_counter()
        log("cross-lingual views")
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a killed build still saves how far it got
        try:
            filled = fill_pending(settings, rate, wait=60)
        except BaseException:
            done, total = rate.latest.get("cross-lingual", (0, 0))
            data["crosslingual_partial"] = {
                "views_done_including_cached": done,
                "views": total,
                "rate_per_s": rate.rate("cross-lingual"),
                "stopped_at": time.strftime("%Y-%m-%d %H:%M:%S"),
            }
            _save(folder, data)
            raise
        from assistant.core.vectorstore import read_manifest

        manifest = read_manifest(settings)
        data["crosslingual"] = {
            "seconds": round(time.perf_counter() - t, 1),
            "filled_now": filled,
            "ready": bool(manifest and manifest.crosslingual),
            "views": rate.latest.get("cross-lingual", (0, 0))[1],
            "rate_per_s_including_cached": rate.rate("cross-lingual"),
        }
        _save(folder, data)
        log(f"cross-lingual views: {data['crosslingual']}")
    data["complete"] = bool(data["crosslingual"]["ready"])  # False: an ingest held the lock; run again
    _save(folder, data)
    return folder


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "status"
    if command == "build":
        print(json.dumps(status(build()), indent=1))
    elif command == "key":
        key = scale_key()
        print(json.dumps({"key": key, "folder": str(scale_dir(key))}))
    elif command == "status":
        print(json.dumps(status(scale_dir()), indent=1))
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
