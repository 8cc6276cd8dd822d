"""Parsing an outline export (nested `- ` bullets, optional `#` headings) into a tree.

The export has quirks (see the project README): continuation lines without a bullet,
code fences that open on a bullet and close at column 0, unfenced code, flashcard
markers, flattened sibling headings and placeholder `.` bullets. The parser keeps every
line with its number; `restructure` then re-nests what the export flattened.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from assistant.core.text import IMAGE, MD_LINK, outline_syntax
from assistant.core.vectorstore import IngestProblem

BULLET = re.compile(r"^(?P<indent>[ \t]*)[-*+](?:[ \t]+(?P<text>.*)|[ \t]*)$")
HEADING = re.compile(r"^(?P<hashes>#{1,6})[ \t]+(?P<text>.*?)[ \t#]*$")
FENCE = re.compile(r"^\s*(?:[-*+]\s+)?```")
FENCE_CLOSE = re.compile(r"^\s*```\s*(?:>>>)?\s*$")
LINK_HEADING = re.compile(r"\[\s*\*\*\s*Link\s*\*\*\s*\]\([^)]*\)")
BOLD_ONLY = re.compile(r"^\*\*(?P<t>[^*]+)\*\*$")
CODE_EQ = re.compile(r"\u2015| \u2194 ")
# Outline properties (Logseq `key:: value`, on a page's first lines or under a block) and YAML
# front matter (`---` … `---`): metadata of the page or the block, never text to answer with.
PROPERTY = re.compile(r"^\s*(?:[-*+]\s+)?(?P<key>[A-Za-z][\w-]*)::(?:\s+(?P<value>.*))?\s*$")
FRONT_MATTER_FENCE = "---"
FRONT_MATTER_MAX_LINES = 60
YAML_KEY = re.compile(r"^(?P<key>[A-Za-z][\w-]*):\s*(?P<value>.*)$")
# A property whose value is prose (a description, a summary, an abstract) is what the page says
# of itself: its opening text. Tags, dates, links and short lists stay metadata.
PROSE_MIN_WORDS = 5  # words in one comma-separated item: a sentence, not a list of names
PROSE_WORD = re.compile(r"[^\W\d_]{2,}")
HEADING_MARK = re.compile(r"^#{1,6}\s+")  # "- ## Usage": a heading written as a bullet
SEP = "\x00"


@dataclass
class Node:
    """One bullet (or heading) with its continuation lines and children."""

    title: str
    line: int
    depth: int
    body: list[tuple[int, str]] = field(default_factory=list)
    children: list[Node] = field(default_factory=list)
    raw: str = ""  # the title line as it stands in the file

    @property
    def own_lines(self) -> list[tuple[int, str]]:
        head = [(self.line, self.raw)] if self.line > 0 else []
        return head + self.body

    def subtree_lines(self) -> list[tuple[int, str]]:
        out = list(self.own_lines)
        for child in self.children:
            out.extend(child.subtree_lines())
        return out

    def walk(self) -> Iterator[Node]:
        yield self
        for child in self.children:
            yield from child.walk()


@dataclass
class ParseResult:
    root: Node
    warnings: list[IngestProblem]  # file left empty: the caller knows it
    properties: dict[str, str] = field(default_factory=dict)  # the page's own (title, alias, tags)
    metadata_lines: list[int] = field(default_factory=list)  # front matter and property lines


def is_property(line: str) -> bool:
    return bool(PROPERTY.match(line))


def page_properties(lines: list[str]) -> tuple[dict[str, str], list[int]]:
    """The page's properties: YAML front matter, then `key:: value` lines before its first
    bullet or heading; and the numbers of those lines (metadata, not text)."""
    props: dict[str, str] = {}
    used: list[int] = []
    start = 0
    if lines and lines[0].strip() == FRONT_MATTER_FENCE:
        end = next((i for i in range(1, min(len(lines), FRONT_MATTER_MAX_LINES)) if lines[i].strip() == "---"), None)
        if end is not None:
            for i in range(1, end):
                m = YAML_KEY.match(lines[i].strip())
                if m:
                    props[m.group("key").lower()] = m.group("value").strip().strip("'\"")
            used = list(range(1, end + 2))
            start = end + 1
    for i in range(start, len(lines)):
        line = lines[i]
        if not line.strip():
            continue
        m = PROPERTY.match(line)
        if not m or line.lstrip().startswith(("-", "*", "+")):
            break
        props[m.group("key").lower()] = (m.group("value") or "").strip()
        used.append(i + 1)
    return props, used


def _prose_value(line: str) -> str:
    """The value of a `key:: value` (or front matter `key: value`) line when it is prose."""
    m = PROPERTY.match(line) or YAML_KEY.match(line.strip())
    value = (m.group("value") or "").strip().strip("'\"") if m else ""
    if any(len(PROSE_WORD.findall(outline_syntax(item))) >= PROSE_MIN_WORDS for item in value.split(",")):
        return value
    return ""


def _indent_unit(lines: list[str]) -> int:
    widths = set()
    for line in lines:
        m = BULLET.match(line)
        if m:
            width = len(m.group("indent").expandtabs(4))
            if width:
                widths.add(width)
    if not widths:
        return 4
    smallest = min(widths)
    return 2 if smallest <= 2 else 4


def repair_code_line(text: str) -> str:
    """The export wrote `==` as U+2015 or ' ↔ ' in code; continuation code lines get it back."""
    if "**" in text or "(" in text or ":" in text:
        return CODE_EQ.sub(lambda m: "==" if m.group(0) == "\u2015" else " == ", text)
    return text


def parse_outline(lines: list[str], title: str = "") -> ParseResult:
    """Build the tree. Never raises on odd input; oddities become warnings. The page's
    properties and front matter are read as metadata and their lines left out of the tree."""
    properties, metadata_lines = page_properties(lines)
    root = Node(title=title, line=0, depth=-1)
    described = [n for n in metadata_lines if _prose_value(lines[n - 1])]
    for number in described:
        root.body.append((number, _prose_value(lines[number - 1])))
    metadata_lines = [n for n in metadata_lines if n not in described]
    skip = set(metadata_lines) | set(described)
    stack: list[Node] = [root]
    warnings: list[IngestProblem] = []
    unit = _indent_unit(lines)
    heading_depth = 0
    fence_open_at = 0
    saw_tab_mix = False

    for number, line in enumerate(lines, start=1):
        if number in skip:
            continue
        current = stack[-1]
        if fence_open_at:
            current.body.append((number, line))
            if FENCE_CLOSE.match(line):
                fence_open_at = 0
            continue
        heading = HEADING.match(line)
        bullet = BULLET.match(line) if not heading else None
        if heading:
            level = len(heading.group("hashes"))
            depth = level - 1
            while stack[-1] is not root and stack[-1].depth >= depth:
                stack.pop()
            node = Node(title=heading.group("text").strip(), line=number, depth=depth, raw=line)
            stack[-1].children.append(node)
            stack.append(node)
            heading_depth = level
            continue
        if bullet:
            indent = bullet.group("indent")
            if "\t" in indent and " " in indent and not saw_tab_mix:
                saw_tab_mix = True
                warnings.append(
                    IngestProblem(
                        "", "tabs and spaces mixed in indentation (tab read as 4 spaces)", line=number, warning=True
                    )
                )
            width = len(indent.expandtabs(4))
            depth = heading_depth + (width + unit // 2) // unit
            while stack[-1] is not root and stack[-1].depth >= depth:
                stack.pop()
            text = (bullet.group("text") or "").rstrip()
            node = Node(title=text, line=number, depth=depth, raw=line)
            stack[-1].children.append(node)
            stack.append(node)
            if text.lstrip().startswith("```") and text.count("```") % 2 == 1:
                fence_open_at = number
            continue
        # Continuation line: belongs to the bullet above (or the file itself).
        if line.strip() and FENCE.match(line) and line.count("```") % 2 == 1:
            fence_open_at = number
            current.body.append((number, line))
            continue
        current.body.append(
            (number, repair_code_line(line) if line[:1] in (" ", "*") or line.startswith("**") else line)
        )

    if fence_open_at:
        warnings.append(
            IngestProblem(
                "", "code fence never closed (read as code to the end of the file)", line=fence_open_at, warning=True
            )
        )
    restructure(root)
    return ParseResult(root=root, warnings=warnings, properties=properties, metadata_lines=metadata_lines)


# ----------------------------------------------------------------------------- titles
def title_parts(raw: str) -> list[str]:
    """The headings a bullet title carries: '[**Link**](u)**A**[**Link**](u)**B**>>>' -> [A, B]."""
    t = raw.strip()
    if t.endswith(">>>"):
        t = t[:-3]
    t = IMAGE.sub("", t)
    t = LINK_HEADING.sub(SEP, t)
    t = t.replace("****", SEP)
    t = MD_LINK.sub(lambda m: m.group(1), t)
    t = t.replace("**", "").replace("\u2015", SEP)
    parts = [re.sub(r"\s+", " ", p).strip() for p in t.split(SEP)]
    parts = [p for p in parts if p]
    # A long trailing "part" is content glued onto a heading, not a heading.
    kept = parts[:1] + [p for p in parts[1:] if len(p) <= 80]
    return kept


def clean_title(raw: str) -> str:
    raw = HEADING_MARK.sub("", raw.strip())
    return " / ".join(title_parts(raw)) or raw.strip()


def is_flat_heading(node: Node) -> bool:
    """A sibling bullet that heads the siblings after it (the export flattened the nesting)."""
    t = node.title.strip()
    if LINK_HEADING.match(t):
        return True
    m = BOLD_ONLY.match(t.removesuffix(">>>").strip())
    if m and not node.children and not node.body:
        words = m.group("t").split()
        return 0 < len(words) <= 8 and not m.group("t").rstrip().endswith((".", "!", "?"))
    return False


def is_placeholder(node: Node) -> bool:
    return node.title.strip() == "."


def restructure(node: Node) -> None:
    """Re-nest flattened headings and attach `.` placeholder bullets to the note they continue."""
    # Placeholders continue the meaningful sibling before them.
    kids: list[Node] = []
    for child in node.children:
        if is_placeholder(child) and kids and kids[-1].title.strip() not in ("", "."):
            kids[-1].children.append(child)
        else:
            kids.append(child)
    # Flattened headings govern the plain siblings that follow them.
    grouped: list[Node] = []
    current: Node | None = None
    for child in kids:
        if is_flat_heading(child):
            if child.children:  # a self-contained section (flashcard with its answer)
                grouped.append(child)
                current = None
            else:
                grouped.append(child)
                current = child
        elif current is not None:
            current.children.append(child)
        else:
            grouped.append(child)
    node.children = grouped
    for child in node.children:
        restructure(child)
