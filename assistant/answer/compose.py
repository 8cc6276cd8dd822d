"""Extractive answers: every word from the notes, only the labels are ours.

The retriever's best passages, as many as the answer's budget could quote (a few), are cut into
units: lines (a bullet, a line of prose, a table row) and whole code blocks. Each unit is
weighed by how close it is to the question plus how close its passage is, under the
cross-lingual model (so a question in any language picks the English line that answers it)
and, for a question in the notes' language, the notes model too. The closest units fill the
budget; they are shown in notes order, grouped by passage, each group cited, a bullet that
introduces picked sub-points kept above them, so nested lists stay nested.

Filler never takes room: a line the notes repeat across sections as a template ("Refer to the
… section", "Outline a high level design …") and that holds no number carries no fact of its
own. Link lists are listed as further reading, with their links.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass, field, replace

import numpy as np
from langchain_core.documents import Document

from assistant.core.passages import Passage
from assistant.core.personas import normalize_name
from assistant.core.text import (
    BULLET_MARK,
    MD_LINK,
    URL,
    WORD,
    Unit,
    dedent_bullets,
    outline_markdown,
    outline_syntax,
    units_of,
)
from assistant.search.index import MENTION_MIN_CHARS, Index
from assistant.search.retrieval import Analysis, Message, SearchPipeline

LABEL_CHARS = 8  # what a group's "**label** [n]" line adds besides the label itself
LABEL_MAX_CHARS = 60  # longer titles are sentences: cut at a word
TEMPLATE_SECTIONS = 3  # a line repeated in this many sections is a template (two may be chance)
FURTHER_READING_MAX = 3
# Closeness (both models added) within which another topic is as much asked about as the lead's.
# Measured on the pooled notes questions: 0.1 keeps single-question key facts within half a point
# and cuts quotes from a chat's previous topic by a third.
TOPIC_MARGIN = 0.1
LIST_WHOLE_MAX = 8  # a list of this many items or fewer is quoted whole
LIST_OVERRUN = 0.5  # ... and may run this share past the budget to be
QUOTED_MIN_WORDS = 3
# What a chat already quoted counts this much less (closeness, both models): a fresh line about as
# close goes first, and a line the follow-up asks for again ("and its disadvantages?" after an
# answer that listed them) still comes.
SAID_PENALTY = 0.1  # shorter units ("Disadvantages:") name a part rather than quote it
HEADING = re.compile(r"^(\s*(?:-\s+)?)#{1,6}\s+(.*)$")
CAPTION = re.compile(r"^\s*(?:-\s*)?_{2}[^_].*_{2}\s*$")  # a line wholly in __…__: a figure's caption
BOLD_LABEL = re.compile(r"^\s*(?:-\s+)?\*\*[^*]{1,80}\*\*\s*:?\s*$")
SOURCES_TITLE = re.compile(r"^\W*(?:sources?(?:\(s\))?|references?)(?:\s+and\s+further\s+reading)?\W*", re.IGNORECASE)
LINK_WORD = re.compile(r"^\W*link\W*$", re.IGNORECASE)  # the export's "[Link](…)" anchors name nothing


NO_TEXT = "Your notes name this topic, but hold no text on it beyond headings."


@dataclass
class Composition:
    text: str
    sources: list[Passage] = field(default_factory=list)  # [n] -> sources[n-1]
    further: list[Passage] = field(default_factory=list)


@dataclass(frozen=True)
class Candidate:
    row: int  # the passage's row in the index
    n: int  # the unit's place in the passage
    unit: Unit


def template_of(plain: str, title_words: frozenset[str]) -> tuple[str, ...]:
    """A line without the words of section titles: what stays the same when a template is
    filled in for another section ("refer to the … section")."""
    return tuple(w for w in WORD.findall(plain.casefold()) if w not in title_words)


class Composer:
    def __init__(self, pipeline: SearchPipeline, budget: int):
        self.pipeline = pipeline
        self.index: Index = pipeline.index
        self.budget = budget
        notes = [self.index.passages[r] for r in self.index.note_rows]
        sizes = [len(p.text) for p in notes if not p.link_only]
        self.mean_chars = float(np.mean(sizes)) if sizes else float(budget)
        self._units: dict[int, list[Unit]] = {}
        self._contents: dict[int, list[int]] = {}
        self.templates = self._templates(notes)
        self.topic_margin = TOPIC_MARGIN

    def _templates(self, notes: list[Passage]) -> frozenset[tuple[str, ...]]:
        title_words = frozenset(w for p in notes for t in p.path for w in WORD.findall(t.casefold()))
        sections: dict[tuple[str, ...], set[tuple[str, ...]]] = {}
        for row, p in zip(self.index.note_rows, notes, strict=True):
            for unit in self.units(int(row)):
                if not unit.code:
                    sections.setdefault(template_of(unit.plain, title_words), set()).add(p.path)
        self._title_words = title_words
        return frozenset(t for t, where in sections.items() if t and len(where) >= TEMPLATE_SECTIONS)

    def units(self, row: int) -> list[Unit]:
        if row not in self._units:
            self._units[row] = units_of(self.index.passages[row].text)
        return self._units[row]

    def is_filler(self, unit: Unit, passage: Passage) -> bool:
        """A repeated template without a number, or a bare restatement of the section's title."""
        plain = unit.plain.strip(" :*_").casefold()
        heads = plain == passage.title.strip(" :*_").casefold() and len(self.units(self.index.by_id[passage.id])) > 1
        if not plain or heads or CAPTION.match(unit.text):
            return True  # empty, the heading of what follows it, or a figure's caption
        if unit.code or any(ch.isdigit() for ch in unit.plain):
            return False
        if BOLD_LABEL.match(unit.text):
            return True  # a bold label alone heads what follows; it says nothing itself
        template = template_of(unit.plain, self._title_words)
        return not template or template in self.templates  # only titles' words, or a repeated template

    # ---------------------------------------------------------------- compose
    def compose_documents(self, question: str, documents: list[Document], said: str = "") -> Composition:
        """The answer to `question` from a retriever's documents (best first); lines the chat
        already quoted (`said`) are left for others while others remain."""
        message = self.pipeline.message(self.pipeline.clean(question))
        rows = [self.index.by_id[d.id] for d in documents if d.id in self.index.by_id]
        return self.compose(message, rows, said, question)

    def compose(
        self, analysis: Analysis | Message, ranked_rows: list[int], said: str = "", question: str = ""
    ) -> Composition:
        """The answer from the ranked passages; `question` (its words) lets the sections it names
        by title stay in the answer whatever their closeness."""
        rows = [r for r in ranked_rows if self.index.passages[r].kind == "note"]
        further = [self.index.passages[r] for r in rows if self.index.passages[r].link_only]
        content = [r for r in rows if not self.index.passages[r].link_only and self._content(r)]
        if not content:
            return self._links_only(further)
        pool = self._one_topic(analysis, self._pool(content), question)
        if said:  # a follow-up leads with the part it asks for, not with the section already shown
            closeness = self._passage_closeness(analysis, pool)
            pool = sorted(pool, key=lambda r: -closeness[r])
        picked = self._select(analysis, pool, _plain(said))
        return self._render(picked, pool, further)

    def _content(self, row: int) -> list[int]:
        """The units of a passage that are not filler (worked out once per passage)."""
        if row not in self._contents:
            passage = self.index.passages[row]
            units = self.units(row)
            kept = {n for n, u in enumerate(units) if not self.is_filler(u, passage)}
            # An item of a list whose lead-in says something is part of that list, even when its
            # words recur elsewhere ("Add entry to cache" in every caching pattern's steps).
            for n, unit in enumerate(units):
                span = self._list_span(units, n)
                if n not in kept and span is not None and span[0] in kept and WORD.search(unit.plain):
                    kept.add(n)
            self._contents[row] = sorted(kept)
        return self._contents[row]

    def _pool(self, content: list[int]) -> list[int]:
        """The best passages, as many as the budget could quote whole (at least one)."""
        wanted = max(1, round(self.budget / max(self.mean_chars, 1.0)))
        return content[:wanted]

    def _one_topic(self, analysis: Analysis | Message, pool: list[int], question: str = "") -> list[int]:
        """The lead passage's topic, and passages of other topics only when the question is about
        as close to them as to the lead (a two-part question, a comparison) or names their section
        ("explain CAP theorem"): an answer does not wander into neighbouring areas because they
        were retrieved."""
        if len(pool) < 2:
            return pool
        closeness = self._passage_closeness(analysis, pool)
        nearest = max(pool, key=lambda r: closeness[r])  # the lead: closest to the question, not first retrieved
        lead, best = self.index.topic_of(nearest), closeness[nearest]
        asked = f" {normalize_name(question)} " if question else ""
        return [
            r
            for r in pool
            if self.index.in_topic(r, lead)
            or closeness[r] >= best - self.topic_margin
            or any(_names(title, asked) for title in self.index.passages[r].path)
        ]

    def _passage_closeness(self, analysis: Analysis | Message, rows: list[int]) -> dict[int, float]:
        """How close the question is to each passage: both models, the notes model counted for
        the share of the question in the notes' words."""
        known = analysis.signals.known
        out = {r: float(self.index.vectors[r] @ analysis.notes_query) * known for r in rows}
        if self.index.crosslingual_ready:
            for r in rows:
                out[r] += float(self.index.xl_vectors[r] @ analysis.crosslingual_query)
        return out

    def _select(self, analysis: Analysis | Message, pool: list[int], said: str = "") -> list[Candidate]:
        candidates = [Candidate(r, n, self.units(r)[n]) for r in pool for n in self._content(r)]
        relevance = self._relevance(analysis, candidates)
        if said:  # a follow-up goes on: what the chat already quoted yields to what it did not
            relevance -= SAID_PENALTY * np.array([_quoted(c.unit.plain, said) for c in candidates], dtype=float)
        chosen: dict[tuple[int, int], Candidate] = {}
        groups: set[tuple] = set()
        used = 0

        def size_of(group: list[Candidate]) -> int:
            size = sum(len(c.unit.text) + 1 for c in group)
            for c in group:
                key = self._section(c.row)
                if key not in groups and all(self._section(o.row) != key for o in group[: group.index(c)]):
                    size += len(self._label(c.row)) + LABEL_CHARS
            return size

        for i in np.argsort(-relevance, kind="stable"):
            c = candidates[int(i)]
            if (c.row, c.n) in chosen:
                continue
            # A list comes whole: one item of it picked brings its siblings (the three guarantees
            # of a theorem, the four steps of cache-aside), as a reader expects a list; a list of
            # LIST_WHOLE_MAX items or fewer may run LIST_OVERRUN past the budget to do so.
            listed = [o for o in self._list_of(c, candidates) if (o.row, o.n) not in chosen]
            group = [c] + listed
            size = size_of(group)
            whole_fits = used + size <= self.budget * (1 + LIST_OVERRUN) and listed
            if used + size > self.budget and chosen and not whole_fits:
                group, size = [c], size_of([c])
                if used + size > self.budget:
                    continue  # too big for what is left: a smaller unit may still fit
            for o in group:
                chosen[(o.row, o.n)] = o
                groups.add(self._section(o.row))
            used += size
        return list(chosen.values())

    def _list_of(self, c: Candidate, candidates: list[Candidate]) -> list[Candidate]:
        """The other items of the list `c` belongs to (same passage, under the same introducing
        line, one ending in ":"), their sub-points included, when the list holds LIST_WHOLE_MAX
        items or fewer; a longer list is quoted as far as the budget goes, and says how much more."""
        units = self.units(c.row)
        span = self._list_span(units, c.n)
        if span is None:
            return []
        parent, end = span
        items = [m for m in self._content(c.row) if parent < m < end and units[m].indent == c.unit.indent]
        if len(items) > LIST_WHOLE_MAX:
            return []
        return [o for o in candidates if o.row == c.row and parent < o.n < end and o.n != c.n]

    @staticmethod
    def _list_span(units: list[Unit], n: int) -> tuple[int, int] | None:
        """The introducing line (ending in ":") of the list unit `n` is an item of, and where that
        list ends: items indented under it, or bullets at its own level right after it."""
        unit = units[n]
        parent = next((m for m in range(n - 1, -1, -1) if units[m].indent < unit.indent), None)
        if parent is not None and units[parent].plain.rstrip().endswith(":"):
            end = next((m for m in range(n + 1, len(units)) if units[m].indent <= units[parent].indent), len(units))
            return parent, end
        if not BULLET_MARK.match(unit.text):
            return None

        def in_list(m: int) -> bool:
            return units[m].indent > unit.indent or (
                units[m].indent == unit.indent and bool(BULLET_MARK.match(units[m].text))
            )

        start = n
        while start > 0 and in_list(start - 1):
            start -= 1
        lead = start - 1
        if lead < 0 or units[lead].indent != unit.indent or not units[lead].plain.rstrip().endswith(":"):
            return None
        end = n + 1
        while end < len(units) and in_list(end):
            end += 1
        return lead, end

    def _section(self, row: int) -> tuple:
        p = self.index.passages[row]
        return (p.source, p.path)

    def _relevance(self, analysis: Analysis | Message, candidates: list[Candidate]) -> np.ndarray:
        """Unit and passage closeness to the question, added: under the cross-lingual model for
        any language, and the notes model too for the share of the question in the notes' words."""
        rows = sorted({c.row for c in candidates})
        known = analysis.signals.known
        passage = {r: float(self.index.vectors[r] @ analysis.notes_query) * known for r in rows}
        lines = self.index.line_vectors(rows) if self.index.crosslingual_ready else {}
        if lines:
            for r in rows:
                passage[r] += float(self.index.xl_vectors[r] @ analysis.crosslingual_query)
            unit = np.array(
                [float(lines[(c.row, c.n)] @ analysis.crosslingual_query) if (c.row, c.n) in lines else 0.0
                 for c in candidates]
            )  # fmt: skip
        else:  # the cross-lingual views are still being filled in: the notes model alone
            vectors = np.asarray(
                self.pipeline.notes_model.embed_documents([c.unit.plain for c in candidates]), dtype=np.float32
            )
            unit = vectors @ analysis.notes_query
        return unit + np.array([passage[c.row] for c in candidates])

    # ----------------------------------------------------------------- render
    def _render(self, picked: list[Candidate], pool: list[int], further_passages: list[Passage]) -> Composition:
        """Groups by section, in the order retrieval found them; a section's chunks join."""
        sections: OrderedDict[tuple, list[Candidate]] = OrderedDict()
        for row in pool:
            sections.setdefault(self._section(row), [])
        for c in sorted(picked, key=lambda c: (self.index.passages[c.row].first_line, c.n)):
            sections[self._section(c.row)].append(c)
        lead = self.index.passages[pool[0]]
        sources: list[Passage] = []
        lines = [f"From your notes on **{_short(lead.title)}**:"]
        for chosen in sections.values():
            if not chosen:
                continue
            rows = list(dict.fromkeys(c.row for c in chosen))
            sources.append(self._citation(rows))
            text = "\n".join(self._group_text(r, [c for c in chosen if c.row == r]) for r in rows)
            lines += [
                "",
                f"**{self._label(rows[0])}** [{len(sources)}]",
                outline_markdown(dedent_bullets(text), _inline),
            ]
        further = self._further(further_passages)
        if further:
            links = []
            for p in further:
                sources.append(p)
                links.append(f"{_link_list(p)} [{len(sources)}]")
            lines += ["", "Further reading: " + "; ".join(links)]
        return Composition(text="\n".join(lines), sources=sources, further=further)

    def _citation(self, rows: list[int]) -> Passage:
        """One source for a section's chunks quoted together: their lines, end to end."""
        first = self.index.passages[rows[0]]
        if len(rows) == 1:
            return first
        parts = [self.index.passages[r] for r in rows]
        return replace(
            first,
            body="\n".join(p.body for p in parts),
            first_line=min(p.first_line for p in parts),
            last_line=max(p.last_line for p in parts),
        )

    def _group_text(self, row: int, picked: list[Candidate]) -> str:
        """The picked units of one passage in notes order, with the bullets that introduce them
        (a less indented line above, ending with ":"), so sub-points keep their parent."""
        units = self.units(row)
        chosen = {c.n for c in picked}
        for n in sorted(chosen):
            span = self._list_span(units, n)
            if span is not None:
                chosen.add(span[0])  # the line that introduces the list
        left_out = self._left_out(row, chosen)
        lines = []
        for n in sorted(chosen):
            lines.append(units[n].text)
            if n in left_out:
                lines.append(left_out[n])
        return dedent_bullets("\n".join(lines))

    def _left_out(self, row: int, chosen: set[int]) -> dict[int, str]:
        """For each list quoted in part, a line saying how many more items the notes hold, to go
        after its last quoted item: a list is never cut without a word."""
        units, content = self.units(row), set(self._content(row))
        after: dict[int, str] = {}
        for m in sorted(chosen):
            span = self._list_span(units, m + 1) if m + 1 < len(units) else None
            if span is None or span[0] != m:
                continue
            end = span[1]
            inner = [k for k in range(m + 1, end) if k in content]
            if not inner:
                continue
            level = min(units[k].indent for k in inner)
            items = [k for k in inner if units[k].indent == level]
            missing = sum(k not in chosen for k in items)
            if missing and any(k in chosen for k in items):
                last = max(k for k in range(m + 1, end) if k in chosen)
                after[last] = f"{' ' * level}- *… and {missing} more in the notes*"
        return after

    def _label(self, row: int) -> str:
        """A passage's label: its last two titles ("Design a web crawler › Handling duplicates")."""
        path = self.index.passages[row].path
        parts = [_short(p) for p in path[-2:]] if len(path) > 1 else [_short(path[-1])] if path else [""]
        label = " › ".join(parts)
        return label if len(label) <= LABEL_MAX_CHARS + 10 else parts[-1]

    def _further(self, retrieved: list[Passage]) -> list[Passage]:
        """Link lists among the retrieved passages that hold links to list."""
        with_links = [p for p in retrieved if _links(p)]
        unique: OrderedDict[str, Passage] = OrderedDict((p.id, p) for p in with_links)
        return list(unique.values())[:FURTHER_READING_MAX]

    def _links_only(self, further: list[Passage]) -> Composition:
        sources = further[:FURTHER_READING_MAX]
        if not sources:
            return Composition(text=NO_TEXT)
        lines = ["Your notes only hold links on this:"] + [
            f"- **{_short(p.title)}** [{n}]: {_link_list(p)}" for n, p in enumerate(sources, 1)
        ]
        return Composition(text="\n".join(lines), sources=sources, further=sources)


def _plain(text: str) -> str:
    """Text compared for "already quoted": words only, case and markup ignored."""
    return " ".join(WORD.findall(text.casefold()))


def _names(title: str, asked: str) -> bool:
    """The question (normalised, padded with spaces) names this section title as whole words; a
    title of one short word ("Cache") is a common word, not a name."""
    name = normalize_name(title)
    return bool(asked) and (len(name.split()) >= 2 or len(name) >= MENTION_MIN_CHARS) and f" {name} " in asked


def _quoted(unit: str, said: str) -> bool:
    """A unit of three words or more that the chat already quoted word for word."""
    words = _plain(unit)
    return len(words.split()) >= QUOTED_MIN_WORDS and words in said


def _inline(line: str) -> str:
    """A heading inside the notes becomes a bold line at the answer's level, never a page H1."""
    m = HEADING.match(line)
    return f"**{m.group(2).strip()}**" if m else line


def _links(passage: Passage) -> list[tuple[str, str]]:
    """The web links a passage holds: (label, url)."""
    found = [(m.group(1).replace("**", "").strip(), m.group(2)) for m in MD_LINK.finditer(passage.body)]
    found = [
        (url if not label or LINK_WORD.match(label) else label, url)
        for label, url in found
        if url.startswith(("http://", "https://"))
    ]
    bare = [(u, u) for u in URL.findall(MD_LINK.sub("", passage.body))]
    return list(OrderedDict.fromkeys(found + bare))


def _link_list(passage: Passage, limit: int = 3) -> str:
    links = _links(passage)
    shown = ", ".join(f"[{_host(label) if label == url else label}]({url})" for label, url in links[:limit])
    more = f" and {len(links) - limit} more" if len(links) > limit else ""
    title = _short(passage.title)
    if SOURCES_TITLE.match(title):  # "Source(s) and further reading: sharding" says only what the line says
        title = SOURCES_TITLE.sub("", title).strip(" :") or ""
    lead = f"{title}: " if title else ""
    return f"{lead}{shown}{more}" if shown else _short(passage.title)


def _host(url: str) -> str:
    """A bare link named by its site and page: "github.com/donnemartin/system-design-primer"."""
    return re.sub(r"^https?://(www\.)?", "", url).split("#")[0].split("?")[0].rstrip("/")[:60]


def _short(title: str, limit: int = LABEL_MAX_CHARS) -> str:
    """A title as a label, as a reader sees it (links by their text): no trailing colon, cut at a
    word when it is a whole sentence."""
    title = re.sub(r"\s+", " ", outline_syntax(title)).strip().rstrip(":").rstrip("…").strip()
    if len(title) <= limit:
        return title
    return title[:limit].rsplit(" ", 1)[0].rstrip(",;:") + "…"
