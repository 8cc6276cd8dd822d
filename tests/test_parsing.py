"""Reading, repairing, parsing and chunking the notes: no model, no store."""

from __future__ import annotations

import pytest

from assistant.core.settings import BUNDLED_NOTES
from assistant.core.text import compact, dedent_bullets, to_markdown
from ingest.chunking import Chunker, embed_text
from ingest.outline import clean_title, parse_outline
from ingest.reading import NoteFileError, decode_bytes, read_note_file, repair_line


@pytest.fixture(scope="module")
def bundled():
    note = read_note_file(BUNDLED_NOTES, BUNDLED_NOTES.name)
    parsed = parse_outline(note.lines)
    chunked = Chunker().chunk_tree(parsed.root, note.relpath, [])
    return note, parsed, chunked


def test_mac_roman_mojibake_repaired_and_sound_utf8_untouched():
    broken = "🐧 Act as a Linux Terminal – “quoted”".encode().decode("mac_roman")
    assert broken.startswith("\uf8ffüêß")
    assert repair_line(broken) == "🐧 Act as a Linux Terminal – “quoted”"
    assert repair_line("caf\u00e9 \u2014 d\u00e9j\u00e0 vu 🐧") == "caf\u00e9 \u2014 d\u00e9j\u00e0 vu 🐧"
    assert repair_line("plain ascii") == "plain ascii"


def test_all_non_ascii_lines_of_the_export_repaired(bundled):
    note, *_ = bundled
    assert note.repaired_lines == 202
    assert not any("\uf8ff" in line for line in note.lines)


def test_cp1252_and_latin1_files_are_read_not_skipped(tmp_path):
    f = tmp_path / "win.md"
    f.write_bytes("- Caf\u00e9 notes \u2013 \u201cquoted\u201d\n".encode("cp1252"))
    note = read_note_file(f, "win.md")
    assert note.encoding == "cp1252"
    assert note.lines == ["- Caf\u00e9 notes \u2013 \u201cquoted\u201d"]
    assert decode_bytes("\u00ff\u00fe".encode("latin-1") + b"\x81")[1] in ("cp1252", "latin-1")


def test_binary_and_empty_files_rejected_with_reason(tmp_path):
    binary = tmp_path / "b.md"
    binary.write_bytes(b"\x00\x01\x02 binary")
    with pytest.raises(NoteFileError, match="binary"):
        read_note_file(binary, "b.md")
    empty = tmp_path / "e.md"
    empty.write_text("  \n", encoding="utf-8")
    with pytest.raises(NoteFileError, match="empty"):
        read_note_file(empty, "e.md")


def test_persona_catalog_of_the_bundled_notes(bundled):
    *_, chunked = bundled
    personas = chunked.personas
    assert [p.persona for p in chunked.passages if p.kind == "persona"] == [p.key for p in personas]
    assert len(personas) == 158
    names = [p.name for p in personas]
    assert len(set(names)) == 157 and names.count("Life Coach") == 2
    terminal = next(p for p in personas if p.name == "Linux Terminal")
    assert terminal.emoji == "🐧" and terminal.line == 3
    assert terminal.prompt.startswith("I want you to act as a linux terminal.")
    for name in ("position Interviewer", "Language Detector", "Tech Reviewer", "Gnomist", "Personal Stylist"):
        assert name in names
    assert not any(n.endswith(":") or "\ufe0f" in n or n != n.strip() for n in names)
    character = next(p for p in personas if p.name.startswith("'Character'"))
    assert character.slots == ("character", "series")
    interviewer = next(p for p in personas if p.name == "position Interviewer")
    assert interviewer.slots == ("position",)
    assert "for the Data Engineer position" in interviewer.fill({"position": "Data Engineer"})


def test_every_line_in_exactly_one_chunk_or_knowingly_dropped(bundled):
    note, _, chunked = bundled
    seen = [n for lines in chunked.lines for n in lines] + chunked.dropped
    assert sorted(seen) == list(range(1, len(note.lines) + 1))
    for passage, lines in zip(chunked.passages, chunked.lines):
        assert (passage.first_line, passage.last_line) == (min(lines), max(lines))


def test_code_stays_code(bundled):
    *_, chunked = bundled
    chunks = chunked.passages
    text = "\n".join(c.body for c in chunks)
    assert "**def** __init__(self" in text
    cache_aside_code = next(c for c in chunks if "def get_user(self, user_id):" in c.body)
    assert 'user = cache.get("user.{0}", user_id)' in cache_aside_code.body
    assert "**if** item.key == key:" in text and "item.key\u2015key" not in text


def test_breadcrumbs_follow_the_outline(bundled):
    *_, chunked = bundled
    chunks = chunked.passages
    cache_aside = [c for c in chunks if c.path[-1] == "Cache-aside"]
    assert cache_aside and cache_aside[0].path == ("System Design", "System Design", "Cache-aside")
    assert cache_aside[0].document.startswith("System Design > System Design > Cache-aside\n")
    weak = next(c for c in chunks if "A best effort approach is taken" in c.body)
    assert weak.path[-2:] == ("Consistency patterns", "Weak consistency")
    assert not any(">>>" in part or "**" in part for c in chunks for part in c.path)


def test_levenshtein_code_attached_to_its_note(bundled):
    *_, chunked = bundled
    chunk = next(c for c in chunked.passages if "ORDER BY LEVENSHTEIN" in c.body)
    assert "Levenshtein's distance in" in chunk.body
    assert "CREATE EXTENSION fuzzystrmatch;" in chunk.body
    assert chunk.path[0] == "Levenshtein and Fuzzy Matching"


def test_chunks_fit_the_embedding_model(bundled):
    from transformers import AutoTokenizer

    from assistant.core.embeddings import model_path
    from assistant.core.settings import Settings

    tokenizer = AutoTokenizer.from_pretrained(model_path(Settings(_env_file=None)))
    *_, chunked = bundled
    notes = [c for c in chunked.passages if c.kind == "note"]
    tokens = [len(tokenizer(embed_text(c), truncation=False)["input_ids"]) for c in notes]
    assert sum(t > 256 for t in tokens) <= len(notes) // 100  # MiniLM reads 256 tokens
    assert max(len(compact(c.body)) for c in notes) <= 1000


def test_flattened_and_double_headings():
    assert clean_title("[**Link**](u)**Fail-over**[**Link**](u)**Active-passive**") == "Fail-over / Active-passive"
    assert clean_title("**Replication****Master-slave replication**") == "Replication / Master-slave replication"
    assert clean_title("**Performance vs scalability**>>>") == "Performance vs scalability"


def test_odd_input_parses_with_warnings():
    lines = [
        "- Top",
        "\t- tab child",
        "  \t- mixed child",
        "- Code",
        "    - ```",
        "def __init__(self):",
        "- this bullet is inside the unclosed fence",
        "x" * 1_000_000,
    ]
    parsed = parse_outline(lines)
    assert [(w.line, w.warning) for w in parsed.warnings] == [(3, True), (5, True)]
    assert "mixed" in parsed.warnings[0].message and "never closed" in parsed.warnings[1].message
    assert [c.title for c in parsed.root.children] == ["Top", "Code"]
    assert [c.title for c in parsed.root.children[0].children] == ["tab child", "mixed child"]
    chunked = Chunker().chunk_tree(parsed.root, "odd.md", ["odd"])
    covered = {n for lines in chunked.lines for n in lines} | set(chunked.dropped)
    assert covered == set(range(1, len(lines) + 1))
    fence = next(p for p in chunked.passages if "def __init__(self):" in p.body)
    assert "- this bullet is inside the unclosed fence" in fence.body  # code, not a bullet
    assert sum(p.body.count("x" * 600) for p in chunked.passages) >= 1_000_000 // 600
    assert all(len(c.body) <= 600 for c in chunked.passages if "x" * 100 in c.body)


def test_code_keeps_its_own_indentation_when_an_excerpt_is_shifted_left():
    # The export puts code at the margin whatever the depth of its bullet.
    body = "\n".join(
        [
            "            - To start, a budget template:",
            "            - ```",
            "class Budget(object):",
            "    def __init__(self, income):",
            "        self.income = income",
            "```",
            "            - [a guide](https://example.org/x) after it",
        ]
    )
    assert compact(body).split("\n") == [
        "- To start, a budget template:",
        "- ```",
        "class Budget(object):",
        "    def __init__(self, income):",
        "        self.income = income",
        "```",
        "- a guide after it",
    ]


def test_unfenced_code_in_a_bullet_renders_as_code():
    # The export's notebook cells: code as a bullet's continuation lines, keywords in bold.
    body = "\n".join(
        [
            "            - **Solution**",
            "            - %%writefile deck.py",
            "**class** **Deck**(object):",
            "",
            "    **def** __init__(self, cards):",
            "        self.cards = cards ** 2",
            "            - A sentence that wraps",
            "onto a second line.",
        ]
    )
    markdown = to_markdown(dedent_bullets(body))  # as the notes view shows a section
    assert markdown.startswith("- **Solution**\n- %%writefile deck.py")
    code = "```\nclass Deck(object):\n\n    def __init__(self, cards):\n        self.cards = cards ** 2\n```"
    assert code in markdown
    assert "- A sentence that wraps  \n  onto a second line." in markdown  # prose stays prose


def test_prose_properties_open_the_page_and_the_rest_stay_metadata():
    lines = [
        "summary:: Rollups keep one row per day so that dashboards never scan raw events.",
        "tags:: [[analytics]], [[postgres]]",
        "created:: 2024-05-01",
        "- Rollup tables",
        "    - refreshed every night",
    ]
    result = parse_outline(lines, title="Rollups")
    opening = " ".join(text for _, text in result.root.body)
    assert opening.startswith("Rollups keep one row per day") and "analytics" not in opening
    assert "2024-05-01" not in opening
