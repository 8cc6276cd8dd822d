"""The Notes view: the tree of the notes (files, areas, sections) with a filter, and the
section picked, rendered as Markdown. "Open in notes browser" lands here with the section
picked and its branch of the tree open and in view."""

from __future__ import annotations

import streamlit as st

from assistant.core.sections import Section
from assistant.core.text import to_markdown
from ui.state import Page, crumb, open_section

TREE_HEIGHT = 640  # pixels: the tree scrolls in a box of its own, the section stays in view
MATCHES_SHOWN = 200


def notes_page(page: Page) -> None:
    tree = page.service.sections
    state = st.session_state
    state.setdefault("open_sections", set())
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
            for s in matches[:MATCHES_SHOWN]:
                box.button(
                    " › ".join(s.path[-3:]),
                    key=f"match-{s.key}",
                    on_click=open_section,
                    args=(page, s.key),
                    type="primary" if s.key == state.get("browse") else "tertiary",
                )
        else:
            tops = [child for root in tree.roots for child in root.children]
            if len(tops) == 1:  # one notes file: its areas are the top of the tree
                tops = tops[0].children
            with st.container(height=TREE_HEIGHT, border=False):
                for top in tops:
                    tree_node(top, 0)
    with right:
        section = tree.find(state.browse) if state.get("browse") else None
        if section is None:
            st.info("Pick a section on the left to read it here.")
            return
        first, last = tree.span(section)
        st.markdown(f"### {section.title}")
        st.caption(f"{crumb(page, section.path[:-1], ' › ')}  ·  {section.source}, lines {first}-{last}")
        st.markdown(to_markdown(tree.text(section, whole=False)) or "_(no text of its own)_")
        if section.children:
            st.markdown("**Sub-sections**")
            for child in section.children:
                st.button(
                    child.title,
                    key=f"child-{child.key}",
                    on_click=open_section,
                    args=(page, child.key),
                    type="tertiary",
                )


def scroll_here() -> None:
    """Scroll the tree's box to this point: the section a link opened is in view, not below."""
    marker = "notes-tree-picked"
    st.html(
        f"<span id='{marker}'></span><script>document.getElementById('{marker}')"
        ".scrollIntoView({block: 'center'});</script>",
        unsafe_allow_javascript=True,
    )


def tree_node(section: Section, depth: int) -> None:
    state = st.session_state
    opened = section.key in state.open_sections
    picked = section.key == state.get("browse")
    marker = ("▾ " if opened else "▸ ") if section.children else "• "
    label = f"{chr(0x2003) * depth}{marker}{section.title}"

    def click(key: str = section.key) -> None:
        if key in state.open_sections and state.get("browse") == key:
            state.open_sections = state.open_sections - {key}
        else:
            state.open_sections = state.open_sections | {key}
        state.browse = key

    if picked and state.pop("scroll_to", None) == section.key:
        scroll_here()
    st.button(label, key=f"tree-{section.key}", on_click=click, type="primary" if picked else "tertiary")
    if opened:
        for child in section.children:
            tree_node(child, depth + 1)
