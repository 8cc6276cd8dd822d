"""Watching the notes folder: a changed, added or removed note file is re-ingested after a
quiet second (editors save in bursts), and whoever listens is told what happened."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from assistant.core.settings import Settings

from .pipeline import IngestError, IngestReport, run_ingest
from .reading import NOTE_SUFFIXES

QUIET_SECONDS = 1.0  # wait this long after the last change before re-ingesting


@dataclass
class WatchEvent:
    """One re-ingest started by the watcher: its report, or why it failed."""

    at: float
    report: IngestReport | None = None
    error: str | None = None

    @property
    def message(self) -> str:
        if self.error:
            return f"Your notes changed, but the re-ingest failed: {self.error}"
        r = self.report
        return (
            f"Your notes changed: re-ingested ({r.added} added, {r.updated} updated, {r.removed} removed) "
            f"in {r.seconds:.1f} s"
        )


@dataclass
class NotesWatcher:
    """A watchdog observer on NOTES_PATH; `events` grows with every re-ingest it runs."""

    settings: Settings
    on_ingested: Callable[[], None] = lambda: None
    events: list[WatchEvent] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._changed_at = 0.0
        self._wake = threading.Event()
        self._observer = None

    def start(self) -> NotesWatcher:
        from watchdog.events import FileSystemEvent, FileSystemEventHandler
        from watchdog.observers import Observer

        watcher = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                paths = [getattr(event, "src_path", ""), getattr(event, "dest_path", "")]
                if any(str(p).lower().endswith(NOTE_SUFFIXES) for p in paths if p):
                    watcher._changed_at = time.monotonic()
                    watcher._wake.set()

        root = Path(self.settings.notes_path)
        target = root if root.is_dir() else root.parent
        self._observer = Observer()
        self._observer.schedule(Handler(), str(target), recursive=root.is_dir())
        self._observer.daemon = True
        self._observer.start()
        threading.Thread(target=self._loop, name="notes-watcher", daemon=True).start()
        return self

    def _loop(self) -> None:
        while True:
            self._wake.wait()
            while time.monotonic() - self._changed_at < QUIET_SECONDS:
                time.sleep(0.2)
            self._wake.clear()
            try:
                report = run_ingest(self.settings)
            except (IngestError, OSError) as exc:
                self.events.append(WatchEvent(time.time(), error=str(exc)))
                continue
            if report.added or report.updated or report.removed:
                self.on_ingested()
                self.events.append(WatchEvent(time.time(), report=report))

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
