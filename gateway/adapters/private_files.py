"""Files holding children's data or the gateway's secrets belong to the process's user alone.

Folders the gateway creates are 0700 and files 0600, whatever the umask (a umask only ever
removes bits, so each is also chmod-ed to exactly that). Folders that already exist are left as
they are: a database named in /tmp must not make /tmp private. Files that already exist and
are open to others (a database made by an older version, 0644) are narrowed to 0600.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

__all__ = ["DIRECTORY_MODE", "FILE_MODE", "narrow_to_owner", "private_directory", "private_file"]

DIRECTORY_MODE = 0o700
FILE_MODE = 0o600


def private_directory(path: Path) -> None:
    """Create `path` and its missing parents, each 0700; an existing folder is left alone."""
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=DIRECTORY_MODE)
        except FileExistsError:
            continue  # another process made it first; it decided the mode
        os.chmod(folder, DIRECTORY_MODE)
    if not path.is_dir():
        raise NotADirectoryError(20, "Not a directory", str(path))


def private_file(path: Path) -> None:
    """Create `path` empty as 0600 if missing; narrow it to 0600 if others may read it."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, FILE_MODE)
    except FileExistsError:
        narrow_to_owner(path)
        return
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)


def narrow_to_owner(path: Path) -> None:
    """Take every group and other permission off an existing file (no-op if it is missing)."""
    with contextlib.suppress(FileNotFoundError):
        mode = stat.S_IMODE(os.stat(path).st_mode)
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            os.chmod(path, mode & stat.S_IRWXU)
