"""The Streamlit app through `streamlit.testing.v1.AppTest`, on real stores and real history."""

from __future__ import annotations

import json
import re
import time

import pytest
from streamlit.testing.v1 import AppTest

from assistant.chat.store import ChatStore
from ingest.pipeline import run_ingest
from tests.conftest import PROJECT, make_settings

APP = str(PROJECT / "app.py")
USER = ""  # sign-in is off in these tests: the local single user


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


def texts(at) -> list[str]:
    return [m.value for m in at.markdown]


def button(at, label_start: str):
    found = [b for b in at.button if b.label.startswith(label_start)]
    assert found, [b.label for b in at.button]
    return found[0]


def toasts(at) -> list[str]:
    return [t.value for t in at.toast]


# ------------------------------------------------------------------------- first page
def test_first_page_teaches_with_examples_from_the_notes(app_env):
    at = fresh()
    assert not at.exception
    assert any("persona prompts" in t and "741" in t for t in texts(at))
    assert any("LLM_PROVIDER" in i.value for i in at.info)  # the answer mode, and how to add a model
    labels = [b.label for b in at.button]
    assert any(label.startswith("Tell me about ") for label in labels)  # questions from section titles
    assert "🐧 Linux Terminal" in labels  # personas from the catalog
    question = next(b for b in at.button if b.label.startswith("Tell me about "))
    asked = question.label
    question.click().run()
    assert [m.name for m in at.chat_message] == ["user", "assistant"]
    assert at.chat_message[0].markdown[0].value == asked
    assert at.chat_message[1].markdown[0].value.startswith("From your notes on")


def test_first_page_names_a_provider_that_cannot_start_and_the_fix(app_env, monkeypatch, tmp_path):
    monkeypatch.setenv("LLM_PROVIDER", "local")
    monkeypatch.setenv("LOCAL_MODEL_PATH", str(tmp_path / "missing.gguf"))
    at = fresh()
    assert not at.exception
    (warning,) = [w.value for w in at.warning if "cannot start" in w.value]
    assert "make install EXTRAS=local" in warning and ("missing.gguf" in warning or "llama-cpp-python" in warning)


def test_first_page_says_where_a_remote_model_writes(app_env, monkeypatch):
    monkeypatch.setenv("LLM_PROVIDER", "openai")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-sent-0000000000")
    at = fresh()
    assert not at.exception
    assert any("by api.openai.com" in c.value for c in at.caption)
    assert not any("sk-test-not-sent" in t for t in [*texts(at), *(c.value for c in at.caption)])


def test_a_described_need_from_the_first_page_offers_its_persona(app_env):
    at = fresh()
    deadline = time.time() + 180  # the examples of needs come with the models, from the warm-up
    while not any(b.key and b.key.startswith("example-need-") for b in at.button) and time.time() < deadline:
        time.sleep(1)
        at.run()
    need = next(b for b in at.button if b.key and b.key.startswith("example-need-"))
    need.click().run()
    reply = at.chat_message[1]
    assert reply.markdown[0].value.startswith("This asks for a persona")
    assert any(b.label.startswith("Use ") and b.label.endswith("in this chat") for b in reply.button)


# ------------------------------------------------------------------------------ chat
def test_ask_a_question_and_get_sources(app_env):
    at = fresh()
    at.chat_input[0].set_value("what is cache-aside?").run()
    assert not at.exception
    answer = at.chat_message[1]
    assert answer.markdown[0].value.startswith("From your notes on **Cache-aside**")
    assert answer.expander[0].label.startswith("Sources (")
    assert any("000_85ef1cbe2e838ad0.txt:" in m.value for m in answer.expander[0].markdown)
    assert any("Answered by no model" in c.value for c in answer.caption)


def test_nothing_relevant_is_said_plainly(app_env):
    at = fresh()
    at.chat_input[0].set_value("best hiking trails near Denver").run()
    assert at.chat_message[1].markdown[0].value == "Nothing relevant in your notes for this question."


def test_a_need_under_a_notes_answer_offers_personas_that_may_fit(app_env):
    at = fresh()
    at.chat_input[0].set_value("my car makes a grinding noise when I brake").run()
    reply = at.chat_message[1]
    offered = [b.label for b in reply.button]
    assert any("Automobile Mechanic" in label for label in offered), offered


def test_persona_picked_in_chat_shows_its_prompt_once_and_can_be_used(app_env):
    at = fresh()
    at.chat_input[0].set_value("act as a linux terminal").run()
    prompt_blocks = [c for c in at.code if c.value.startswith("I want you to act as a linux terminal")]
    assert len(prompt_blocks) == 1 and prompt_blocks[0].proto.wrap_lines
    button(at, "Use 🐧 Linux Terminal in this chat").click().run()
    assert any(t.startswith("#### 🐧 Linux Terminal") for t in texts(at))
    prompt_blocks = [c for c in at.code if c.value.startswith("I want you to act as a linux terminal")]
    assert len(prompt_blocks) == 1  # the header's copy only
    assert any("Role-play needs a language model" in c.value for c in at.caption)  # said once, on top
    at.chat_input[0].set_value("pwd").run()
    reply = at.chat_message[-1]
    assert "needs a language model" in reply.markdown[0].value and "LLM_PROVIDER" in reply.markdown[0].value
    assert not any("Answered by" in c.value for c in reply.caption)  # nothing answered it


def test_pick_a_persona_with_slots_and_fill_them(app_env):
    at = fresh()
    at.sidebar.radio(key="view").set_value("Personas").run()
    at.text_input(key="persona_need").set_value("character from a movie").run()
    button(at, "🎭 'Character'").click().run()
    button(at, "Use in chat").click().run()
    assert at.sidebar.radio(key="view").value == "Chat"
    assert "#### 🎭 'Character' from 'Movie/Book/Anything'" in texts(at)
    at.text_input(key="slot-character").set_value("Yoda")
    at.text_input(key="slot-series").set_value("Star Wars")
    button(at, "Save").click().run()
    assert any(c.value.startswith("I want you to act like Yoda from Star Wars.") for c in at.code)
    at.button(key="drop-persona").click().run()
    assert not any(t.startswith("#### 🎭") for t in texts(at))


def test_long_input_is_shown_collapsed_with_what_was_searched(app_env):
    at = fresh()
    at.chat_input[0].set_value("what is sharding? " + "padding words " * 1500).run()
    user = at.chat_message[0]
    assert user.expander and re.match(r"Your message \([\d,]+ characters\)", user.expander[0].label)
    assert any("Only the first 2,000 characters were searched" in c.value for c in at.chat_message[1].caption)


def interrupt(at, app_env, question: str, parts: list[str]):
    """As if the page was left (or Stop pressed) while `question` was being answered."""
    store = ChatStore(app_env)
    session = store.sessions.list(USER)[0]
    store.sessions.add_user(session.id, question, USER)
    at.session_state["generating"] = {
        "session": session.id,
        "parts": parts,
        "details": {"provider": "test", "question": question},
    }
    at.run()
    return store.sessions.messages(session.id, USER).messages


def test_an_answer_left_without_a_model_is_finished_not_lost(app_env):
    at = fresh()
    messages = interrupt(at, app_env, "what is cache-aside?", [])
    assert [m.type for m in messages] == ["human", "ai"]
    assert messages[1].content.startswith("From your notes on **Cache-aside**")
    assert not messages[1].additional_kwargs["details"].get("stopped")


def test_a_model_answer_stopped_is_kept_and_marked(app_env, monkeypatch):
    from tests.conftest import free_port

    monkeypatch.setenv("LLM_PROVIDER", "openai")
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{free_port()}/v1")
    at = fresh()
    messages = interrupt(at, app_env, "what is cache-aside?", ["Cache-aside ", "loads entries"])
    assert messages[-1].content == "Cache-aside loads entries"
    assert messages[-1].additional_kwargs["details"]["stopped"] is True
    assert any("Stopped" in c.value for c in at.chat_message[-1].caption)


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
    store = ChatStore(app_env)
    messages = store.sessions.messages(store.sessions.list(USER)[0].id, USER).messages
    assert messages[0].content == "what is cache-aside?"
    assert messages[1].additional_kwargs["details"]["error"]


def test_a_persona_from_the_library_gets_its_own_chat_once_a_chat_has_begun(app_env):
    at = fresh()
    begun = at.sidebar.selectbox(key="session_select").value
    at.chat_input[0].set_value("what is sharding?").run()
    at.sidebar.radio(key="view").set_value("Personas").run()
    at.text_input(key="persona_need").set_value("magican").run()
    button(at, "🎩 Magician").click().run()
    button(at, "Use in chat").click().run()
    assert at.sidebar.radio(key="view").value == "Chat"
    assert any(t.startswith("#### 🎩 Magician") for t in texts(at)) and not at.chat_message
    sessions = {s.id: s for s in ChatStore(app_env).sessions.list(USER)}
    assert len(sessions) == 2 and sessions[begun].persona is None  # the begun chat is unchanged


# -------------------------------------------------------------------------- personas
def test_persona_library_filters_and_favourites(app_env):
    at = fresh()
    at.sidebar.radio(key="view").set_value("Personas").run()
    assert not at.exception
    table = at.dataframe[0].value
    assert len(table) >= 158
    at.text_input(key="persona_filter").set_value("terminal").run()
    names = list(at.dataframe[0].value["Name"])
    assert {"Linux Terminal", "SQL terminal"} <= set(names) and len(names) < 20
    # no persona contains a typo: the table then ranks by name, typo or need, as the chat does
    at.text_input(key="persona_filter").set_value("linx termnal").run()
    assert at.dataframe[0].value["Name"].iloc[0] == "Linux Terminal"
    assert any("closest by name, typo or need" in c.value for c in at.caption)
    at.text_input(key="persona_filter").set_value("").run()
    at.text_input(key="persona_need").set_value("magican").run()
    button(at, "🎩 Magician").click().run()
    assert any(t.startswith("### 🎩 Magician") for t in texts(at))
    assert at.button(key="favourite").label == "☆ Star"  # short labels, never cut to "★ Unfavo…"
    at.button(key="favourite").click().run()
    assert at.button(key="favourite").label == "★ Starred"
    assert "Magician@" in next(iter(ChatStore(app_env).personas.favourites(USER)))
    assert at.dataframe[0].value["Name"].iloc[0] == "Magician"  # favourites first
    assert at.dataframe[0].value["★"].iloc[0] == "★"


def test_create_find_use_edit_and_delete_your_own_persona(app_env):
    at = fresh()
    at.sidebar.radio(key="view").set_value("Personas").run()
    inputs = {t.label: t for t in at.text_input}
    inputs["Name"].set_value("Sourdough Coach")
    inputs["Emoji"].set_value("🍞")
    at.text_area[0].set_value(
        "I want you to act as a sourdough baking coach for a {level} baker. You help keep a "
        "starter alive and fix dense or flat loaves."
    )
    button(at, "Save persona").click().run()
    assert any("Saved “Sourdough Coach”" in t for t in toasts(at))
    # the same name again is refused, and what was typed stays in the form
    inputs = {t.label: t for t in at.text_input}
    assert inputs["Name"].value == ""  # a saved persona leaves the form empty for the next
    inputs["Name"].set_value("Sourdough Coach")
    at.text_area[0].set_value("I want you to act as another coach.")
    button(at, "Save persona").click().run()
    assert any("already have a persona named" in e.value for e in at.error)
    assert {t.label: t for t in at.text_input}["Name"].value == "Sourdough Coach"
    assert at.text_area[0].value == "I want you to act as another coach."
    own = ChatStore(app_env).personas.own(USER)
    assert [p.name for p in own] == ["Sourdough Coach"] and own[0].slots == ("level",)
    # found by a typo in the chat, like the notes' own personas
    at.sidebar.radio(key="view").set_value("Chat").run()
    at.chat_input[0].set_value("sourdoh coch").run()
    button(at, "Use 🍞 Sourdough Coach in this chat").click().run()
    assert any(t.startswith("#### 🍞 Sourdough Coach") for t in texts(at))
    # edit and delete
    at.sidebar.radio(key="view").set_value("Personas").run()
    at.button(key="edit-persona").click().run()
    inputs = {t.label: t for t in at.text_input}
    inputs["Name"].set_value("Bread Coach")
    button(at, "Save persona").click().run()
    assert [p.name for p in ChatStore(app_env).personas.own(USER)] == ["Bread Coach"]
    at.button(key="edit-persona").click().run()
    button(at, "Delete “Bread Coach”").click().run()
    assert [p.name for p in ChatStore(app_env).personas.own(USER)] == ["Bread Coach"]  # asks first
    at.button(key="confirm-delete-persona").click().run()
    assert ChatStore(app_env).personas.own(USER) == []
    assert any("Deleted “Bread Coach”" in t for t in toasts(at))
    # the chat that offered it says it is gone, instead of offering to use it
    at.sidebar.radio(key="view").set_value("Chat").run()
    offers = " ".join(c.value for c in at.caption)
    assert "has since been deleted" in offers
    assert not [b for b in at.button if b.label.startswith("Use 🍞")]


# ---------------------------------------------------------------------- slash commands
def test_slash_commands_pick_a_persona_ask_the_notes_and_leave_paths_alone(app_env):
    at = fresh()
    assert "type / and a persona" in at.chat_input[0].placeholder
    at.chat_input[0].set_value("/linx termnal").run()
    assert any(t.startswith("#### 🐧 Linux Terminal") for t in texts(at))  # picked for this chat at once
    at.sidebar.button(key="new-chat").click().run()
    at.chat_input[0].set_value("/notes act as a cache").run()
    assert at.chat_message[1].markdown[0].value.startswith("From your notes on")
    at.sidebar.button(key="new-chat").click().run()
    at.chat_input[0].set_value("/etc/hosts").run()
    assert not at.exception and at.chat_message[0].markdown[0].value == "/etc/hosts"
    assert not any(t.startswith("#### ") for t in texts(at))  # no persona picked
    at.sidebar.button(key="new-chat").click().run()
    at.chat_input[0].set_value("/").run()
    assert "star" in at.chat_message[1].markdown[0].value.casefold()  # the favourites, or how to star one


def test_a_chat_is_named_by_its_first_question(app_env):
    at = fresh()
    at.chat_input[0].set_value("How does consistent hashing spread keys?").run()
    assert at.subheader[0].value == "How does consistent hashing spread keys?"
    assert "How does consistent hashing spread keys?" in at.sidebar.selectbox(key="session_select").options


# -------------------------------------------------------------------------- sessions
def test_sessions_create_switch_rename_delete_with_confirmation(app_env):
    at = fresh()
    first = at.sidebar.selectbox(key="session_select").value
    at.chat_input[0].set_value("what is sharding?").run()
    at.sidebar.button(key="new-chat").click().run()
    select = at.sidebar.selectbox(key="session_select")
    assert len(select.options) == 2 and not at.chat_message
    at.sidebar.button(key="new-chat").click().run()  # this one is still empty: no third chat
    select = at.sidebar.selectbox(key="session_select")
    assert len(select.options) == 2 and any("still empty" in t for t in toasts(at))
    select.set_value(first).run()
    assert at.chat_message[0].markdown[0].value == "what is sharding?"
    at.text_input(key=f"rename-{first}-what is sharding?").set_value("Sharding chat")
    at.button(key="rename").click().run()
    assert at.subheader[0].value == "Sharding chat" and any("Renamed" in t for t in toasts(at))

    again = fresh()  # a new browser session on the same database
    assert set(again.sidebar.selectbox(key="session_select").options) == {"Sharding chat"} | {
        s.name for s in ChatStore(app_env).sessions.list(USER)
    }
    again.sidebar.selectbox(key="session_select").set_value(first).run()
    again.button(key="delete").click().run()
    assert len(again.sidebar.selectbox(key="session_select").options) == 2  # not yet: asks first
    assert any("Delete “Sharding chat”" in w.value for w in again.warning)
    again.button(key="cancel-delete").click().run()
    assert len(again.sidebar.selectbox(key="session_select").options) == 2
    again.button(key="delete").click().run()
    again.button(key="confirm-delete").click().run()
    assert len(again.sidebar.selectbox(key="session_select").options) == 1
    assert any("Deleted “Sharding chat”" in t for t in toasts(again))


def test_export_and_import_round_trip_with_a_clear_name(app_env):
    at = fresh()
    at.chat_input[0].set_value("what is cache-aside?").run()
    store = ChatStore(app_env)
    session = store.sessions.list(USER)[0]
    exported = store.transfer.export_json(session.id, USER)
    markdown = store.transfer.export_markdown(session.id, USER)
    assert "**You:**" in markdown and "what is cache-aside?" in markdown and "[1] " in markdown
    imported = store.transfer.import_json(exported, USER)
    assert imported.name == f"{session.name} (imported)"
    assert json.loads(store.transfer.export_json(imported.id, USER))["messages"] == json.loads(exported)["messages"]
    with pytest.raises(Exception, match="not a chat session export"):
        store.transfer.import_json('{"hello": 1}', USER)
    at = fresh()
    options = at.sidebar.selectbox(key="session_select").options
    assert session.name in options and f"{session.name} (imported)" in options


# ------------------------------------------------------------------------ notes, index
def test_notes_browser_is_a_tree_of_rendered_sections(app_env):
    at = fresh()
    at.chat_input[0].set_value("what is cache-aside?").run()
    button(at, "Open in notes browser").click().run()
    assert at.sidebar.radio(key="view").value == "Notes"
    assert at.markdown[0].value == "### Cache-aside" or any(t == "### Cache-aside" for t in texts(at))
    body = "\n".join(texts(at))
    assert "The application is responsible for reading and writing from storage" in body
    assert ">>>" not in body and "](https://github.com/donnemartin" not in body.split("### Cache-aside")[1][:200]
    tree = [b.label for b in at.button if b.key and b.key.startswith("tree-")]
    assert any(label.strip().endswith("Cache-aside") for label in tree)  # the linked section is in view
    assert any("▾" in label for label in tree)  # its ancestors are open
    at.text_input(key="browse_filter").set_value("Levenshtein PostgreSQL").run()
    match = next(b for b in at.button if b.key and b.key.startswith("match-"))
    match.click().run()
    assert "CREATE EXTENSION fuzzystrmatch;" in "\n".join(texts(at))


def test_index_panel_says_when_in_words_and_reingests(app_env):
    at = fresh()
    at.sidebar.radio(key="view").set_value("Index").run()
    assert any(
        re.search(r"ingested \*\*(just now|\d+ (minute|hour)s? ago|yesterday|\d+ days ago)", t) for t in texts(at)
    ), texts(at)
    at.button(key="reingest").click().run()
    assert any("unchanged" in s.value for s in at.success), [e.value for e in at.error]


def test_sign_in_is_asked_when_auth_is_configured(app_env):
    at = AppTest.from_file(APP, default_timeout=180)
    at.secrets["auth"] = {
        "redirect_uri": "http://127.0.0.1:8501/oauth2callback",
        "cookie_secret": "x" * 32,
        "client_id": "c",
        "client_secret": "s",
        "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration",
    }
    at.run()
    assert not at.exception
    assert [b.label for b in at.button] == ["Sign in"] and not at.chat_input


def test_two_chats_with_the_same_name_stay_apart(app_env):
    store = ChatStore(app_env)
    first, second = store.sessions.create(USER, "Same name"), store.sessions.create(USER, "Same name")
    at = fresh()
    select = at.sidebar.selectbox(key="session_select")
    assert len(set(select.options)) == len(select.options)  # the picker tells them apart
    select.set_value(first.id).run()
    at.chat_input[0].set_value("what is sharding?").run()
    assert store.sessions.count_messages(first.id) == 2 and store.sessions.count_messages(second.id) == 0
