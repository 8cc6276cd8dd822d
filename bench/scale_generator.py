"""The generated part of the scale benchmark's notes tree (`scale_notes.py` builds the store).

The bundled notes and the Logseq graph are copied as they are; generated outline notes are
added up to the target number of chunks. They recombine the two trees' own sentences under
headings drawn from their own titles, deterministically (a fixed seed, sorted inputs): pages in
topic folders, top headings, sub-headings, bullets and nested bullets, some pages in Markdown
heading style and some in plain outline style, so that chunks vary in size and depth. Chunks
are counted as the ingest counts them (its own reader, parser and chunker), file by file, until
the tree holds the target.

This file's bytes are part of the store's cache key (with the ingest code and the source
trees): change the generator, and the next benchmark builds a new store.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from assistant.core.text import IMAGE, MD_LINK, outline_syntax  # noqa: E402 - after the path

SOURCES = {"notes": PROJECT / "notes", "logseq": PROJECT / "training" / "trees" / "logseq" / "pages"}
SEED = 17
GENERATED = "generated"

SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
URLISH = re.compile(r"https?://\S+")
WORD = re.compile(r"[A-Za-z][A-Za-z'-]+")
ACT_AS = re.compile(r"act\s+as", re.IGNORECASE)  # persona titles: the generated notes hold none


# ------------------------------------------------------------------------------ text pools
def _clean(line: str) -> str:
    text = line.strip()
    text = re.sub(r"^(- )+", "", text).strip()
    text = re.sub(r"^#+\s*", "", text)
    text = outline_syntax(text)  # wiki links as their text, block references and macros out
    text = IMAGE.sub(lambda m: m.group(1), text)
    text = MD_LINK.sub(lambda m: m.group(1), text)
    text = URLISH.sub("", text)
    return re.sub(r"\s+", " ", text.replace("**", "").replace("`", "")).strip()


def pools() -> tuple[list[str], list[str]]:
    """Sentences (bullets) and titles (headings) of the two source trees, deduplicated, in
    file order."""
    sentences: dict[str, None] = {}
    titles: dict[str, None] = {}
    for root in SOURCES.values():
        for path in sorted(p for p in root.rglob("*") if p.suffix in (".md", ".txt")):
            titles.setdefault(path.stem.replace("___", "/"), None)
            in_code = False
            for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
                stripped = raw.strip().removeprefix("- ").strip()
                if stripped.startswith("```"):
                    in_code = not in_code
                    continue
                if in_code or "::" in raw or stripped.startswith(("|", "#+", "{{", ":")):
                    continue
                text = _clean(raw)
                if not text or ACT_AS.search(text):
                    continue
                words = WORD.findall(text)
                if 1 <= len(words) <= 6 and len(text) <= 60 and not text.endswith((".", ",", ":", "?")):
                    titles.setdefault(text, None)
                    continue
                for sentence in SENTENCE_SPLIT.split(text):
                    sentence = sentence.strip()
                    if 40 <= len(sentence) <= 280 and len(WORD.findall(sentence)) >= 6:
                        sentences.setdefault(sentence, None)
    return list(sentences), [t for t in titles if len(WORD.findall(t)) >= 1]


# ------------------------------------------------------------------------------ generator
class Generator:
    """Outline pages made of the pools, one at a time, from one seeded random stream."""

    def __init__(self, sentences: list[str], titles: list[str], seed: int = SEED):
        self.sentences = sentences
        self.titles = titles
        self.rng = random.Random(seed)
        words = sorted({w for t in titles for w in WORD.findall(t) if len(w) > 3})
        self.areas = [w.capitalize() for w in self.rng.sample(words, min(40, len(words)))]

    def heading(self) -> str:
        rng = self.rng
        first = rng.choice(self.titles)
        shape = rng.random()
        if shape < 0.55:
            return first
        if shape < 0.8:
            return f"{first} and {rng.choice(self.titles).lower()}"
        return f"{first}: {rng.choice(self.titles).lower()}"

    def bullets(self, depth: int, indent: str) -> list[str]:
        rng = self.rng
        lines = []
        for _ in range(rng.randint(2, 6)):
            lines.append(f"{indent * depth}- {rng.choice(self.sentences)}")
            if rng.random() < 0.2:
                for _ in range(rng.randint(1, 3)):
                    lines.append(f"{indent * (depth + 1)}- {rng.choice(self.sentences)}")
        return lines

    def page(self, n: int) -> tuple[str, str]:
        """(relative path, text) of generated page number `n`."""
        rng = self.rng
        area = self.areas[n % len(self.areas)]
        name = re.sub(r"[^\w .-]", "", self.heading())[:60].strip() or "Page"
        rel = f"{GENERATED}/{area}/{name} {n:05d}.md"
        indent = "\t" if rng.random() < 0.5 else "    "
        markdown_headings = rng.random() < 0.35
        lines = []
        for _ in range(rng.randint(2, 5)):
            top = self.heading()
            lines.append(f"- ## {top}" if markdown_headings else f"- {top}")
            if rng.random() < 0.3:
                lines.extend(self.bullets(1, indent))
            for _ in range(rng.randint(1, 6)):
                sub = self.heading()
                lines.append(f"{indent}- {'### ' if markdown_headings else ''}{sub}")
                lines.extend(self.bullets(2, indent))
        return rel, "\n".join(lines) + "\n"


def count_chunks(path: Path, rel: str, settings) -> int:  # noqa: ANN001
    """Chunks of one file as `ingest.pipeline.parse_tree` makes them."""
    from ingest.chunking import Chunker, aliases_of, file_path_parts
    from ingest.outline import parse_outline
    from ingest.reading import NoteFileError, read_note_file

    try:
        note = read_note_file(path, rel)
    except NoteFileError:
        return 0
    parsed = parse_outline(note.lines)
    top = file_path_parts(rel, False, parsed.properties)
    chunker = Chunker(settings.chunk_max_chars, settings.chunk_min_chars)
    return len(chunker.chunk_tree(parsed.root, rel, top, aliases_of(parsed.properties), parsed.metadata_lines).passages)


def make_tree(folder: Path, settings, target: int, log=print) -> dict:  # noqa: ANN001
    """The shared trees copied and generated pages added up to `target` chunks. Idempotent."""
    from ingest.pipeline import parse_tree

    tree = folder / "tree"
    done = folder / "tree.json"
    if done.exists():
        return json.loads(done.read_text())
    if tree.exists():
        shutil.rmtree(tree)
    tree.mkdir(parents=True)
    for name, source in SOURCES.items():
        shutil.copytree(source, tree / name)
    base = len(parse_tree(tree, settings).passages)
    sentences, titles = pools()
    gen = Generator(sentences, titles)
    total, pages = base, 0
    while total < target:
        rel, text = gen.page(pages)
        path = tree / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        total += count_chunks(path, rel, settings)
        pages += 1
    parsed = parse_tree(tree, settings)
    info = {
        "chunks": len(parsed.passages),
        "from_shared_trees": base,
        "generated_pages": pages,
        "sentence_pool": len(sentences),
        "title_pool": len(titles),
        "personas": len(parsed.personas),
    }
    done.write_text(json.dumps(info, indent=1))
    log(f"tree: {info}")
    return info
