"""The one record of a note passage: what ingest stores, retrieval returns, answers cite,
the browser shows and exports list. Every front end serialises it with `to_dict`."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any, Literal

from assistant.core.text import compact, is_link_only

PassageKind = Literal["note", "persona"]


def notes_order(passage: Passage) -> tuple:
    """The order of passages in the notes (file, then line), the same in ingest and search."""
    return (passage.source, passage.first_line, passage.last_line, passage.id)


@dataclass(frozen=True)
class Passage:
    """A piece of the notes with where it comes from.

    `body` is the text as the notes have it (outline bullets, links, code); `text` is the
    same passage as a reader or a model needs it (link text kept, URLs and images dropped).
    """

    id: str
    path: tuple[str, ...]
    body: str
    source: str
    first_line: int
    last_line: int
    kind: PassageKind = "note"
    persona: str | None = None  # the persona key ("Name@line") of a persona passage
    score: float = 0.0
    aliases: tuple[str, ...] = ()  # other names of its page (alias, tags): searched, never shown

    @property
    def breadcrumb(self) -> str:
        return " > ".join(self.path)

    @property
    def title(self) -> str:
        return self.path[-1] if self.path else ""

    @property
    def location(self) -> str:
        """`file:first-last`, the citation a reader can open."""
        return f"{self.source}:{self.first_line}-{self.last_line}"

    @cached_property
    def text(self) -> str:
        return compact(self.body)

    @cached_property
    def link_only(self) -> bool:
        """A further-reading list or bare URLs: worth listing, never worth leading an answer."""
        return is_link_only(self.body)

    def with_score(self, score: float) -> Passage:
        return replace(self, score=round(float(score), 5))

    def to_dict(self) -> dict[str, Any]:
        """The shape every front end uses (CLI JSON, UI details, exports)."""
        return {
            "id": self.id,
            "path": list(self.path),
            "breadcrumb": self.breadcrumb,
            "source": self.source,
            "first_line": self.first_line,
            "last_line": self.last_line,
            "kind": self.kind,
            "score": self.score,
            "text": self.text,
        }

    def to_prediction(self) -> dict[str, Any]:
        """The evaluation line's passage: breadcrumb path and text (../shared/eval/README.md)."""
        return {"path": list(self.path), "text": self.text}

    def metadata(self) -> dict[str, Any]:
        """Chroma metadata (flat scalars only)."""
        meta: dict[str, Any] = {
            "path": json.dumps(list(self.path), ensure_ascii=False),
            "breadcrumb": self.breadcrumb,
            "title": self.title,
            "kind": self.kind,
            "source": self.source,
            "first_line": self.first_line,
            "last_line": self.last_line,
            "key": f"{self.source}|{self.breadcrumb}",
        }
        if self.persona is not None:
            meta["persona"] = self.persona
        if self.aliases:
            meta["aliases"] = json.dumps(list(self.aliases), ensure_ascii=False)
        return meta

    @property
    def document(self) -> str:
        """What Chroma stores as the document: breadcrumb line, then the body."""
        return f"{self.breadcrumb}\n{self.body}"

    @classmethod
    def from_store(cls, id: str, document: str, meta: dict[str, Any]) -> Passage:
        body = document.split("\n", 1)[1] if "\n" in document else ""
        return cls(
            id=id,
            path=tuple(json.loads(meta["path"])),
            body=body,
            source=meta["source"],
            first_line=int(meta["first_line"]),
            last_line=int(meta["last_line"]),
            kind=meta.get("kind", "note"),
            persona=meta.get("persona"),
            aliases=tuple(json.loads(meta["aliases"])) if meta.get("aliases") else (),
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Passage:
        """Back from `to_dict` (stored chat details); the shown text stands in for the body."""
        return cls(
            id=str(data.get("id", "")),
            path=tuple(data.get("path") or ()),
            body=str(data.get("text", "")),
            source=str(data.get("source", "")),
            first_line=int(data.get("first_line") or 0),
            last_line=int(data.get("last_line") or 0),
            kind=data.get("kind", "note"),
            score=float(data.get("score") or 0.0),
        )
