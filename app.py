"""The Streamlit UI: a thin layer over `assistant` (answers, personas, history) and `ingest`.

Run with `make run`. No retrieval logic lives here; every decision is the library's.
"""

from __future__ import annotations

import streamlit as st

from assistant.browse import areas, filter_sections, section_of_chunk, sections
from assistant.history import ChatStore, HistoryError
from assistant.service import Assistant
from assistant.settings import Settings
from assistant.text import QueryError
from ingest.pipeline import IngestError, run_ingest

st.set_page_config(page_title="Notes assistant", page_icon="🗂️", layout="wide")


# ----------------------------------------------------------------------------- resources
@st.cache_resource(show_spinner="Loading your notes…")
def load_assistant(settings_key: str) -> Assistant:
    """One assistant (index, model, chain) per server process and configuration."""
    return Assistant(Settings())


@st.cache_resource
def load_chat_store(url: str) -> ChatStore:
    return ChatStore(url)


@st.cache_data(show_spinner=False)
def load_sections(_assistant: Assistant, collection: str):
    return sections(_assistant.index)


settings = Settings()
assistant = load_assistant(settings.model_dump_json())
store = load_chat_store(settings.resolved_history_url)
state = st.session_state
state.setdefault("view", "Chat")
state.setdefault("browse_id", None)


# ----------------------------------------------------------------------------- actions
def current_session():
    all_sessions = store.list_sessions()
    if not all_sessions:
        all_sessions = [store.create("First chat")]
    ids = [s.id for s in all_sessions]
    if state.get("session_id") not in ids:
        state.session_id = ids[0]
    return next(s for s in all_sessions if s.id == state.session_id), all_sessions


def new_session() -> None:
    state.session_id = store.create(state.get("new_name", "")).id
    state.new_name = ""


def switch_session() -> None:
    state.session_id = state.session_select


def delete_session(session_id: str) -> None:
    store.delete(session_id)
    state.pop("session_id", None)


def use_persona(session_id: str, key: str) -> None:
    store.set_persona(session_id, key, {})
    state.view = "Chat"


def drop_persona(session_id: str) -> None:
    store.set_persona(session_id, None, {})


def open_in_browser(chunk_id: str) -> None:
    state.view = "Notes browser"
    state.browse_id = chunk_id


def reingest(progress_bar) -> None:
    def progress(stage: str, done: int, total: int) -> None:
        progress_bar.progress(done / max(total, 1), text=f"{stage}: {done}/{total} chunks")

    try:
        report = run_ingest(settings, progress=progress)
    except IngestError as exc:
        state.ingest_message = ("error", str(exc))
        return
    except Exception as exc:  # the previous index stays in use; say what happened
        state.ingest_message = ("error", f"ingest failed ({type(exc).__name__}: {exc}); the previous index is still in use")
        return
    assistant.reload()
    load_sections.clear()
    state.ingest_message = (
        "success",
        f"{report.chunks} chunks, {report.personas} personas: {report.added} added, {report.updated} updated, "
        f"{report.removed} removed, {report.unchanged} unchanged ({report.seconds:.1f} s)",
    )


# ----------------------------------------------------------------------------- rendering
def render_sources(details: dict, key: str) -> None:
    sources = details.get("sources") or []
    if sources:
        with st.expander(f"Sources ({len(sources)})", expanded=False):
            for n, src in enumerate(sources, 1):
                st.markdown(f"**[{n}] {src['breadcrumb']}**  \n`{src['source']}:{src['first_line']}-{src['last_line']}`")
                st.markdown(src["text"])
                st.button("Open in notes browser", key=f"open-{key}-{n}", on_click=open_in_browser, args=(src["id"],))
    if details.get("provider"):
        st.caption(f"Answered by {details['provider']}")


def render_message(message, session, key: str) -> None:
    role = "user" if message.type == "human" else "assistant"
    with st.chat_message(role):
        st.markdown(str(message.content))
        details = message.additional_kwargs.get("details") or {}
        if details.get("picked_persona"):
            persona = assistant.catalog.get(details["picked_persona"])
            if persona is not None and session.persona != persona.key:
                st.button(f"Use {persona.emoji} {persona.name} in this chat", key=f"pick-{key}",
                          on_click=use_persona, args=(session.id, persona.key))
            if details.get("prompt"):
                st.code(details["prompt"], language=None, wrap_lines=True)
        render_sources(details, key)


def answer_details(answer) -> dict:
    return {
        "sources": [{"id": p.id, "breadcrumb": p.breadcrumb, "path": p.path, "source": p.source,
                     "first_line": p.first_line, "last_line": p.last_line, "text": p.text} for p in answer.sources],
        "provider": answer.provider,
        "error": answer.error,
        "mode": answer.mode,
        "picked_persona": answer.persona.key if answer.mode == "persona-picked" else None,
        "prompt": answer.prompt if answer.mode == "persona-picked" else None,
    }


def chat_view(session) -> None:
    persona = assistant.catalog.get(session.persona) if session.persona else None
    if persona is not None:
        with st.container(border=True):
            top = st.columns([6, 1])
            top[0].markdown(f"#### {persona.emoji} {persona.name}")
            top[1].button("Drop persona", key="drop-persona", on_click=drop_persona, args=(session.id,))
            if persona.slots:
                with st.form("slots"):
                    st.caption("This prompt has template slots: fill them before the first turn.")
                    values = {s: st.text_input(s, value=session.slots.get(s, ""), key=f"slot-{s}") for s in persona.slots}
                    if st.form_submit_button("Save"):
                        store.set_persona(session.id, persona.key, values)
                        session.slots = values
            st.code(persona.fill(session.slots), language=None, wrap_lines=True)
    else:
        st.caption("Ask your notes a question, or ask for a persona (\"act as a linux terminal\").")

    history = store.messages(session.id).messages
    for i, message in enumerate(history):
        render_message(message, session, key=f"{session.id}-{i}")

    question = st.chat_input("Ask your notes, or name a persona…")
    if not question:
        return
    with st.chat_message("user"):
        st.markdown(question)
    if not question.strip():
        st.warning("Please type a question or a persona name: the message is empty.")
        return
    store.add_user(session.id, question)  # kept even if the model call fails
    with st.chat_message("assistant"):
        final = []

        def tokens():
            for item in assistant.engine.stream(question, history=history, persona=persona, slots=session.slots):
                if isinstance(item, str):
                    yield item
                else:
                    final.append(item)

        try:
            st.write_stream(tokens())
        except QueryError as exc:
            st.warning(str(exc))
            store.add_assistant(session.id, str(exc), error=str(exc))
            return
        except Exception as exc:  # the question is saved; say what went wrong, no traceback
            message = f"Something went wrong while answering ({type(exc).__name__}: {exc}). Your question is kept."
            st.error(message)
            store.add_assistant(session.id, message, error=message)
            return
        answer = final[0]
        details = answer_details(answer)
        store.add_assistant(session.id, answer.text, **details)
    st.rerun()


def notes_view() -> None:
    info = assistant.index_info()
    all_sections = load_sections(assistant, info["collection"])
    left, right = st.columns([2, 3])
    with left:
        text = st.text_input("Filter sections", key="browse_filter", placeholder="words in a title or text")
        area = st.selectbox("Area", ["All areas"] + areas(all_sections), key="browse_area")
        matches = filter_sections(all_sections, text, None if area == "All areas" else area)
        st.caption(f"{len(matches)} of {len(all_sections)} sections")
        linked = section_of_chunk(all_sections, assistant.index, state.browse_id) if state.browse_id else None
        options = [s.id for s in matches[:500]]
        by_id = {s.id: s for s in all_sections}
        selected = None
        if options:
            start = options.index(linked.id) if linked is not None and linked.id in options else 0
            choice = st.radio("Sections", options, index=start,
                              format_func=lambda i: " › ".join(by_id[i].path) or by_id[i].source,
                              key=f"browse-radio-{state.browse_id}", label_visibility="collapsed")
            selected = by_id[choice]
    with right:
        if selected is None:
            st.info("No section matches the filter.")
            return
        st.markdown(f"### {' › '.join(selected.path)}")
        st.caption(f"{selected.source}, lines {selected.first_line}-{selected.last_line}")
        st.code(selected.text, language="markdown", wrap_lines=True)


def sidebar(session, all_sessions) -> None:
    sb = st.sidebar
    sb.title("🗂️ Notes assistant")
    sb.radio("View", ["Chat", "Notes browser"], key="view", horizontal=True)

    sb.subheader("Chat sessions")
    ids = [s.id for s in all_sessions]
    names = {s.id: s.name for s in all_sessions}
    state.session_select = session.id  # the widget follows the current session (new, import, delete)
    sb.selectbox("Session", ids, format_func=names.get, key="session_select", on_change=switch_session)
    cols = sb.columns([3, 2])
    cols[0].text_input("New session name", key="new_name", label_visibility="collapsed", placeholder="New chat name")
    cols[1].button("New", on_click=new_session)
    with sb.expander("Rename, delete, export, import"):
        new = st.text_input("Rename to", value=session.name, key=f"rename-{session.id}")
        if st.button("Rename", key="rename") and new.strip() and new != session.name:
            store.rename(session.id, new)
            st.rerun()
        st.button("Delete this session", key="delete", on_click=delete_session, args=(session.id,))
        st.download_button("Export Markdown", store.export_markdown(session.id), file_name=f"{session.name}.md",
                           mime="text/markdown", key="export-md")
        st.download_button("Export JSON", store.export_json(session.id), file_name=f"{session.name}.json",
                           mime="application/json", key="export-json")
        upload = st.file_uploader("Import a JSON export", type=["json"], key="import")
        if upload is not None and st.button("Import", key="do-import"):
            try:
                imported = store.import_json(upload.getvalue())
            except HistoryError as exc:
                st.error(str(exc))
            else:
                state.session_id = imported.id
                st.rerun()

    sb.subheader("Personas")
    query = sb.text_input("Find a persona", key="persona_query", placeholder="name, typo or part of it")
    found = assistant.catalog.search(query, limit=30, cutoff=50) if query else [
        (p, 100.0) for p in assistant.catalog.personas]
    if found:
        keys = [p.key for p, _ in found]
        by_key = {p.key: p for p, _ in found}
        pick = sb.selectbox("Persona", keys, key="persona_pick", label_visibility="collapsed",
                            format_func=lambda k: f"{by_key[k].emoji} {by_key[k].name} — {by_key[k].prompt[:60]}…")
        sb.button("Use in this session", key="use-persona", on_click=use_persona, args=(session.id, pick))
    else:
        sb.caption("No persona matches.")

    info = assistant.index_info()
    with sb.expander("Index"):
        st.markdown(f"**{info['chunks']}** chunks, **{info['personas']}** personas  \n"
                    f"ingested {info['ingested_at']}  \nnotes: `{info['notes_path']}`  \nstore: `{info['store']}`")
        bar = st.empty()
        if st.button("Re-ingest", key="reingest"):
            reingest(bar.progress(0.0, text="starting"))
        kind, text = state.pop("ingest_message", (None, None)) or (None, None)
        if kind == "success":
            st.success(text)
        elif kind == "error":
            st.error(text)
        for err in info["errors"]:
            where = f"{err['file']}:{err['line']}" if err.get("line") else err["file"]
            if err.get("warning"):
                st.caption(f"{where}: {err['message']}")
            else:
                st.warning(f"{where}: {err['message']}")

    with sb.expander("Settings"):
        engine = assistant.engine
        st.markdown(f"Answers: **{engine.provider.label}**  \nProvider setting: `{settings.llm_provider}`  \n"
                    f"Embeddings: `{settings.embedding_model or 'all-MiniLM-L6-v2 (bundled)'}`")
        if assistant.provider_error:
            st.warning(assistant.provider_error)


# ----------------------------------------------------------------------------- page
def main() -> None:
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
    session, all_sessions = current_session()
    sidebar(session, all_sessions)
    if state.view == "Notes browser":
        notes_view()
    else:
        st.subheader(session.name)
        chat_view(session)


main()
if assistant.index_info()["ready"]:
    # Load the index and the model in the background once the first page is on its way.
    assistant.start_warmup(delay=0.5)
