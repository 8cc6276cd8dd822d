"""The notes as a tree of sections: every breadcrumb is a section, holding its own passages
and its sub-sections in notes order. Answers grow from a passage to its section
(small-to-big); the notes browser shows the tree.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from assistant.core.passages import Passage
from assistant.core.text import dedent_bullets


@dataclass
class Section:
    source: str
    path: tuple[str, ...]
    rows: list[int] = field(default_factory=list)  # its own passages, rows of the index, notes order
    children: list[Section] = field(default_factory=list)
    parent: Section | None = field(default=None, repr=False)

    @property
    def title(self) -> str:
        return self.path[-1] if self.path else self.source

    @property
    def breadcrumb(self) -> str:
        return " > ".join(self.path)

    @property
    def key(self) -> str:
        return f"{self.source}|{self.breadcrumb}"

    @property
    def depth(self) -> int:
        return len(self.path)

    def walk(self) -> Iterator[Section]:
        yield self
        for child in self.children:
            yield from child.walk()

    def subtree_rows(self) -> list[int]:
        return [r for s in self.walk() for r in s.rows]

    def ancestors(self) -> list[Section]:
        """From this section up to the file's root, this one first."""
        out, node = [], self
        while node is not None:
            out.append(node)
            node = node.parent
        return out


class SectionTree:
    """Sections of every file, built from the index's passages (notes order)."""

    def __init__(self, passages: list[Passage]):
        self.passages = passages
        self.roots: list[Section] = []
        self.by_key: dict[tuple[str, tuple[str, ...]], Section] = {}
        self.of_row: dict[int, Section] = {}
        for row, p in enumerate(passages):
            if p.kind != "note":
                continue
            section = self._ensure(p.source, p.path)
            section.rows.append(row)
            self.of_row[row] = section

    def _ensure(self, source: str, path: tuple[str, ...]) -> Section:
        key = (source, path)
        found = self.by_key.get(key)
        if found is not None:
            return found
        section = Section(source=source, path=path)
        self.by_key[key] = section
        if path:
            parent = self._ensure(source, path[:-1])
            section.parent = parent
            parent.children.append(section)
        else:
            self.roots.append(section)
        return section

    def section_of(self, row: int) -> Section | None:
        return self.of_row.get(row)

    def find(self, key: str) -> Section | None:
        source, _, crumb = key.partition("|")
        return self.by_key.get((source, tuple(crumb.split(" > ")) if crumb else ()))

    def all(self) -> list[Section]:
        return [s for root in self.roots for s in root.walk()]

    def text(self, section: Section, whole: bool = True) -> str:
        """A section as the notes have it (its sub-sections too when `whole`), shifted left."""
        rows = sorted(
            section.subtree_rows() if whole else section.rows,
            key=lambda r: (self.passages[r].source, self.passages[r].first_line),
        )
        return dedent_bullets("\n".join(self.passages[r].body for r in rows))

    def span(self, section: Section) -> tuple[int, int]:
        rows = section.subtree_rows()
        if not rows:
            return 0, 0
        return (min(self.passages[r].first_line for r in rows), max(self.passages[r].last_line for r in rows))
