"""What every view shares: the cached service (one per server process and configuration),
the signed-in user, the browser session's state and the small actions views trigger.

Views read typed records from the service (sessions, personas, answers, index info); they
call only the service and its chat store.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import streamlit as st

from assistant.chat.schema import MAX_IMPORT_BYTES, ChatSession, HistoryError
from assistant.chat.store import ChatStore
from assistant.core.personas import Persona
from assistant.core.settings import Settings
from assistant.service import Service

VIEWS = ["Chat", "Personas", "Notes", "Index"]
MAX_IMPORT_MB = MAX_IMPORT_BYTES // (1024 * 1024)


@st.cache_resource(show_spinner="Loading your notes…")
def load_service(settings_key: str) -> Service:
    """One service (index, models, chains, chat store) per server process and configuration."""
    return Service(Settings())


@st.cache_resource
def load_watcher(settings_key: str) -> object:
    """The notes watcher (WATCH_NOTES=true), one per server process."""
    return load_service(settings_key).watch_notes()


@dataclass(frozen=True)
class Page:
    """What one run of the app works with: the service, the user and their data."""

    service: Service
    user: str  # "" is the local single user (sign-in off)
    own: list[Persona]
    favourites: set[str]

    @property
    def chats(self) -> ChatStore:
        return self.service.chats

    @property
    def settings(self) -> Settings:
        return self.service.settings

    def persona(self, key: str | None) -> Persona | None:
        """A persona by key, the user's own included; None when it is gone."""
        if not key:
            return None
        for p in self.own:
            if p.key == key:
                return p
        return self.service.catalog.get(key) if key and not key.startswith("mine-") else None


def service() -> Service:
    settings = Settings()
    return load_service(settings.model_dump_json())


def state() -> st.runtime.state.SessionStateProxy:
    return st.session_state


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


# ----------------------------------------------------------------------------- actions
def current_session(page: Page) -> tuple[ChatSession, list[ChatSession]]:
    all_sessions = page.chats.sessions.list(page.user)
    if not all_sessions:
        all_sessions = [page.chats.sessions.create(page.user)]
    ids = [s.id for s in all_sessions]
    if st.session_state.get("session_id") not in ids:
        st.session_state.session_id = ids[0]
    return next(s for s in all_sessions if s.id == st.session_state.session_id), all_sessions


def new_session(page: Page) -> None:
    """A new chat, unless the current one is still empty: a list of empty chats helps nobody."""
    st.session_state.view = "Chat"
    current = st.session_state.get("session_id")
    sessions = page.chats.sessions
    if (
        current
        and sessions.count_messages(current, page.user) == 0
        and sessions.get(current, page.user).persona is None
    ):
        st.session_state.toast = "This chat is still empty: ask away."
        return
    st.session_state.session_id = sessions.create(page.user).id


FULL_RERUN = "full_rerun"


def redraw_page() -> None:
    """Ask for the whole page to be drawn again after this callback. A button inside the
    conversation fragment reruns that fragment alone, but a persona picked or a view changed
    shows outside it; the fragment honours this request first thing (`honour_redraw`)."""
    st.session_state[FULL_RERUN] = True


def page_redrawn() -> None:
    st.session_state.pop(FULL_RERUN, None)


def honour_redraw() -> None:
    if st.session_state.pop(FULL_RERUN, False):
        st.rerun(scope="app")


def use_persona(page: Page, session_id: str, key: str) -> None:
    sessions = page.chats.sessions
    sessions.set_persona(session_id, key, {}, page.user)
    persona = page.persona(key)
    session = sessions.get(session_id, page.user)
    if persona is not None and not session.named and sessions.count_messages(session_id, page.user) == 0:
        sessions.rename(session_id, persona.label, page.user)  # a chat with a persona is named by it
    st.session_state.view = "Chat"
    redraw_page()


def start_with_persona(page: Page, session_id: str, key: str) -> None:
    """From the library: a chat that has begun keeps its persona; the persona gets a new chat."""
    if page.chats.sessions.count_messages(session_id, page.user) > 0:
        session_id = page.chats.sessions.create(page.user).id
        st.session_state.session_id = session_id
        st.session_state.toast = "A new chat with this persona; your other chat is unchanged."
    use_persona(page, session_id, key)


def ask(text: str) -> None:
    st.session_state.pending_question = text
    st.session_state.view = "Chat"


def open_section(page: Page, key: str) -> None:
    """The Notes view on section `key`, its ancestors opened in the tree."""
    st.session_state.view = "Notes"
    st.session_state.browse = key
    redraw_page()
    st.session_state.scroll_to = key  # the tree scrolls to it once
    section = page.service.sections.find(key)
    if section is not None:
        opened = set(st.session_state.get("open_sections", set()))
        st.session_state.open_sections = opened | {a.key for a in section.ancestors()}


def crumb(page: Page, path: tuple[str, ...] | list[str], sep: str = " > ") -> str:
    """A breadcrumb as shown: without the file's name when the notes are a single file (it
    would top every breadcrumb and tell nothing)."""
    tops = [child for root in page.service.sections.roots for child in root.children]
    parts = list(path)
    if len(tops) == 1 and parts and parts[0] == tops[0].title:
        parts = parts[1:]
    return sep.join(parts)


def shorten(text: str, limit: int = 70) -> str:
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + "…"


def announce() -> None:
    if "toast" in st.session_state:
        st.toast(st.session_state.pop("toast"))


def json_import(label: str, button: str, key: str, importer: Callable[[bytes], str]) -> None:
    """A JSON file imported on a click; `importer` stores it and says what it did (a toast).
    Refusals (too big, not an export) are shown, never raised."""
    uploads = st.session_state.get("uploads", 0)
    upload = st.file_uploader(label, type=["json"], key=f"{key}-{uploads}", max_upload_size=MAX_IMPORT_MB)
    if upload is not None and st.button(button, key=f"do-{key}"):
        try:
            st.session_state.toast = importer(upload.getvalue())
        except HistoryError as exc:
            st.error(str(exc))
        else:
            st.session_state.uploads = uploads + 1  # a fresh uploader: the file cannot go in twice
            st.rerun()
