"""The Chat view: the first page of an empty chat, the persona in use, the conversation and
the question box. The conversation is a fragment: a question reruns it alone, not the page."""

from __future__ import annotations

import streamlit as st
from langchain_core.messages import BaseMessage
from streamlit.runtime.scriptrunner import get_script_run_ctx

from assistant.answer.records import Answer
from assistant.chat.schema import ChatSession, HistoryError
from assistant.core.personas import Persona, PersonaRef
from assistant.core.text import CONTROL, QueryError, to_markdown
from ui.state import Page, ask, crumb, honour_redraw, open_section, shorten, use_persona

LONG_MESSAGE_CHARS = 600  # longer messages are shown collapsed
PLACEHOLDER = "Ask your notes, describe a need, or type / and a persona's name…"
NOTES_PLACEHOLDER = "Ask your notes…"  # a tree with no persona prompts


def chat_page(page: Page, session: ChatSession) -> None:
    st.subheader(session.name)
    persona = page.persona(session.persona)
    if session.persona and persona is None:
        st.info("The persona of this chat has since been deleted: the chat goes on without it.", icon="🗑️")
    if persona is not None:
        persona_header(page, session, persona)
    conversation(page, session.id)


# ----------------------------------------------------------------------------- persona in use
def persona_header(page: Page, session: ChatSession, persona: Persona) -> None:
    with st.container(border=True):
        top = st.columns([6, 1])
        top[0].markdown(f"#### {persona.emoji} {persona.name}".replace("  ", " "))
        top[1].button(
            "Drop persona",
            key="drop-persona",
            on_click=lambda: page.chats.sessions.set_persona(session.id, None, {}, page.user),
        )
        if persona.slots:
            with st.form("slots"):
                st.caption("This prompt has template slots: fill them before the first turn.")
                values = {s: st.text_input(s, value=session.slots.get(s, ""), key=f"slot-{s}") for s in persona.slots}
                if st.form_submit_button("Save"):
                    page.chats.sessions.set_persona(session.id, persona.key, values, page.user)
                    session.slots = values
        st.code(persona.fill(session.slots), language=None, wrap_lines=True)
        status = page.service.provider_status
        if status.provider.name == "none" or status.problem:
            st.caption(
                "Role-play needs a language model: set `LLM_PROVIDER` in `.env` (see the README). "
                "Until then, copy the prompt above into any chat app."
            )


# ----------------------------------------------------------------------------- first page
def first_page(page: Page, session: ChatSession) -> None:
    """What an empty chat offers: what the notes hold, the answer mode, and things to try."""
    service = page.service
    info = service.index_info()
    topics = service.example_questions()
    needs = service.example_needs()
    own = f" (and **{len(page.own)}** of your own)" if page.own else ""
    personas = info.personas + len(page.own)
    if personas:
        st.markdown(
            f"Your notes hold **{info.chunks}** passages and **{info.personas}** persona prompts{own}. Ask a "
            "question, or describe what you need and a persona that fits is offered."
        )
    else:  # no persona to offer: say what the notes hold, promise nothing else
        st.markdown(f"Your notes hold **{info.chunks}** passages. Ask a question and the answer quotes them.")
    answer_mode(page)
    if service.crosslingual_pending():
        filling_notice(page)
    if not personas:
        st.markdown("**Ask your notes**")
        for n, question in enumerate(topics):
            st.button(question, key=f"example-q-{n}", on_click=ask, args=(question,))
        return
    left, middle, right = st.columns(3)
    with left:
        st.markdown("**Ask your notes**")
        for n, question in enumerate(topics):
            st.button(question, key=f"example-q-{n}", on_click=ask, args=(question,))
    with middle:
        if needs:
            st.markdown("**Describe a need**")
        for n, (request, persona) in enumerate(needs):
            st.button(
                shorten(request),
                key=f"example-need-{n}",
                on_click=ask,
                args=(request,),
                help=f"{request}\n\n(finds {persona.name})",
            )
    with right:
        st.markdown("**Use a persona**")
        for p in service.example_personas(page.own, page.favourites):
            st.button(
                f"{p.emoji} {p.name}".strip(),
                key=f"example-p-{p.key}",
                on_click=use_persona,
                args=(page, session.id, p.key),
            )


def answer_mode(page: Page) -> None:
    """Which model answers and where, or why the one asked for cannot, and what fixes it."""
    status = page.service.provider_status
    if status.problem:
        st.warning(
            f"**{status.provider.label}** cannot start: {status.problem}. Answers are quoted from your notes "
            f"until it can. Fix: `{status.fix}`",
            icon="⚠️",
        )
    elif status.provider.name == "none":
        roles = " and role-play personas" if page.service.index_info().personas or page.own else ""
        st.info(
            "Answers are quoted from your notes (no language model); nothing leaves this machine. To have a model "
            f"write answers{roles}, set `LLM_PROVIDER` (ollama, openai or local) in `.env`: see "
            "*Configuration* in the README.",
            icon="💡",
        )
    elif status.provider.name == "local":
        st.info(
            f"Answers are written by **{status.provider.label}**, a small model running on this machine: it often "
            "invents facts. Each answer is checked against the passages it was given, and marked *unverified* when it "
            "cites none of them.",
            icon="🧪",
        )
    else:
        provider = status.provider
        where = "on this machine" if not provider.remote else f"by {provider.where}: your questions and the passages "
        suffix = "" if not provider.remote else "found for them are sent there"
        st.caption(f"Answers are written by {provider.label}, {where}{suffix}, citing your notes.")


@st.fragment(run_every="2s")
def filling_notice(page: Page) -> None:
    """While the cross-lingual views are filled in behind: search is in English for now."""
    filling = page.service.filling
    if not page.service.crosslingual_pending():
        st.caption("🌐 Questions in any language now reach your notes.")
        return
    done, total = filling or (0, 0)
    progress = f": {done:,} of {total:,} texts" if total else ""
    st.caption(f"🌐 Preparing search across languages{progress}. Questions in English work already.")


# ----------------------------------------------------------------------------- conversation
@st.fragment
def conversation(page: Page, session_id: str) -> None:
    """The messages and the question box; a question reruns this fragment only."""
    honour_redraw()
    page.service.reload_if_reingested()  # a fragment rerun skips the app's own check
    try:
        session = page.chats.sessions.get(session_id, page.user)
    except HistoryError:
        st.rerun()
        return
    persona = page.persona(session.persona)
    history = page.chats.sessions.messages(session.id, page.user).messages
    if not history and persona is None:
        first_page(page, session)
    for i, message in enumerate(history):
        render_message(page, message, session, key=f"{session.id}-{i}")

    personas = page.service.index_info().personas or page.own
    typed = st.chat_input(PLACEHOLDER if personas else NOTES_PLACEHOLDER)
    question = typed or st.session_state.pop("pending_question", None)
    if not question:
        return
    if not question.strip():
        st.warning("Please type a question or a persona name: the message is empty.")
        return
    title = page.service.chat_title(question, page.own)
    page.chats.sessions.add_user(session.id, question, page.user, title)  # kept even if answering fails
    with st.chat_message("user"):
        show_user_text(question)
    with st.chat_message("assistant"):
        answer_now(page, session, persona, history, question)
    after = page.chats.sessions.get(session.id, page.user)
    changed = after.name != session.name or after.persona != session.persona
    st.rerun(scope="fragment" if _fragment_run() and not changed and history else "app")


def _fragment_run() -> bool:
    """True when only the conversation fragment is running: Streamlit refuses a fragment
    rerun during a full run of the app (the first question after a page load)."""
    ctx = get_script_run_ctx()
    return bool(ctx and ctx.fragment_ids_this_run)


def answer_now(
    page: Page, session: ChatSession, persona: Persona | None, history: list[BaseMessage], question: str
) -> None:
    service = page.service
    try:
        stream = service.stream(
            question, history=history, persona=persona, slots=session.slots, own=page.own, favourites=page.favourites
        )
    except QueryError as exc:
        st.warning(str(exc))
        page.chats.sessions.add_assistant(session.id, str(exc), page.user, {"error": str(exc)})
        return
    if service.engine.model is not None:
        st.button("⏹ Stop", key="stop-generating", help="End the answer here; what was written is kept.")
    st.session_state.generating = {
        "session": session.id,
        "parts": [],
        "details": {"provider": service.engine.provider.label, "question": question},
    }
    status = st.empty()
    status.caption("🔎 Searching your notes…" if persona is None else "✍️ Writing…")

    def chunks():
        for chunk in stream.text():
            status.caption("✍️ Writing…")
            st.session_state.generating["parts"].append(chunk)
            yield chunk
        status.empty()

    try:
        st.write_stream(chunks())
    except Exception as exc:  # the question is saved; say what went wrong, no traceback
        status.empty()
        st.session_state.pop("generating", None)
        message = f"Something went wrong while answering ({type(exc).__name__}: {exc}). Your question is kept."
        st.error(message)
        page.chats.sessions.add_assistant(session.id, message, page.user, {"error": message})
        return
    st.session_state.pop("generating", None)
    answer = stream.answer
    page.chats.sessions.add_assistant(session.id, answer.text, page.user, answer.to_dict())
    if answer.command == "persona" and answer.persona is not None:  # "/name": this chat takes the persona
        page.chats.sessions.set_persona(session.id, answer.persona.key, {}, page.user)
    elif answer.mode == "persona-picked" and answer.persona is not None and not history and not session.named:
        page.chats.sessions.rename(session.id, answer.persona.label, page.user)  # "act as …" names it by the persona


def save_interrupted_answer(page: Page) -> None:
    """A rerun during an answer (Stop, or a click elsewhere) ends that run. A model's answer is
    kept as far as it was written, marked stopped; an answer from the notes alone (no model:
    nothing to stop) is finished here, so that leaving the page never loses it."""
    pending = st.session_state.pop("generating", None)
    if not pending:
        return
    sessions = page.chats.sessions
    try:
        if page.service.engine.model is None:
            session = sessions.get(pending["session"], page.user)
            history = sessions.messages(session.id, page.user).messages[:-1]  # the question is the last one
            answer = page.service.stream(
                pending["details"]["question"],
                history=history,
                persona=page.persona(session.persona),
                slots=session.slots,
                own=page.own,
            ).answer
            sessions.add_assistant(session.id, answer.text, page.user, answer.to_dict())
            return
        text = "".join(pending["parts"]).strip() or "(stopped before the answer began)"
        sessions.add_assistant(pending["session"], text, page.user, {**pending["details"], "stopped": True})
    except (HistoryError, QueryError):
        pass  # the chat was deleted meanwhile


# ----------------------------------------------------------------------------- one message
def show_user_text(text: str) -> None:
    text = CONTROL.sub("", text)  # a bell or an escape typed in is invisible, not a box
    if len(text) > LONG_MESSAGE_CHARS:
        with st.expander(f"Your message ({len(text):,} characters)"):
            st.markdown(text)
    else:
        st.markdown(text)


def render_message(page: Page, message: BaseMessage, session: ChatSession, key: str) -> None:
    if message.type == "human":
        with st.chat_message("user"):
            show_user_text(str(message.content))
        return
    answer = Answer.from_dict(message.additional_kwargs.get("details"), text=str(message.content))
    with st.chat_message("assistant"):
        st.markdown(str(message.content))
        if answer.truncated:
            st.caption(f"Only the first {page.settings.query_max_chars:,} characters were searched.")
        if answer.removed:
            n = answer.removed
            st.caption(f"{n} control character{'s' if n != 1 else ''} (invisible, not text) left out of the search.")
        if answer.stopped:
            st.caption("⏹ Stopped: the answer above is what was written before you pressed Stop.")
        if answer.verified is False:
            st.warning(
                "Unverified: this answer does not cite the passages it was given (or cites ones that "
                "do not exist). Check it against the sources.",
                icon="⚠️",
            )
        if answer.mode == "persona-picked" and answer.persona is not None:
            offer(page, answer.persona, answer.prompt, session, key)
        suggestions(page, answer, session, key)
        if answer.cites_notes:
            sources(page, answer, key)
        if answer.provider and answer.mode in ("notes", "extractive", "persona"):
            written = answer.mode in ("notes", "persona")  # a model wrote it: say where, this machine too
            where = f", {answer.where}" if answer.where and (written or answer.where != "on this machine") else ""
            st.caption(f"Answered by {answer.provider}{where}")


def offer(page: Page, ref: PersonaRef, prompt: str | None, session: ChatSession, key: str) -> None:
    """The persona a message asked for: use it here, or copy its prompt; or that it is gone."""
    persona = page.persona(ref.key)
    if persona is None:
        st.caption(f"{ref.label} has since been deleted: it cannot be used any more.")
        return
    if session.persona == persona.key:
        return
    st.button(
        f"Use {persona.emoji} {persona.name} in this chat".replace("  ", " "),
        key=f"pick-{key}",
        on_click=use_persona,
        args=(page, session.id, persona.key),
        type="primary",
    )
    if prompt:
        st.code(prompt, language=None, wrap_lines=True)


def suggestions(page: Page, answer: Answer, session: ChatSession, key: str) -> None:
    """Other personas close to the best, with a button each (far-behind ones are not shown)."""
    if answer.mode not in ("extractive", "notes", "none", "persona-picked"):
        return
    refs = answer.close_suggestions()
    shown = [(ref, page.persona(ref.key)) for ref in refs]
    shown = [(ref, p) for ref, p in shown if p is not None]
    if not shown:
        return
    st.caption("Other personas that may fit" if answer.mode == "persona-picked" else "Personas that may fit")
    for col, (ref, persona) in zip(st.columns(len(shown)), shown):
        col.button(
            f"Use {ref.label}",
            key=f"fit-{key}-{ref.key}",
            on_click=use_persona,
            args=(page, session.id, persona.key),
        )


def sources(page: Page, answer: Answer, key: str) -> None:
    if not answer.sources:
        return
    with st.expander(f"Sources ({len(answer.sources)})", expanded=False):
        for n, passage in enumerate(answer.sources, 1):
            st.markdown(f"**[{n}] {crumb(page, passage.path)}**  \n`{passage.location}`")
            st.markdown(to_markdown(passage.text))
            section = f"{passage.source}|{passage.breadcrumb}"
            st.button("Open in notes browser", key=f"open-{key}-{n}", on_click=open_section, args=(page, section))
