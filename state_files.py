"""Crash-safe files: atomic JSON and CSV writes, strict reads, and the run lock.

A write goes to a temporary file in the same directory, is fsynced, and replaces the target
with os.replace (atomic on POSIX), then the directory is fsynced: after a crash the file is
either the old one or the new one, never a mix. A file that cannot be read stops the run
with its name; it is never silently replaced by an empty state.
"""

from __future__ import annotations

import csv
import errno
import fcntl
import io
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from errors import LockHeldError, StateFileError

MAX_STATE_BYTES = 50 * 1024 * 1024  # a state file larger than this is not ours


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` to `path` atomically (0600). A disk or permission failure is a
    StateFileError naming the file and what to do; the old file is then left as it was."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise write_error(path, exc) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise write_error(path, exc) from None
        raise
    _fsync_dir(path)


def _fsync_dir(path: Path) -> None:
    """Make `path`'s entry in its directory durable (after os.replace)."""
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        raise write_error(path, exc) from None


class StagedText:
    """atomic_write_text in two steps, for a large file whose end is known only later: the
    start goes to the temporary file now, `finish(rest)` appends the rest and puts the file in
    place as atomic_write_text does (fsync, os.replace, the directory's fsync); `abandon()`
    removes the temporary file. Until `finish` the target is as it was."""

    def __init__(self, path: Path, start: str) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, self._tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp",
                                             dir=path.parent)
        except OSError as exc:
            raise write_error(path, exc) from None
        self._handle = os.fdopen(fd, "w", encoding="utf-8", newline="")
        self._guarded(self._handle.write, start)

    def finish(self, rest: str) -> None:
        def put_in_place() -> None:
            self._handle.write(rest)
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
            os.replace(self._tmp, self.path)

        self._guarded(put_in_place)
        _fsync_dir(self.path)

    def abandon(self) -> None:
        self._handle.close()
        Path(self._tmp).unlink(missing_ok=True)

    def _guarded(self, step: Any, *args: Any) -> None:
        try:
            step(*args)
        except BaseException as exc:
            self.abandon()
            if isinstance(exc, OSError):
                raise write_error(self.path, exc) from None
            raise


class StagedFiles:
    """atomic_write_text for several files of one directory that belong together (one run's
    outputs): each is written under a temporary name of the directory and fsynced
    (`write`), and `publish` puts them all in place at the end, in order (os.replace each,
    then the directory's fsync). Until then every target is as it was; leaving the `with`
    block unpublished (an error on either side) removes every temporary file, so no file is
    ever half written and none of the set replaces an old one unless all of it was written.

    The temporary files are made at once, by the process that publishes: another process
    forked from it may `write` some of them, and a failure on either side leaves nothing
    behind. Errors are StateFileError naming the target, as atomic_write_text's."""

    def __init__(self, directory: Path, names: Sequence[str]) -> None:
        self.paths = {name: directory / name for name in names}
        self._tmp: dict[str, str] = {}
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise write_error(directory / names[0], exc) from None
        try:
            for name, path in self.paths.items():
                try:
                    fd, self._tmp[name] = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp",
                                                           dir=directory)
                except OSError as exc:
                    raise write_error(path, exc) from None
                os.close(fd)
        except BaseException:
            self.abandon()
            raise

    def write(self, name: str, text: str) -> None:
        """`text` as the content of `name`, on disk (fsynced) under its temporary name."""
        try:
            with open(self._tmp[name], "w", encoding="utf-8", newline="") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            raise write_error(self.paths[name], exc) from None

    def publish(self) -> None:
        # A target that is a directory would stop os.replace half way through the set.
        for path in self.paths.values():
            if path.is_dir():
                raise write_error(path, IsADirectoryError(errno.EISDIR, "Is a directory"))
        for name, path in self.paths.items():
            try:
                os.replace(self._tmp.pop(name), path)
            except OSError as exc:
                raise write_error(path, exc) from None
        _fsync_dir(next(iter(self.paths.values())))

    def abandon(self) -> None:
        """Remove every temporary file not yet put in place."""
        while self._tmp:
            Path(self._tmp.popitem()[1]).unlink(missing_ok=True)

    def __enter__(self) -> StagedFiles:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.abandon()


def write_error(path: Path, exc: OSError) -> StateFileError:
    """The error for a file or directory that cannot be written, with what to do."""
    reason = exc.strerror or type(exc).__name__
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        advice = f"the disk is full: free space on the disk of {path.parent}"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        advice = (f"{path.parent} is not writable by this user: fix its permissions, or "
                  "give the bot another --log-dir")
    else:
        advice = f"check the disk of {path.parent}"
    return StateFileError(f"{path}: cannot be written ({reason}); {advice}. The file, if it "
                          "existed, is unchanged")


def write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json_text(data))


def json_text(data: Any) -> str:
    """A state file's text: sorted keys, indented, one line per field."""
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


class StateWriter:
    """write_json that leaves out a write when its last write of the same path was the same
    text and the file is still the one it wrote (the same inode, size and modification time:
    every write here makes a new inode, and another writer changes at least the time)."""

    def __init__(self) -> None:
        self._last: dict[Path, tuple[str, tuple[int, ...] | None]] = {}

    def write_json(self, path: Path, data: Any) -> None:
        text = json_text(data)
        if self._last.get(path, (None,)) == (text, file_stamp(path)):
            return
        atomic_write_text(path, text)
        self._last[path] = (text, file_stamp(path))


def file_stamp(path: Path) -> tuple[int, ...] | None:
    """What tells one version of a file from another without reading it (inode, size,
    modification time); None when it does not exist."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateFileError(f"{path}: cannot be read ({exc.strerror})") from None
    return st.st_ino, st.st_size, st.st_mtime_ns


def read_json(path: Path, *, default: Any,
              fix: str = "restore it from logs/runs/<last run>/ or delete it") -> Any:
    """The file's JSON, or `default` when the file does not exist. `fix` ends the error
    message of a damaged file: what the user should do."""
    text = _read_text(path)
    if text is None:
        return default
    try:
        return json.loads(text, object_pairs_hook=lambda pairs: _unique_keys(path, pairs))
    except json.JSONDecodeError as exc:
        raise StateFileError(
            f"{path}: invalid JSON at line {exc.lineno} column {exc.colno} ({exc.msg}). "
            f"The run stopped without changing it; {fix}") from None
    except RecursionError:  # e.g. '[[[[...' thousands deep: no state file of ours
        raise StateFileError(
            f"{path}: JSON nested too deeply to be a state file. The run stopped without "
            f"changing it; {fix}") from None


def _unique_keys(path: Path, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are unique: json would silently keep the last of two."""
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise StateFileError(f"{path}: the key {key[:80]!r} appears twice in one object; "
                                 "keep the right one and delete the other. The run stopped "
                                 "without changing the file")
        data[key] = value
    return data


def _read_text(path: Path) -> str | None:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateFileError(f"{path}: cannot be read ({exc.strerror})") from None
    if size > MAX_STATE_BYTES:
        raise StateFileError(f"{path}: {size} bytes is far larger than any state the bot "
                             "writes; move it away and check what wrote it")
    try:
        # utf-8-sig: a byte order mark (which some editors add) is read as nothing. Decoded
        # as it is, without newline translation: a carriage return inside a quoted CSV field
        # stays what was written.
        return path.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise StateFileError(f"{path}: cannot be read ({exc.__class__.__name__}); restore it "
                             "from logs/runs/<last run>/ or move it away") from None


def read_csv_rows(path: Path, columns: list[str]) -> list[dict[str, str]]:
    """Rows of a CSV written by the bot; its header must be exactly `columns`."""
    text = _read_text(path)
    if text is None or text == "":
        return []
    reader = csv.DictReader(io.StringIO(text))
    rows = []
    try:
        if reader.fieldnames != columns:
            raise StateFileError(f"{path}: header {reader.fieldnames} is not the expected "
                                 f"{columns}; move the file away to start a new one")
        for number, row in enumerate(reader, start=2):
            if None in row or any(v is None for v in row.values()):
                raise StateFileError(f"{path}: line {number} does not have {len(columns)} "
                                     "fields; fix or remove that line")
            rows.append(row)
    except csv.Error as exc:  # e.g. a NUL byte
        raise StateFileError(f"{path}: line {reader.line_num} cannot be read as CSV ({exc}); "
                             "fix or remove that line") from None
    return rows


def write_csv_rows(path: Path, columns: list[str], rows: list[dict[str, Any]]) -> None:
    """`rows` as a CSV file that `read_csv_rows` reads back to the same text in every field.
    A row with a carriage return in a field is written with every field quoted: with a "\n"
    line end, the csv module of Python 3.11 and 3.12 leaves such a field unquoted (3.13's
    quotes it), and a reader then ends the row there."""
    buffer = io.StringIO()
    plain = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    quoted = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n",
                            quoting=csv.QUOTE_ALL)
    plain.writeheader()
    for row in rows:
        (quoted if any("\r" in str(v) for v in row.values()) else plain).writerow(row)
    atomic_write_text(path, buffer.getvalue())


class RunLock:
    """An exclusive, non-blocking lock on a file. The kernel releases it when the process
    dies, so a killed run never blocks the next one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise write_error(self.path, exc) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LockHeldError(f"another run holds {self.path}; this run did nothing") \
                from None
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError:
            pass  # the pid is for people; the lock itself is held
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def readable_by_others(path: Path) -> str | None:
    """A warning when `path` (e.g. `.env`, which holds the keys) can be read by its group or
    by everyone; None when it cannot, or does not exist."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if mode & 0o077 == 0:
        return None
    who = "everyone" if mode & 0o004 else "its group"
    return (f"{path} holds the API keys and can be read by {who} (mode {mode & 0o777:o}); "
            f"make it private with: chmod 600 {path}")
