"""The Personas view: the library (filter as you type, favourites first, find by a typo or a
need), a persona's card, and your own personas (create, edit, delete, export, import)."""

from __future__ import annotations

import streamlit as st

from assistant.chat.schema import ChatSession, HistoryError
from assistant.core.personas import Persona
from ui.state import Page, json_import, start_with_persona

CLOSEST_PERSONAS = 10  # rows the table shows when the filter is a typo or a need
TABLE_HEIGHT = 480


def personas_page(page: Page, session: ChatSession) -> None:
    st.subheader("Persona library")
    everyone = page.own + page.service.catalog.personas
    query = st.text_input(
        "Filter", key="persona_filter", type="search", live=True, placeholder="type to filter by name or prompt…"
    )
    words = query.casefold().split()
    rows = [p for p in everyone if all(w in f"{p.name} {p.prompt}".casefold() for w in words)]
    rows.sort(key=lambda p: (p.key not in page.favourites, not p.is_own))
    closest = bool(words) and not rows  # a typo or a need: rank like the chat does
    if closest:
        with st.spinner("Looking for the closest personas…"):
            rows = page.service.rank_personas(query, page.own, limit=CLOSEST_PERSONAS)
    left, right = st.columns([3, 2])
    with left:
        if closest:
            st.caption(f"No persona contains “{query.strip()}”: the closest by name, typo or need, best first")
        elif not everyone:
            st.info("Your notes hold no persona prompts. Create one of your own below: it is found by name, typo "
                    "and need like the notes' ones.")  # fmt: skip
        else:
            st.caption(f"{len(rows)} of {len(everyone)} personas · ★ favourites first · yours marked “mine”")
        if everyone:
            persona_table(page, rows)
        with st.expander("Find by a typo or a described need"):
            need = st.text_input(
                "What do you need?",
                key="persona_need",
                live=True,
                placeholder="e.g. “my car makes a grinding noise” or “magican”",
            )
            if need.strip():
                for n, p in enumerate(page.service.rank_personas(need, page.own, limit=5)):
                    st.button(
                        f"{p.emoji} {p.name}".strip(),
                        key=f"need-hit-{n}",
                        on_click=lambda k=p.key: st.session_state.update(persona_detail=k),
                    )
    with right:
        persona = page.persona(st.session_state.get("persona_detail"))
        if persona is not None:
            persona_card(page, persona, session)
        elif everyone:
            st.info("Pick a persona in the table to see its prompt.")
        own_persona_forms(page)


def persona_table(page: Page, rows: list[Persona]) -> None:
    table = {
        "★": ["★" if p.key in page.favourites else "" for p in rows],
        "": [p.emoji for p in rows],
        "Name": [("🚫 " if p.is_jailbreak else "") + p.name + (" (mine)" if p.is_own else "") for p in rows],
        "What it does": [p.summary for p in rows],
        "Slots": [", ".join(p.slots) for p in rows],
    }
    # The table is drawn afresh (new key) whenever its rows change order, and a click is read in
    # its callback against the rows it was drawn with: the card follows the persona picked.
    table_key = f"persona_table-{hash(tuple(p.key for p in rows))}"
    st.session_state.persona_rows = {table_key: [p.key for p in rows]}
    st.dataframe(
        table,
        key=table_key,
        on_select=lambda: pick_row(table_key),
        selection_mode="single-row",
        hide_index=True,
        height=TABLE_HEIGHT,
        column_config={
            "★": st.column_config.TextColumn(width=30),
            "": st.column_config.TextColumn(width=30),
            "Name": st.column_config.TextColumn(width="medium"),
            "What it does": st.column_config.TextColumn(width="large"),
        },
    )


def pick_row(table_key: str) -> None:
    rows = st.session_state.persona_rows.get(table_key, [])
    selected = st.session_state[table_key].selection.rows
    if selected and selected[0] < len(rows):
        st.session_state.persona_detail = rows[selected[0]]


def persona_card(page: Page, persona: Persona, session: ChatSession) -> None:
    with st.container(border=True):
        st.markdown(f"### {persona.emoji} {persona.name}".replace("  ", " "))
        if persona.is_jailbreak:
            st.warning(
                "This prompt asks the model to drop its rules: it is never suggested, and only its exact name "
                "picks it.",
                icon="🚫",
            )
        if persona.slots:
            st.caption("Template slots: " + ", ".join(f"`{s}`" for s in persona.slots))
        st.code(persona.prompt, language=None, wrap_lines=True)
        cols = st.columns([2, 2, 1])
        cols[0].button(
            "Use in chat",
            key="use-persona",
            type="primary",
            on_click=start_with_persona,
            args=(page, session.id, persona.key),
        )
        starred = persona.key in page.favourites
        if cols[1].button(
            "★ Starred" if starred else "☆ Star",
            key="favourite",
            help="Remove from your favourites" if starred else "Add to your favourites (shown first)",
        ):
            page.chats.personas.set_favourite(page.user, persona.key, not starred)
            st.rerun()
        if persona.is_own and cols[2].button("Edit", key="edit-persona"):
            st.session_state.editing = persona.key
            st.session_state.persona_form_round = st.session_state.get("persona_form_round", 0) + 1  # its values


def own_persona_forms(page: Page) -> None:
    editing = page.persona(st.session_state.get("editing"))
    with st.expander("Edit your persona" if editing else "Create your own persona", expanded=editing is not None):
        # A refused save keeps what was typed; a saved one starts the next form empty (new keys).
        round_ = st.session_state.setdefault("persona_form_round", 0)
        with st.form("own-persona", clear_on_submit=False):
            name = st.text_input(
                "Name", value=editing.name if editing else "", placeholder="Code Reviewer", key=f"own-name-{round_}"
            )
            emoji = st.text_input(
                "Emoji", value=editing.emoji if editing else "", max_chars=8, key=f"own-emoji-{round_}"
            )
            prompt = st.text_area(
                "Prompt",
                value=editing.prompt if editing else "",
                height=160,
                placeholder="I want you to act as … Use {slot} for values to fill in.",
                key=f"own-prompt-{round_}",
            )
            if st.form_submit_button("Save persona"):
                try:
                    saved = page.chats.personas.save(
                        page.user, name, prompt, emoji, persona_id=editing.key if editing else None
                    )
                except HistoryError as exc:
                    st.error(str(exc))
                else:
                    st.session_state.persona_detail, st.session_state.editing = saved.key, None
                    st.session_state.persona_form_round = round_ + 1
                    st.session_state.toast = f"Saved “{saved.name}”."
                    st.rerun()
        if editing is not None:
            delete_own_persona(page, editing)
    with st.expander("Export or import your personas"):
        st.download_button(
            "Export your personas (JSON)",
            page.chats.transfer.export_personas(page.user),
            file_name="my-personas.json",
            mime="application/json",
            key="export-personas",
            disabled=not page.own,
        )

        def importer(data: bytes) -> str:
            return f"Imported {len(page.chats.transfer.import_personas(data, page.user))} persona(s)."

        json_import("Import personas (JSON)", "Import personas", "import-personas", importer)


def delete_own_persona(page: Page, persona: Persona) -> None:
    state = st.session_state
    if state.get("confirm_delete_persona") == persona.key:
        st.warning(f"Delete your persona “{persona.name}”? Chats that use it go back to no persona.")
        cols = st.columns(2)
        if cols[0].button("Yes, delete", key="confirm-delete-persona", type="primary"):
            page.chats.personas.delete(page.user, persona.key)
            state.editing = state.persona_detail = state.confirm_delete_persona = None
            state.toast = f"Deleted “{persona.name}”."
            st.rerun()
        cols[1].button(
            "Cancel", key="cancel-delete-persona", on_click=lambda: state.update(confirm_delete_persona=None)
        )
    else:
        st.button(
            f"Delete “{persona.name}”",
            key="delete-persona",
            on_click=lambda: state.update(confirm_delete_persona=persona.key),
        )
