"""The Streamlit app through `streamlit.testing.v1.AppTest`, on real stores and real history."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from assistant.history import ChatStore
from ingest.pipeline import run_ingest
from tests.conftest import PROJECT, make_settings

APP = str(PROJECT / "app.py")


@pytest.fixture()
def app_env(bundled_settings, tmp_path, monkeypatch):
    db = f"sqlite:///{tmp_path / 'history.sqlite3'}"
    monkeypatch.setenv("STORE_DIR", str(bundled_settings.store_dir))
    monkeypatch.setenv("NOTES_PATH", str(bundled_settings.notes_path))
    monkeypatch.setenv("HISTORY_DB_URL", db)
    monkeypatch.setenv("LLM_PROVIDER", "none")
    return db


def fresh() -> AppTest:
    return AppTest.from_file(APP, default_timeout=180).run()


def markdown_texts(at) -> list[str]:
    return [m.value for m in at.markdown]


def test_ask_a_question_and_get_sources(app_env):
    at = fresh()
    assert not at.exception
    at.chat_input[0].set_value("what is cache-aside?").run()
    assert not at.exception
    messages = at.chat_message
    assert [m.name for m in messages] == ["user", "assistant"]
    answer = messages[1]
    assert answer.markdown[0].value.startswith("From your notes, **System Design > System Design > Cache-aside**")
    assert answer.expander[0].label.startswith("Sources (")
    assert any("000_85ef1cbe2e838ad0.txt:989-" in m.value for m in answer.expander[0].markdown)
    assert any("Answered by extractive" in c.value for c in answer.caption)


def test_nothing_relevant_is_said_plainly(app_env):
    at = fresh()
    at.chat_input[0].set_value("best hiking trails near Denver").run()
    assert at.chat_message[1].markdown[0].value == "Nothing relevant in your notes for this question."


def test_pick_a_persona_and_fill_its_slots(app_env):
    at = fresh()
    at.sidebar.text_input(key="persona_query").set_value("character").run()
    pick = at.sidebar.selectbox(key="persona_pick")
    key = next(o for o in pick.options if "Character" in o)
    pick.set_value(key).run()
    at.sidebar.button(key="use-persona").click().run()
    assert "#### 🎭 'Character' from 'Movie/Book/Anything'" in markdown_texts(at)
    at.text_input(key="slot-character").set_value("Yoda")
    at.text_input(key="slot-series").set_value("Star Wars")
    form_submit = [b for b in at.button if b.label == "Save"][0]
    form_submit.click().run()
    assert any(c.value.startswith("I want you to act like Yoda from Star Wars.") for c in at.code)
    at.chat_input[0].set_value("Hello there").run()
    reply = at.chat_message[-1].markdown[0].value
    assert "needs a language model" in reply and "act like Yoda from Star Wars" in reply
    at.button(key="drop-persona").click().run()
    assert not any(t.startswith("#### 🎭") for t in markdown_texts(at))


def test_typing_act_as_picks_the_persona_in_chat(app_env):
    at = fresh()
    at.chat_input[0].set_value("act as a linux terminal").run()
    pick = [b for b in at.button if b.label.startswith("Use 🐧 Linux Terminal")]
    assert pick, [b.label for b in at.button]
    pick[0].click().run()
    assert any("🐧 Linux Terminal" in t for t in markdown_texts(at))


def test_sessions_create_switch_rename_delete_and_persist(app_env):
    at = fresh()
    first = at.sidebar.selectbox(key="session_select").value
    at.chat_input[0].set_value("what is sharding?").run()
    at.sidebar.text_input(key="new_name").set_value("Second")
    at.sidebar.button[[b.label for b in at.sidebar.button].index("New")].click().run()
    select = at.sidebar.selectbox(key="session_select")
    assert len(select.options) == 2 and at.subheader[0].value == "Second"
    assert not at.chat_message  # the new session is empty
    select.set_value(first).run()
    assert at.chat_message[0].markdown[0].value == "what is sharding?"
    at.text_input(key=f"rename-{first}").set_value("Sharding chat")
    at.button(key="rename").click().run()
    assert at.subheader[0].value == "Sharding chat"

    again = fresh()  # a new browser session on the same database
    assert set(again.sidebar.selectbox(key="session_select").options) == {"Sharding chat", "Second"}
    again.sidebar.selectbox(key="session_select").set_value(first).run()
    assert again.chat_message[0].markdown[0].value == "what is sharding?"
    again.button(key="delete").click().run()
    assert len(again.sidebar.selectbox(key="session_select").options) == 1


def test_export_and_import_round_trip(app_env):
    at = fresh()
    at.chat_input[0].set_value("what is cache-aside?").run()
    store = ChatStore(app_env)
    session = store.list_sessions()[0]
    exported = store.export_json(session.id)
    markdown = store.export_markdown(session.id)
    assert "**You:**" in markdown and "what is cache-aside?" in markdown and "[1] System Design" in markdown
    imported = store.import_json(exported)
    assert json.loads(store.export_json(imported.id))["messages"] == json.loads(exported)["messages"]
    with pytest.raises(Exception, match="not a session export"):
        store.import_json('{"hello": 1}')
    at = fresh()
    assert at.sidebar.selectbox(key="session_select").options.count(imported.name) == 2  # original and copy


def test_reingest_from_the_index_panel(app_env):
    at = fresh()
    at.sidebar.button(key="reingest").click().run()
    assert any("unchanged" in s.value for s in at.success), [e.value for e in at.error]


def test_notes_browser_and_source_link(app_env):
    at = fresh()
    at.chat_input[0].set_value("what is cache-aside?").run()
    open_buttons = [b for b in at.button if b.label == "Open in notes browser"]
    open_buttons[0].click().run()
    assert at.sidebar.radio(key="view").value == "Notes browser"
    assert at.markdown[0].value.startswith("### System Design › System Design › Cache-aside")
    assert "Cache-aside" in at.code[0].value
    at.text_input(key="browse_filter").set_value("Levenshtein PostgreSQL").run()
    assert at.main.radio[0].options[0].startswith("Levenshtein and Fuzzy Matching")
    assert "CREATE EXTENSION fuzzystrmatch;" in at.code[0].value


def test_html_in_notes_and_answers_is_inert(tmp_path, monkeypatch):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "Web.md").write_text(
        "- Scripts\n    - <script>alert('xss')</script> inline scripts are blocked by CSP\n"
        "    - <img src=x onerror=alert(1)> images with handlers too\n",
        encoding="utf-8",
    )
    settings = make_settings(tmp_path / "store", notes)
    run_ingest(settings)
    monkeypatch.setenv("STORE_DIR", str(settings.store_dir))
    monkeypatch.setenv("NOTES_PATH", str(notes))
    monkeypatch.setenv("HISTORY_DB_URL", f"sqlite:///{tmp_path / 'h.sqlite3'}")
    monkeypatch.setenv("LLM_PROVIDER", "none")
    at = fresh()
    at.chat_input[0].set_value("inline scripts blocked by CSP <b>now</b>").run()
    assert not at.exception
    shown = [m for msg in at.chat_message for m in msg.markdown]
    assert any("<script>alert('xss')</script>" in m.value for m in shown)
    assert all(not m.proto.allow_html for m in at.markdown)


def test_failed_model_call_keeps_the_question_and_says_why(app_env, monkeypatch):
    from tests.conftest import free_port

    monkeypatch.setenv("LLM_PROVIDER", "openai")
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{free_port()}/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-never-shown-0123456789")
    monkeypatch.setenv("LLM_MAX_RETRIES", "0")
    monkeypatch.setenv("LLM_TIMEOUT", "3")
    at = fresh()
    at.chat_input[0].set_value("what is cache-aside?").run()
    assert not at.exception
    reply = at.chat_message[1].markdown[0].value
    assert "could not be reached" in reply and "From your notes" in reply
    assert "sk-never-shown" not in "".join(m.value for m in at.markdown)
    messages = ChatStore(app_env).messages(ChatStore(app_env).list_sessions()[0].id).messages
    assert messages[0].content == "what is cache-aside?"
    assert messages[1].additional_kwargs["details"]["error"]
