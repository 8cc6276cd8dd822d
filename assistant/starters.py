"""What a first page offers: example questions, personas and needs taken from the user's
own notes (section titles, persona names, the example requests the prompts carry), and
times said the way people say them."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime

from assistant.core.personas import Persona
from assistant.core.sections import Section, SectionTree
from assistant.core.text import BLOCK_REF, MACRO, WORD, outline_syntax, strip_markup

TITLE_MAX_CHARS = 40  # longer titles are sentences, not topics
MIN_OWN_CHARS = 150  # a topic opens with some text of its own (a definition), not just sub-headings
# An example need is a sentence a person would type: a capital first, a full stop, a question
# mark or an exclamation mark last, and in the catalog's own language: most of its words occur
# in other prompts of the catalog (a line in another language, or a fragment of code, does not).
NEED_MIN_WORDS = 6
NEED_KNOWN_SHARE = 0.6
QUOTES = "\"“”'"
PROPERTY = re.compile(r"\w::")


def example_topics(tree: SectionTree, count: int = 4) -> list[Section]:
    """Topics a reader would ask about: sections near the top of their area that open with
    some text of their own ("Load balancer", "Cache"), distinctly named (titles that repeat
    across the notes, like "NoSQL" in every exercise, say little alone), spread over the
    notes: at most one per parent section."""
    sections = [s for s in tree.all() if s.rows and len(s.path) >= 2]
    repeated = Counter(s.title for s in sections)

    def own_chars(section: Section) -> int:
        return sum(len(tree.passages[r].text) for r in section.rows)

    candidates = [
        s
        for s in sections
        if repeated[s.title] == 1
        and title_as_read(s.title) is not None
        and len(s.title) <= TITLE_MAX_CHARS
        and len(s.children) <= 12
        and own_chars(s) >= MIN_OWN_CHARS
        and not s.title.rstrip().endswith(":")
    ]
    # Shallow first: concepts sit near the top of their area, the details of an exercise deep down.
    candidates.sort(key=lambda s: (len(s.path), -own_chars(s), s.key))
    picked: list[Section] = []
    parents: set[str] = set()
    for section in candidates:
        parent = section.parent.key if section.parent else ""
        if parent not in parents:
            picked.append(section)
            parents.add(parent)
        if len(picked) == count:
            break
    return picked


def title_as_read(title: str) -> str | None:
    """A section title as a reader sees it (links by their text, no markup), or None when it
    holds note syntax a reader would not type: macros such as clozes, block references, properties."""
    if MACRO.search(title) or BLOCK_REF.search(title) or PROPERTY.search(title):
        return None
    read = " ".join(strip_markup(outline_syntax(title)).split()).rstrip(" :")
    return read if WORD.search(read) else None


def topic_question(section: Section) -> str:
    title = title_as_read(section.title) or section.title.rstrip(" :")
    return title if title.lower().startswith(("design ", "how ", "what ", "why ")) else f"Tell me about {title}"


def example_questions(tree: SectionTree, count: int = 4) -> list[str]:
    """Topic questions from the notes' own section titles (`example_topics`): no model needed,
    so a first page shows them at once, and the same ones every time."""
    return [topic_question(s) for s in example_topics(tree, count=count)]


def example_personas(personas: list[Persona], favourites: set[str] = frozenset(), count: int = 4) -> list[Persona]:
    """Favourites first, then personas spread evenly over the catalog (with an emoji, to be seen)."""
    chosen = [p for p in personas if p.key in favourites][:count]
    pool = [p for p in personas if p.emoji and p.key not in favourites]
    if pool and len(chosen) < count:
        step = max(1, len(pool) // (count - len(chosen)))
        chosen += pool[::step][: count - len(chosen)]
    return chosen


def example_needs(personas: list[Persona], count: int = 4) -> list[tuple[str, Persona]]:
    """Needs worded as the prompts' own example requests ("I need help finding a house near
    downtown Istanbul."), spread over the catalog: from the catalog alone, so at once and stable.
    Only requests that read as a sentence a person would type (`as_typed`) are examples."""
    common = _catalog_words(personas)
    candidates = [
        (typed, p)
        for p in personas
        if not p.is_jailbreak and (typed := as_typed(p.stated_request, common)) and 25 <= len(typed) <= 120
    ]
    step = max(1, len(candidates) // max(count, 1))
    return candidates[::step][:count]


def _catalog_words(personas: list[Persona]) -> Counter[str]:
    """In how many prompts each word occurs: the catalog's own language."""
    return Counter(w for p in personas for w in {w.casefold() for w in WORD.findall(p.prompt)})


def as_typed(request: str, common: Counter[str]) -> str | None:
    """A prompt's example request as a person would type it, or None: a whole sentence (a
    capital first, end punctuation last, at least NEED_MIN_WORDS words), mostly in words that
    other prompts of the catalog use, stray quotes out."""
    text = " ".join(request.replace("“", "").replace("”", "").replace('".', ".").split()).strip(QUOTES + " ")
    words = [w.casefold() for w in WORD.findall(text)]
    if not text or not text[0].isupper() or text[-1] not in ".?!" or len(text.split()) < NEED_MIN_WORDS:
        return None
    known = sum(common[w] >= 2 for w in words) / len(words) if words else 0.0
    return text if known >= NEED_KNOWN_SHARE else None


def relative_time(moment: str | datetime | None, now: datetime | None = None) -> str:
    """ "3 minutes ago", "yesterday", "12 March 2026": how long ago, as people say it."""
    if moment is None or moment == "":
        return "never"
    when = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    seconds = (now - when).total_seconds()
    if seconds < 0:
        return "just now"
    for limit, size, unit in ((60, 1, None), (3600, 60, "minute"), (86400, 3600, "hour")):
        if seconds < limit:
            if unit is None:
                return "just now"
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    days = int(seconds // 86400)
    if days == 1:
        return "yesterday"
    if days < 7:
        return f"{days} days ago"
    local = when.astimezone()
    return f"{local.day} {local:%B %Y}"
