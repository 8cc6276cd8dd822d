"""The notes browser's model: the tree of areas and sections, a filter, and a section's text."""

from __future__ import annotations

from dataclasses import dataclass

from .index import Index
from .text import dedent_bullets


@dataclass(frozen=True)
class Section:
    id: str  # the id of its first chunk
    path: tuple[str, ...]
    source: str
    first_line: int
    last_line: int
    text: str  # as the notes have it, shifted left to its own outline level

    @property
    def breadcrumb(self) -> str:
        return " > ".join(self.path)


def sections(index: Index) -> list[Section]:
    """Chunks with the same breadcrumb, in notes order, joined into one section."""
    grouped: dict[tuple[str, tuple[str, ...]], list] = {}
    for chunk in index.chunks:
        grouped.setdefault((chunk.source, tuple(chunk.path)), []).append(chunk)
    out = []
    for (source, path), chunks in grouped.items():
        chunks.sort(key=lambda c: c.first_line)
        out.append(Section(id=chunks[0].id, path=path, source=source, first_line=chunks[0].first_line,
                           last_line=max(c.last_line for c in chunks),
                           text=dedent_bullets("\n".join(c.body for c in chunks))))
    out.sort(key=lambda s: (s.source, s.first_line))
    return out


def areas(all_sections: list[Section]) -> list[str]:
    return list(dict.fromkeys(s.path[0] for s in all_sections if s.path))


def filter_sections(all_sections: list[Section], text: str = "", area: str | None = None) -> list[Section]:
    """Sections whose breadcrumb or text holds every word of `text` (case-insensitive)."""
    words = text.casefold().split()
    out = []
    for s in all_sections:
        if area and (not s.path or s.path[0] != area):
            continue
        hay = (s.breadcrumb + "\n" + s.text).casefold()
        if all(w in hay for w in words):
            out.append(s)
    return out


def section_of_chunk(all_sections: list[Section], index: Index, chunk_id: str) -> Section | None:
    """The section a retrieved passage belongs to (for "open in the notes browser")."""
    i = index.by_id.get(chunk_id)
    if i is None:
        return None
    chunk = index.chunks[i]
    for s in all_sections:
        if s.source == chunk.source and s.path == tuple(chunk.path):
            return s
    return None
