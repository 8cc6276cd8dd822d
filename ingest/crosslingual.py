"""The cross-lingual views, filled in behind the English index.

The notes become searchable in English as soon as the passages are embedded by the notes
model. Then multilingual-e5 embeds, for questions and requests in any language:
- every passage (its last titles and its text) and every persona prompt: "passage" views;
- every persona's name, as a query meets a query: "name" views;
- every line of a note passage (a bullet, a sentence line, a code block): "line" views, from
  which answers pick what answers the question.

Vectors come from the cache by content first (`VectorCache`): a text embedded once, by any
ingest of any store, is not embedded again. A new collection is written, and the manifest
names it in one atomic swap (only if the index it belongs to is still the current one).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from assistant.core.passages import Passage, notes_order
from assistant.core.personas import PersonaCatalog
from assistant.core.settings import Settings
from assistant.core.text import units_of
from assistant.core.vectorstore import (
    Manifest,
    chroma_client,
    open_collection,
    read_manifest,
    write_manifest,
)

ViewKind = Literal["passage", "name", "line"]
Progress = Callable[[str, int, int], None]
EMBED_BATCH = 32
WRITE_BATCH = 512
VIEW_TEXT_MAX = 2000  # characters of a passage the cross-lingual model reads (its window is 512 tokens)


@dataclass(frozen=True)
class View:
    """One text the cross-lingual model embeds, and what it stands for."""

    id: str
    kind: ViewKind
    text: str
    passage: str = ""  # the passage it belongs to (passage and line views)
    persona: str = ""  # the persona key (name views, and a persona's passage view)
    n: int = 0  # the line's place among its passage's units

    @property
    def as_query(self) -> bool:
        """Names meet the head of a request, query to query; the rest are passages."""
        return self.kind == "name"

    def metadata(self) -> dict:
        return {"kind": self.kind, "passage": self.passage, "persona": self.persona, "n": self.n}


def passage_view_text(passage: Passage) -> str:
    crumb = " > ".join(passage.path[-3:])
    return f"{crumb}\n{passage.text}"[:VIEW_TEXT_MAX]


def views_of(passages: list[Passage], catalog: PersonaCatalog) -> list[View]:
    # A persona's passage is read as `Persona.crosslingual_text`, the text a persona of your
    # own is embedded with too: both kinds are compared on the same footing.
    personas = {p.key: p for p in catalog.personas}
    views = [
        View(
            f"p:{p.id}",
            "passage",
            personas[p.persona].crosslingual_text if p.persona in personas else passage_view_text(p),
            passage=p.id,
            persona=p.persona or "",
        )
        for p in passages
    ]
    views += [View(f"n:{p.key}", "name", p.name, persona=p.key) for p in catalog.personas]
    for p in passages:
        if p.kind == "note":
            views += [View(f"l:{p.id}:{n}", "line", u.plain, passage=p.id, n=n) for n, u in enumerate(units_of(p.text))]
    return views


def embed_views(views: list[View], settings: Settings, progress: Progress | None = None) -> np.ndarray:
    """Vectors row for row with `views`, from the cache where it has them."""
    from assistant.core.embeddings import DIMENSIONS, crosslingual_cache, get_crosslingual

    cache = crosslingual_cache(settings)
    keys = [cache.key("query" if v.as_query else "passage", v.text) for v in views]
    found = cache.get(list(dict.fromkeys(keys)))
    out = np.zeros((len(views), DIMENSIONS), dtype=np.float32)
    todo: dict[str, tuple[bool, str]] = {}
    for i, (view, key) in enumerate(zip(views, keys)):
        if key in found:
            out[i] = found[key]
        else:
            todo[key] = (view.as_query, view.text)
    counts = Counter(keys)
    done = len(views) - sum(1 for k in keys if k not in found)
    if progress:
        progress("cross-lingual", done, len(views))
    if todo:
        model = get_crosslingual()
        items = list(todo.items())
        fresh: dict[str, np.ndarray] = {}
        for start in range(0, len(items), EMBED_BATCH):
            batch = items[start : start + EMBED_BATCH]
            queries = [(k, t) for k, (q, t) in batch if q]
            passages = [(k, t) for k, (q, t) in batch if not q]
            if queries:
                fresh.update(zip([k for k, _ in queries], model.embed_queries([t for _, t in queries])))
            if passages:
                fresh.update(zip([k for k, _ in passages], model.embed_passages([t for _, t in passages])))
            cache.put({k: fresh[k] for k, _ in batch})
            done += sum(counts[k] for k, _ in batch)
            if progress:
                progress("cross-lingual", min(done, len(views)), len(views))
        for i, key in enumerate(keys):
            if key in fresh:
                out[i] = fresh[key]
    return out


def fill_crosslingual(settings: Settings, progress: Progress | None = None) -> Manifest | None:
    """Embed the current index's cross-lingual views and name their collection in the manifest.
    Returns the new manifest, or None when there is nothing to do (done already, or the index
    changed meanwhile: the next ingest's own fill does it). The caller holds the ingest lock."""
    manifest = read_manifest(settings)
    if manifest is None or manifest.crosslingual:
        return None
    client = chroma_client(settings)
    got = open_collection(client, manifest.collection).get(include=["documents", "metadatas"])
    passages = [Passage.from_store(i, d, m) for i, d, m in zip(got["ids"], got["documents"], got["metadatas"])]
    passages.sort(key=notes_order)
    catalog = PersonaCatalog.load(Path(settings.store_dir) / manifest.catalog_file)
    views = views_of(passages, catalog)
    vectors = embed_views(views, settings, progress)
    name = f"{manifest.collection}-xl"
    try:
        client.delete_collection(name)  # a fill that died half way
    except Exception:
        pass
    target = open_collection(client, name, create=True)
    for start in range(0, len(views), WRITE_BATCH):
        batch = views[start : start + WRITE_BATCH]
        target.add(
            ids=[v.id for v in batch],
            embeddings=vectors[start : start + WRITE_BATCH].tolist(),
            metadatas=[v.metadata() for v in batch],
        )
    current = read_manifest(settings)
    if current is None or current.collection != manifest.collection:
        client.delete_collection(name)
        return None
    current.crosslingual = name
    write_manifest(settings, current)  # the switch: readers now search across languages
    return current
