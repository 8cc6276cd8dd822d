"""Text helpers shared by ingest, retrieval and answering: the export's markdown patterns,
query cleaning, compact passages, link-only detection and Markdown for display."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

IMAGE = re.compile(r"!\[([^\]]*)\]\(((?:[^()]|\([^()]*\))*)\)")
LINK_HEADING = re.compile(r"\[\s*\**\s*Link\s*\**\s*\]\([^)]*\)")
MD_LINK = re.compile(r"\[([^\]]*)\]\(((?:[^()]|\([^()]*\))*)\)")  # a URL may hold "(…)" once
URL = re.compile(r"https?://\S+")
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
WORD = re.compile(r"[^\W\d_]{2,}")
FLASHCARD = re.compile(r"\s*>>>\s*$", re.MULTILINE)
FENCE = re.compile(r"^\s*(?:-\s+)?```")
# Outline-app syntax, shown as a reader sees it: [[page]] and [[page|label]] as their text,
# ((block refs)) and {{macros}} out, org-style #+BEGIN_/#+END_ block markers out, callout
# markers ("> [!note]") out (the quote stays).
WIKILINK = re.compile(r"\[\[([^\]|]+)(?:\|([^\]]+))?\]\]")
BLOCK_REF = re.compile(r"\(\([0-9a-f-]{8,}\)\)")
MACRO = re.compile(r"\{\{[^{}]*\}\}")
CODE_SPAN = re.compile(r"(`[^`\n]+`)")  # an inline code span, kept whole by the split
ORG_BLOCK = re.compile(r"^(\s*(?:-\s+)?)#\+(?:BEGIN|END)_\w+\s*$", re.IGNORECASE | re.MULTILINE)
CALLOUT = re.compile(r"^(\s*>\s*)\[!\w+\][-+]?\s*", re.MULTILINE)
# The special tokens of chat-model prompt formats (ChatML, Llama 2): in a message they are
# scaffolding, in a model's output a leak. One pattern for both (signals and chains).
FORMAT_TOKEN_PATTERN = r"<\|[^|>\s]{1,40}\|>|\[/?(?:INST|SYS|SYSTEM)\]|<</?SYS>>"


class QueryError(ValueError):
    """A query that cannot be searched; the message is meant for the user."""


EMPTY_QUERY = "Please type a question or a persona name: the query is empty."


def clean_query(query: str | None, max_chars: int) -> str:
    """Strip control characters and outer space; refuse empty input; cap the length."""
    text = uncapped_query(query)
    if not text:
        raise QueryError(EMPTY_QUERY)
    return text[:max_chars]


def uncapped_query(query: str | None) -> str:
    """A query as it is searched before the length cap: control characters out, space folded."""
    if query is None:
        return ""
    return " ".join(CONTROL.sub(" ", unicodedata.normalize("NFC", str(query))).split())


def control_characters(query: str | None) -> int:
    """How many control characters (not tabs or newlines) a message held: they are not searched."""
    return len(CONTROL.findall(str(query or "")))


def outline_syntax(text: str) -> str:
    """Wiki links as their text, block references and macros out, block markers out; inside a
    code span (`{{embed ((id))}}` shown as what to type) the syntax is the text, and stays."""
    parts = CODE_SPAN.split(text)
    for i in range(0, len(parts), 2):  # even parts lie outside code spans
        part = WIKILINK.sub(lambda m: m.group(2) or m.group(1), parts[i])
        parts[i] = BLOCK_REF.sub("", MACRO.sub("", part))
    return CALLOUT.sub(r"\1", ORG_BLOCK.sub(r"\1", "".join(parts)))


def compact(text: str) -> str:
    """A passage as an LLM or a reader needs it: link text kept, URLs and images dropped."""
    text = outline_syntax(text)
    text = IMAGE.sub("", text)
    text = LINK_HEADING.sub("", text)
    text = FLASHCARD.sub("", text)
    text = MD_LINK.sub(lambda m: m.group(1), text)
    lines = [line.rstrip() for line in text.split("\n") if line.strip() not in ("", "-")]
    return dedent_bullets("\n".join(lines))


def dedent_bullets(text: str) -> str:
    """Shift an outline excerpt left so its shallowest bullet starts the line. A fenced code
    block moves as one piece, by no more than its least indented line, so its own indentation
    stays (exports put code at the margin whatever the depth of its bullet)."""
    lines = fence_preformatted(text).split("\n")
    bullets = [_indent(line) for line in lines if line.lstrip(" ").startswith("- ")]
    cut = min(bullets, default=0)
    out: list[str] = []
    code: list[str] = []
    for line in lines:
        if code:
            code.append(line)
            if FENCE.match(line):
                out += _shift(code[1:], cut)
                code = []
            continue
        out.append(line[min(cut, _indent(line)) :])
        opener = line.lstrip(" -")
        if opener.startswith("```") and opener.count("```") == 1:
            code = [line]
    if code:  # a block the excerpt cuts: its lines still move together
        out += _shift(code[1:], cut)
    return "\n".join(out)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _shift(lines: list[str], cut: int) -> list[str]:
    step = min([cut] + [_indent(line) for line in lines if line.strip()])
    return [line[min(step, _indent(line)) :] for line in lines]


def prose_words(text: str) -> list[str]:
    """The words of `text` that are not part of a URL or a link target."""
    text = URL.sub(" ", MD_LINK.sub(lambda m: m.group(1), IMAGE.sub(" ", text)))
    return WORD.findall(text)


# A further-reading list: every line a link, a URL, a "Source(s)" label or empty.
_SOURCES_LABEL = re.compile(r"^\W*(?:sources?|references?|further reading|see also|links?)\b.*$", re.IGNORECASE)


def is_link_only(body: str) -> bool:
    """True when the passage is only links (a further-reading list, bare URLs, images)."""
    lines = [ln.strip().removeprefix("- ").strip() for ln in body.split("\n")]
    lines = [ln for ln in lines if ln and ln != "-"]
    if not lines:
        return True
    links = 0
    for line in lines:
        rest = URL.sub("", MD_LINK.sub("", IMAGE.sub("", LINK_HEADING.sub("", line))))
        rest = FLASHCARD.sub("", rest).strip(" *_:-.,;()")
        if not rest:
            links += 1
        elif not _SOURCES_LABEL.match(rest):
            return False
    return links > 0


def strip_markup(text: str) -> str:
    """Bold markers and flashcard arrows out: what a reader would read aloud."""
    return FLASHCARD.sub("", text).replace("**", "")


def to_markdown(body: str) -> str:
    """A section as Markdown for display: links by their text, images as links, no export
    artefacts (`>>>`, `**…**` glued headings, tracking URLs), and an outline that Markdown
    renders as it reads (`outline_markdown`)."""

    def inline(line: str) -> str:
        line = outline_syntax(line)
        line = IMAGE.sub(lambda m: f"[image: {m.group(1) or 'figure'}]({_clean_url(m.group(2))})", line)
        line = LINK_HEADING.sub("", line)
        line = MD_LINK.sub(lambda m: _link(m.group(1), m.group(2)), line)
        line = FLASHCARD.sub("", line)
        return re.sub(r"\*\*\s*\*\*", " ", line)  # "****" between glued headings

    return outline_markdown(body, inline)


# Pasted code the export left unfenced: a bullet's continuation lines with an indentation
# structure of their own (Markdown's rule for an indented code block: 4 more spaces).
PREFORMATTED_INDENT = 4
PREFORMATTED_MIN_LINES = 3  # fewer lines are a wrapped sentence, not a listing
EXPORT_BOLD = re.compile(r"\*\*(\w+)\*\*")  # "**def**": the export's keyword highlighting


def fence_preformatted(text: str) -> str:
    """Fence the code a bullet carries unfenced (the export's notebook cells), so it renders
    as code: its indentation kept, the export's bold keywords plain again. A text with fences
    of its own marks its code itself (and an excerpt may start inside one): left as it is."""
    if "```" in text:
        return text
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        out.append(line)
        i += 1
        if not line.lstrip(" ").startswith("- "):
            continue
        end = i
        while end < len(lines) and not lines[end].lstrip(" ").startswith("- "):
            end += 1
        block = lines[i:end]
        while block and not block[-1].strip():
            block.pop()
        indents = [_indent(b) for b in block if b.strip()]
        if len(indents) >= PREFORMATTED_MIN_LINES and max(indents) - min(indents) >= PREFORMATTED_INDENT:
            out += ["```", *(EXPORT_BOLD.sub(r"\1", b) for b in block), "```"]
            i = end
    return "\n".join(out)


SETEXT_UNDERLINE = re.compile(r"^\s*[-=]{2,}\s*$")  # would turn the line above into a heading


def outline_markdown(text: str, inline: Callable[[str], str] = lambda line: line) -> str:
    """An outline excerpt as Markdown renders it right: empty bullets dropped, lines that
    continue a bullet kept inside it, and code blocks lifted out of the list to the margin
    (a fence inside a list item must be indented just so, which the export never is); the
    code itself is left exactly as written. `inline` rewrites the text of each prose line."""
    out: list[str] = []
    in_code = False
    text = fence_preformatted(text)
    item_indent: int | None = None  # content column of the last bullet, for its continuation lines
    shift: int | None = 0  # after a code block the list starts again at the margin
    for raw in text.split("\n"):
        stripped = raw.strip()
        if in_code:
            if stripped.startswith("```"):
                out += ["```", ""]
                in_code, shift = False, None
            else:
                out.append(raw.rstrip())
            continue
        if shift is None and stripped:
            shift = len(raw) - len(raw.lstrip(" "))
        indent = max(0, len(raw) - len(raw.lstrip(" ")) - (shift or 0))
        bullet = stripped == "-" or stripped.startswith("- ")
        content = stripped[2:].strip() if bullet else stripped
        if content.startswith("```"):
            fence = FLASHCARD.sub("", content)
            out += ["", fence]
            in_code = fence.count("```") % 2 == 1
            if not in_code:
                out.append("")
                shift = None
            item_indent = None
            continue
        content = inline(content).strip()
        if not content or content == "-":
            continue
        if SETEXT_UNDERLINE.match(content):
            content = "\\" + content
        if bullet:
            out.append(f"{' ' * indent}- {content}")
            item_indent = indent + 2
        elif item_indent is not None:
            out[-1] += "  "  # a line break inside the bullet
            out.append(f"{' ' * item_indent}{content}")
        else:
            out.append(content)
    if in_code:
        out.append("```")
    return "\n".join(out).strip("\n")


def _clean_url(url: str) -> str:
    """Drop tracking parameters so links read cleanly."""
    base, _, query = url.partition("?")
    kept = [p for p in query.split("&") if p and not p.lower().startswith(("utm_", "fbclid", "gclid", "ref="))]
    return base + ("?" + "&".join(kept) if kept else "")


def _link(label: str, url: str) -> str:
    label = label.replace("**", "").strip()
    if url.startswith(("http://", "https://")):
        return f"[{label or _clean_url(url)}]({_clean_url(url)})"
    return label or url  # links to other notes of the tree show as their title


# ----------------------------------------------------------------------------- answer units
@dataclass(frozen=True)
class Unit:
    """The smallest piece of a passage an answer quotes: a line (a bullet, a line of prose, a
    table row) or a whole code block. `plain` is what a model reads of it."""

    text: str  # as the passage has it, indentation kept
    plain: str
    first: int  # line numbers inside the passage's text
    last: int
    code: bool = False

    @property
    def indent(self) -> int:
        return _indent(self.text.split("\n", 1)[0])


UNIT_PLAIN_MAX = 500  # a code block is read by its first characters
BULLET_MARK = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")


def units_of(text: str) -> list[Unit]:
    """A passage's text (`Passage.text`) as answer units, in order: every line with content,
    and each fenced code block whole."""
    units: list[Unit] = []
    lines = text.split("\n")
    i = 0
    fences = [n for n, line in enumerate(lines) if FENCE.match(line)]
    first = next((line.strip() for line in lines if line.strip()), "")
    if len(fences) % 2 == 1 and not first.startswith(("- ", "```", "#")):
        # The passage starts inside a code block its previous chunk opened: up to the fence
        # that closes it is code, one unit.
        end = fences[0]
        code = "\n".join(lines[:end]).strip()
        if code:
            units.append(Unit("```\n" + "\n".join(lines[:end]) + "\n```", code[:UNIT_PLAIN_MAX], 0, end, code=True))
        i = end + 1
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        opener = stripped.removeprefix("- ").strip()
        if opener.startswith("```") and opener.count("```") % 2 == 1:
            j = i + 1
            while j < len(lines) and not FENCE.match(lines[j]):
                j += 1
            j = min(j, len(lines) - 1)
            block = "\n".join(lines[i : j + 1])
            code = "\n".join(lines[i + 1 : j]).strip()
            if code:
                units.append(Unit(block, code[:UNIT_PLAIN_MAX], i, j, code=True))
            i = j + 1
            continue
        j = i
        while j + 1 < len(lines) and wraps_on(lines[j], lines[j + 1]):
            j += 1  # a paragraph wrapped over lines is one piece of text, read as its sentences
        if j > i:
            units += sentences_of(lines, i, j)
            i = j + 1
            continue
        plain = BULLET_MARK.sub("", line).replace("**", "").strip()
        if len(WORD.findall(plain)) or any(ch.isdigit() for ch in plain):
            units.append(Unit(line, plain, i, i))
        i += 1
    return units


# A line that starts something of its own: a bullet or numbered item, a table row, a heading, a
# quote or callout, a fence, an HTML tag. Any other line right under prose continues its paragraph.
BLOCK_START = re.compile(r"^\s*(?:[-*+]\s|\d+[.)]\s|\||#|>|```|<|\[[ xX]\]|!\[)")
WRAP_MIN_CHARS = 50  # a line broken by wrapping is long; a short one is a label, a date, a line of its own
SENTENCE_ENDS = (".", "!", "?", ":", ";", "。", "！", "？", "：")
# Code, or text aligned in columns: its lines stand as they are.
CODE_LIKE = re.compile(r"[={}]|\w\(|\b__\w|\*\*(?:def|class|return|if|for|while)\*\*|\S {3,}\S")
SENTENCE_BREAK = re.compile(
    r"(?<=[.!?])[\"')\]]?\s+(?=[^\s\w]*[A-Z0-9\u00C0-\u024F\u0370-\u1FFF\u3000-\uFFFF])|(?<=[。！？])"
)


def wraps_on(line: str, following: str) -> bool:
    """`following` goes on with the sentence `line` broke off: Markdown reads a single line break
    inside a paragraph as a space, and a note wrapped at 80 columns breaks sentences anywhere.
    A line that ends a sentence, or is short (a label, a date), stands as it is; a line ending in
    two spaces breaks; so do blank lines, code, and lines that start a block of their own (list
    items, table rows, headings)."""
    if not line.strip() or not following.strip() or line.endswith("  ") or line.rstrip().endswith("\\"):
        return False
    body = BULLET_MARK.sub("", line).strip()
    if len(body) < WRAP_MIN_CHARS or body.endswith(SENTENCE_ENDS) or body.startswith(("|", "#", "```")):
        return False
    if BLOCK_START.match(following) or FENCE.match(line) or CODE_LIKE.search(line) or CODE_LIKE.search(following):
        return False
    return _indent(following) >= _indent(line) - 1


def sentences_of(lines: list[str], first: int, last: int) -> list[Unit]:
    """A paragraph wrapped over lines `first`..`last`, as one unit per sentence (its text on one
    line, at the paragraph's indentation, its bullet kept on the first)."""
    head = lines[first]
    lead = head[: len(head) - len(head.lstrip())]
    mark = BULLET_MARK.match(head)
    opener = mark.group(0).strip() + " " if mark else ""
    text = " ".join(line.strip() for line in lines[first : last + 1])
    text = BULLET_MARK.sub("", text, count=1) if mark else text
    units: list[Unit] = []
    for n, sentence in enumerate(s for s in SENTENCE_BREAK.split(text) if s.strip()):
        plain = sentence.replace("**", "").strip()
        if not (WORD.findall(plain) or any(ch.isdigit() for ch in plain)):
            continue
        shown = f"{lead}{opener if n == 0 else ''}{sentence.strip()}"
        units.append(Unit(shown, plain, first, last))
    return units
