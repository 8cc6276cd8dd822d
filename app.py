"""The Streamlit app (`make run`): wires the views of `ui/` to the service of `assistant`.

Views: Chat, Personas (the library and your own), Notes (the tree), Index. Every decision is
the library's; each view draws the typed records the service returns.
"""

from __future__ import annotations

import streamlit as st

from assistant.core.personas import Persona
from ui.chat_page import chat_page, save_interrupted_answer
from ui.index_page import index_page, reingest
from ui.notes_page import notes_page
from ui.personas_page import personas_page
from ui.sidebar import sidebar
from ui.state import (
    Page,
    announce,
    auth_configured,
    current_session,
    load_watcher,
    page_redrawn,
    service,
    signed_in_user,
)

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def sign_in_page() -> None:
    st.title("🗂️ Notes assistant")
    st.write("This notes assistant is shared: sign in to see your own chats and personas.")
    st.button("Sign in", key="sign-in", type="primary", on_click=st.login)


def exposure_warning() -> None:
    address = st.get_option("server.address") or ""
    if address and address not in LOOPBACK and not auth_configured():
        st.warning(
            f"This app is served on {address} without sign-in: everyone who can reach it sees and can "
            "delete every chat. Configure `[auth]` in `.streamlit/secrets.toml` (see the README).",
            icon="⚠️",
        )


def no_index_page(page: Page, store_dir: str) -> None:
    st.title("🗂️ Notes assistant")
    st.warning(f"No index yet in `{store_dir}`. Ingest your notes (`{page.settings.notes_path}`) to start.")
    if st.button("Ingest the notes now", key="first-ingest"):
        reingest(page, st.progress(0.0, text="starting"))
        kind, text = st.session_state.pop("ingest_message")
        if kind == "success":
            st.rerun()
        st.error(text)


@st.fragment(run_every="2s")
def watch_notes(settings_key: str) -> None:
    """Tell this browser when the watcher re-ingested the notes."""
    watcher = load_watcher(settings_key)
    seen = st.session_state.setdefault("watch_seen", len(watcher.events))
    for event in watcher.events[seen:]:
        st.toast(event.message)
    st.session_state.watch_seen = len(watcher.events)


def main() -> None:
    st.set_page_config(page_title="Notes assistant", page_icon="🗂️", layout="wide")
    st.session_state.setdefault("view", "Chat")
    page_redrawn()  # a whole run draws what a fragment's callback asked for
    exposure_warning()
    user = signed_in_user()
    if user is None:
        sign_in_page()
        return
    svc = service()
    info = svc.index_info()
    own: list[Persona] = svc.chats.personas.own(user)
    page = Page(service=svc, user=user, own=own, favourites=svc.chats.personas.favourites(user))
    if not info.ready:
        no_index_page(page, info.store_dir)
        return
    svc.reload_if_reingested()  # `python -m ingest` ran meanwhile: answer from its index
    save_interrupted_answer(page)
    session, all_sessions = current_session(page)
    sidebar(page, session, all_sessions)
    announce()
    if svc.settings.watch_notes:
        watch_notes(svc.settings.model_dump_json())
    view = st.session_state.view
    if view == "Personas":
        personas_page(page, session)
    elif view == "Notes":
        notes_page(page)
    elif view == "Index":
        index_page(page)
    else:
        chat_page(page, session)
    svc.start_warmup(delay=0.5)  # the index and the models load once the first page is on its way


if __name__ == "__main__":
    main()
