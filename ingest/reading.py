"""Finding note files and turning their bytes into clean text, line by line."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import ftfy

NOTE_SUFFIXES = (".md", ".markdown", ".txt")
TAB_WIDTH = 4  # outlines indented with tabs (Logseq) read as 4 spaces a level
LEADING_SPACE = re.compile(r"^[ \t]+")
MAX_FILE_BYTES = 20 * 1024 * 1024


class NoteFileError(Exception):
    """A file that cannot be read as notes; the message names the file and says why."""


@dataclass(frozen=True)
class NoteFile:
    path: Path
    relpath: str  # relative to the notes root, "/"-separated; forms the top of breadcrumbs
    sha256: str
    lines: list[str]
    encoding: str
    repaired_lines: int


@dataclass(frozen=True)
class Discovery:
    """The note files under a root, and the links skipped because they lead outside it."""

    files: list[tuple[Path, str]]  # (path, relative path), sorted
    outside: list[str]  # relative paths of symbolic links that resolve outside the root


def discover(root: Path, follow_symlinks: bool = False) -> Discovery:
    """Note files under `root` (or `root` itself), sorted, with their relative paths. A file or
    folder link that resolves outside `root` is skipped (and listed) unless `follow_symlinks`:
    nothing outside the notes folder is read by surprise."""
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"notes path does not exist: {root}")
    if root.is_file():
        return Discovery([(root, root.name)], [])
    real_root = root.resolve()
    found: list[tuple[Path, str]] = []
    outside: list[str] = []
    for folder, dirs, files in os.walk(root, followlinks=True):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in list(dirs):
            link = here / name
            if link.is_symlink() and not _inside(link, real_root) and not follow_symlinks:
                outside.append(link.relative_to(root).as_posix())
                dirs.remove(name)
        for name in sorted(files):
            path = here / name
            if name.startswith(".") or path.suffix.lower() not in NOTE_SUFFIXES or not path.is_file():
                continue
            if not follow_symlinks and not _inside(path, real_root):
                outside.append(path.relative_to(root).as_posix())
                continue
            found.append((path, path.relative_to(root).as_posix()))
    return Discovery(sorted(found, key=lambda f: f[1]), sorted(outside))


def _inside(path: Path, real_root: Path) -> bool:
    try:
        return path.resolve().is_relative_to(real_root)
    except OSError:
        return False


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def decode_bytes(data: bytes) -> tuple[str, str]:
    """Decode note bytes: UTF-8 when it is, else cp1252, else latin-1 (which never fails)."""
    if b"\x00" in data[:8192]:
        raise NoteFileError("binary file (NUL bytes), not a text outline")
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1"), "latin-1"


def repair_line(line: str) -> str:
    """Undo mojibake: this export's Mac Roman round trip first, ftfy for the common kinds.

    The Mac Roman repair is applied only when the round trip succeeds, so that sound
    UTF-8 (which rarely survives being re-encoded as Mac Roman and decoded) stays as it is.
    """
    if line.isascii():
        return line
    try:
        fixed = line.encode("mac_roman").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        fixed = None
    if fixed is not None and fixed != line:
        return fixed
    return ftfy.fix_encoding(line)


def read_note_file(path: Path, relpath: str) -> NoteFile:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise NoteFileError(f"file is {size} bytes, more than the {MAX_FILE_BYTES} byte limit")
        data = path.read_bytes()
    except PermissionError as exc:
        raise NoteFileError(f"cannot read file: {exc.strerror}") from exc
    except OSError as exc:
        raise NoteFileError(f"cannot read file: {exc}") from exc
    if not data.strip():
        raise NoteFileError("empty file")
    text, encoding = decode_bytes(data)
    raw_lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if raw_lines and raw_lines[-1] == "":
        raw_lines.pop()
    lines = [LEADING_SPACE.sub(lambda m: m.group(0).expandtabs(TAB_WIDTH), repair_line(line)) for line in raw_lines]
    repaired = sum(a != b for a, b in zip(raw_lines, lines))
    return NoteFile(
        path=path,
        relpath=relpath,
        sha256=hashlib.sha256(data).hexdigest(),
        lines=lines,
        encoding=encoding,
        repaired_lines=repaired,
    )
