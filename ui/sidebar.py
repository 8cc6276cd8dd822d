"""The sidebar: the views, and the chats (new, switch, rename, delete, export, import)."""

from __future__ import annotations

from collections import Counter

import streamlit as st

from assistant.chat.schema import ChatSession
from ui.state import VIEWS, Page, json_import, new_session


def chat_labels(all_sessions: list[ChatSession]) -> dict[str, str]:
    """The picker's label of each chat. Streamlit's selectbox sends back the label, not the id,
    and maps a label that two chats share to the last of them: same-named chats get the start
    of their id."""
    counts = Counter(s.name for s in all_sessions)
    return {s.id: s.name if counts[s.name] == 1 else f"{s.name} · {s.id[:6]}" for s in all_sessions}


def switch_session(ids: list[str]) -> None:
    # A label that names none of the chats it was drawn with (renamed meanwhile) is no choice.
    if st.session_state.session_select in ids:
        st.session_state.session_id = st.session_state.session_select
    st.session_state.pop("confirm_delete", None)


def delete_session(page: Page, session_id: str, name: str) -> None:
    page.chats.sessions.delete(session_id, page.user)
    st.session_state.pop("session_id", None)
    st.session_state.pop("confirm_delete", None)
    st.session_state.toast = f"Deleted “{name}”."


def sidebar(page: Page, session: ChatSession, all_sessions: list[ChatSession]) -> None:
    sb = st.sidebar
    sb.title("🗂️ Notes assistant")
    if page.user:
        sb.caption(f"Signed in as {page.user}")
        sb.button("Sign out", key="sign-out", on_click=st.logout)
    sb.radio("View", VIEWS, key="view")

    sb.subheader("Chats")
    ids = [s.id for s in all_sessions]
    labels = chat_labels(all_sessions)
    st.session_state.session_select = session.id  # the widget follows the current chat
    sb.selectbox("Chat", ids, format_func=labels.get, key="session_select", on_change=switch_session, args=(ids,))
    sb.button("New chat", key="new-chat", on_click=new_session, args=(page,))
    with sb.expander("Rename, delete, export, import"):
        manage_chat(page, session)


def manage_chat(page: Page, session: ChatSession) -> None:
    with st.form(f"rename-form-{session.id}", border=False):  # Enter renames, as a button click does
        # Keyed by the name too: once the first question names the chat, the field shows that name
        # (a field kept from before would still say "New chat", and Rename would undo the name).
        new = st.text_input("Rename to", value=session.name, key=f"rename-{session.id}-{session.name}")
        if st.form_submit_button("Rename", key="rename") and new.strip() and new != session.name:
            page.chats.sessions.rename(session.id, new, page.user)
            st.session_state.toast = f"Renamed to “{new.strip()}”."
            st.rerun()
    if st.session_state.get("confirm_delete") == session.id:
        st.warning(f"Delete “{session.name}” and its messages?")
        cols = st.columns(2)
        cols[0].button(
            "Yes, delete", key="confirm-delete", type="primary", on_click=delete_session,
            args=(page, session.id, session.name),
        )  # fmt: skip
        cols[1].button("Cancel", key="cancel-delete", on_click=lambda: st.session_state.pop("confirm_delete", None))
    else:
        st.button("Delete this chat", key="delete", on_click=lambda: st.session_state.update(confirm_delete=session.id))
    transfer = page.chats.transfer
    st.download_button(
        "Export Markdown", transfer.export_markdown(session.id, page.user), file_name=f"{session.name}.md",
        mime="text/markdown", key="export-md",
    )  # fmt: skip
    st.download_button(
        "Export JSON", transfer.export_json(session.id, page.user), file_name=f"{session.name}.json",
        mime="application/json", key="export-json",
    )  # fmt: skip

    def importer(data: bytes) -> str:
        imported = transfer.import_json(data, page.user)
        st.session_state.session_id = imported.id
        return f"Imported as “{imported.name}”."

    json_import("Import a JSON export", "Import", "import", importer)
