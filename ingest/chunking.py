"""Chunking a parsed outline by its structure: one note and what belongs to it.

A chunk is a note with its content, prefixed by its breadcrumb. Notes too large for
the embedding model are split at bullet boundaries; tiny neighbours are merged.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from pathlib import PurePosixPath
from urllib.parse import unquote

from assistant.core.passages import Passage, PassageKind
from assistant.core.personas import Persona, detect_slots, split_title
from assistant.core.text import IMAGE, MD_LINK, URL, outline_syntax

from .outline import Node, clean_title, is_property

CHUNKER_VERSION = "1"


@dataclass
class _Draft:
    """A chunk while the chunker still grows or merges it; `Passage` once done."""

    path: list[str]
    lines: list[tuple[int, str]]
    source: str
    kind: PassageKind = "note"
    persona: Persona | None = None

    def to_passage(self) -> Passage:
        return Passage(
            id="",
            path=tuple(self.path),
            body="\n".join(text for _, text in self.lines),
            source=self.source,
            first_line=min(n for n, _ in self.lines),
            last_line=max(n for n, _ in self.lines),
            kind=self.kind,
            persona=self.persona.key if self.persona else None,
        )


@dataclass
class ChunkedFile:
    passages: list[Passage]
    personas: list[Persona]
    dropped: list[int]  # line numbers knowingly left out (empty bullets, bare images)
    lines: list[list[int]]  # the line numbers each passage holds, row for row (a huge line may repeat)


def embed_text(passage: Passage) -> str:
    """What the model sees: breadcrumb and prose without URLs and markdown noise."""
    body = IMAGE.sub("", outline_syntax(passage.body))
    body = MD_LINK.sub(lambda m: m.group(1), body)
    body = URL.sub("", body)
    body = body.replace("**", "").replace(">>>", "")
    body = re.sub(r"^\s*- ", "", body, flags=re.MULTILINE)
    body = re.sub(r"[ \t]+", " ", body)
    body = re.sub(r"\n\s*\n+", "\n", body).strip()
    also = f" (also: {', '.join(passage.aliases)})" if passage.aliases else ""
    return f"{passage.breadcrumb}{also}\n{body}"


def shorten(title: str, limit: int = 100) -> str:
    """A breadcrumb element short enough to read; the full line stays in the chunk text."""
    return title if len(title) <= limit else title[: limit - 1].rstrip() + "…"


def _size(lines: list[tuple[int, str]]) -> int:
    """Size as a reader or the model sees it: URLs, images and markup do not count."""
    return sum(len(_visible(t)) + 1 for _, t in lines)


def _visible(text: str) -> str:
    if "](" not in text and "http" not in text:
        return text.strip()
    text = IMAGE.sub("", text)
    text = MD_LINK.sub(lambda m: m.group(1), text)
    return URL.sub("", text).strip()


def is_droppable(node: Node) -> bool:
    """Empty bullets, image-only bullets and property blocks (`type:: [[Command]]`, metadata of
    their block) say nothing to answer with; they are knowingly dropped."""
    metadata_only = all(is_property(t) or not t.strip() for _, t in node.body)
    if is_property(node.raw or node.title) and not node.children and metadata_only:
        return True
    if node.children or any(t.strip() for _, t in node.body):
        return False
    t = IMAGE.sub("", node.title).strip()
    return t in ("", "-")


def page_name(stem: str, properties: dict[str, str] | None = None) -> str:
    """A page's shown name: its `title` property, else its file name with the encodings outline
    apps use for characters a file name cannot hold (Logseq: `___` for `/`, `%3F` for `?`)."""
    title = (properties or {}).get("title", "").strip()
    return title or unquote(stem.replace("___", "/"))


def file_path_parts(relpath: str, single_file: bool, properties: dict[str, str] | None = None) -> list[str]:
    if single_file:
        return []
    p = PurePosixPath(relpath)
    return [*p.parent.parts, page_name(p.stem, properties)]


def aliases_of(properties: dict[str, str]) -> tuple[str, ...]:
    """Other names of a page (`alias::`, `aliases:`, `tags::`), for search, never shown as text."""
    found: list[str] = []
    for key in ("alias", "aliases", "tags"):
        for item in re.split(r",\s*", properties.get(key, "")):
            item = item.strip().strip("[]#\"' ").strip()
            if item:
                found.append(item)
    return tuple(dict.fromkeys(found))


class Chunker:
    def __init__(self, max_chars: int = 600, min_chars: int = 160):
        self.max_chars = max_chars
        self.min_chars = min_chars

    def chunk_tree(
        self, root: Node, source: str, top: list[str], aliases: tuple[str, ...] = (), metadata_lines: list[int] = ()
    ) -> ChunkedFile:
        """Passages and personas of one file's tree, and the lines knowingly dropped (the page's
        metadata among them). `aliases`: the page's other names, kept with each of its passages."""
        chunks: list[_Draft] = []
        dropped: list[int] = list(metadata_lines)
        if root.body:
            self._emit_lines(chunks, dropped, top or [PurePosixPath(source).stem], root.body, source)
        for child in root.children:
            self._chunk_node(child, top, source, chunks, dropped)
        drafts = self._merge_tiny(chunks)
        return ChunkedFile(
            passages=[replace(d.to_passage(), aliases=aliases) for d in drafts],
            personas=[d.persona for d in drafts if d.persona is not None],
            dropped=dropped,
            lines=[[n for n, _ in d.lines] for d in drafts],
        )

    # -------------------------------------------------------------- internals
    def _emit_lines(
        self,
        chunks: list[_Draft],
        dropped: list[int],
        path: list[str],
        lines: list[tuple[int, str]],
        source: str,
        kind: PassageKind = "note",
    ) -> None:
        kept = [(n, t) for n, t in lines if t.strip() and not is_property(t)]
        dropped.extend(n for n, t in lines if not t.strip() or is_property(t))
        if kept:
            for piece in self._split_lines(kept):
                chunks.append(_Draft(path=list(path), lines=piece, source=source, kind=kind))

    def _split_lines(self, lines: list[tuple[int, str]]) -> list[list[tuple[int, str]]]:
        """Split a run of lines to fit; a single huge line is cut into pieces of its own."""
        pieces: list[list[tuple[int, str]]] = []
        cur: list[tuple[int, str]] = []
        for n, t in lines:
            if len(_visible(t)) > self.max_chars:
                if cur:
                    pieces.append(cur)
                    cur = []
                step = self.max_chars
                for i in range(0, len(t), step):
                    pieces.append([(n, t[i : i + step])])
                continue
            if cur and _size(cur) + len(_visible(t)) + 1 > self.max_chars:
                pieces.append(cur)
                cur = []
            cur.append((n, t))
        if cur:
            pieces.append(cur)
        return pieces

    def _chunk_node(
        self, node: Node, parent_path: list[str], source: str, chunks: list[_Draft], dropped: list[int]
    ) -> None:
        if is_droppable(node):
            dropped.extend(n for n, _ in node.own_lines)
            return
        persona = self._persona(node, source)
        untitled = node.title.strip() in ("", ".") or node.title.lstrip().startswith("```")
        title = "" if untitled else shorten(clean_title(node.title))
        path = parent_path + [title] if title else list(parent_path)
        if persona is not None:
            lines = [(n, t) for n, t in node.subtree_lines() if t.strip()]
            dropped.extend(n for n, t in node.subtree_lines() if not t.strip())
            chunks.append(_Draft(path=path, lines=lines, source=source, kind="persona", persona=persona))
            return
        whole = node.subtree_lines()
        if _size(whole) <= self.max_chars:
            self._emit_lines(chunks, dropped, path, whole, source)
            return
        group: list[tuple[int, str]] = list(node.own_lines)
        for child in node.children:
            if is_droppable(child):
                dropped.extend(n for n, _ in child.own_lines)
                continue
            sub = child.subtree_lines()
            if self._persona(child, source) is None and not child.children:
                if group and _size(group) + _size(sub) > self.max_chars:
                    self._emit_lines(chunks, dropped, path, group, source)
                    group = []
                group.extend(sub)
            else:
                if group:
                    self._emit_lines(chunks, dropped, path, group, source)
                    group = []
                self._chunk_node(child, path, source, chunks, dropped)
        if group:
            self._emit_lines(chunks, dropped, path, group, source)

    def _persona(self, node: Node, source: str) -> Persona | None:
        split = split_title(node.title)
        if split is None or not node.children:
            return None
        emoji, name = split
        prompt = "\n".join(
            t.strip().removeprefix("- ").strip() for c in node.children for _, t in c.subtree_lines() if t.strip()
        )
        if not prompt:
            return None
        return Persona(
            name=name,
            title=node.title.strip(),
            emoji=emoji,
            prompt=prompt,
            source=source,
            line=node.line,
            slots=detect_slots(name, prompt),
        )

    def _merge_tiny(self, chunks: list[_Draft]) -> list[_Draft]:
        """Merge neighbours when one is tiny and the second sits inside the first's note: a
        short tail joins the note before it, a bare heading (a title and an image) leads into
        the note after it. The merged chunk keeps the first one's breadcrumb."""
        out: list[_Draft] = []
        for chunk in chunks:
            prev = out[-1] if out else None
            if (
                prev is not None
                and prev.kind == chunk.kind == "note"
                and min(_size(prev.lines), _size(chunk.lines)) < self.min_chars
                and chunk.path[: len(prev.path)] == prev.path
                and _size(prev.lines) + _size(chunk.lines) <= self.max_chars
            ):
                prev.lines.extend(chunk.lines)
                continue
            out.append(chunk)
        return out


def assign_ids(passages: list[Passage], model_key: str) -> list[Passage]:
    """Content-derived ids: same note, same text, same model -> same id (so re-ingest skips it)."""
    seen: dict[str, int] = {}
    out = []
    for passage in passages:
        h = hashlib.sha256()
        for part in (CHUNKER_VERSION, model_key, passage.source, passage.breadcrumb, passage.body):
            h.update(part.encode("utf-8", "surrogatepass"))
            h.update(b"\x00")
        base = h.hexdigest()[:32]
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.append(replace(passage, id=base if n == 0 else f"{base}-{n}"))
    return out
