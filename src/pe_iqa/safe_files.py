"""Writing result files safely: never onto an input, never torn, destination checked before any work.

* :func:`check_destination` runs before anything is scored or measured: the destination is not a folder, its
  folder exists (or can be created) and is writable, and it is not one of the inputs — compared by resolved
  path and by inode (hard links, symbolic links, ``./a/../a.png``) — nor an existing image file.
* :func:`atomic_write` writes to a temporary file in the destination's folder, ``fsync``\\ s it and renames it over
  the destination (``os.replace``): a reader sees the old file or the new one, never a partial one, and a full
  disk leaves the old file untouched.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import IO

__all__ = ["OUTPUT_SUFFIXES", "DestinationError", "atomic_write", "check_destination", "check_file_stem",
           "create_exclusive", "looks_like_image", "path_safe_name", "write_text_atomic"]

#: Up to this many input paths are compared by inode (one ``stat`` each); beyond, only same-named ones.
_MAX_INODE_CHECKS = 200_000


class DestinationError(ValueError):
    """An output path that must not or cannot be written (the message says why)."""


def looks_like_image(path: Path) -> bool:
    """Whether pe-iqa's image reader recognises the file as an image (asked, not guessed from a signature list:
    TGA, PBM and every other format the reader takes count; see :func:`pe_iqa.image_io.is_image_file`)."""
    from .image_io import is_image_file

    return is_image_file(path)


#: What each kind of output file holds, and the name endings that say so (no ending is accepted too).
OUTPUT_SUFFIXES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {"csv": (".csv", ".tsv", ".txt"), "json": (".json",), "png": (".png",), "markdown": (".md",)})


def _check_suffix(path: Path, kind: str | None, what: str) -> None:
    if kind is None:
        return
    allowed = OUTPUT_SUFFIXES[kind]
    if path.suffix and path.suffix.lower() not in allowed:
        raise DestinationError(f"{what} {path} would hold {kind.upper()} data under a {path.suffix} name; give a name "
                               f"ending in {' or '.join(allowed)}")


#: Longest file name written (most file systems allow 255 bytes; room is left for suffixes and temporary names).
MAX_NAME_BYTES = 200


def check_file_stem(stem: object, what: str = "name") -> str:
    """``stem`` if it can name files inside an output folder: not empty, no path separator, not ``.``/``..``, no NUL,
    at most :data:`MAX_NAME_BYTES` bytes (UTF-8). Checked before anything is written.

    Raises:
        DestinationError: otherwise (``--name ../../escaped`` would write outside ``--out``).
    """
    text = stem if isinstance(stem, str) else ""
    separators = {"/", "\\", os.sep, *(filter(None, [os.altsep]))}
    if (not text or text in (".", "..") or "\0" in text or any(s in text for s in separators)
            or len(text.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES):
        raise DestinationError(f"{what} must be a plain file stem (a name without folder, not '.' or '..', at most "
                               f"{MAX_NAME_BYTES} bytes), got {stem!r}")
    return text


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def check_destination(path: str | Path, inputs: Iterable[str | Path] = (), what: str = "output file",
                      kind: str | None = None) -> Path:
    """Check that ``path`` can be written without harming anything; create its folder if missing.

    The one output policy of every writer: never onto an input, never onto an existing file that pe-iqa's reader
    decodes as an image, a name that says what is written (``kind``), a name the file system takes, a writable
    folder — all checked before any work.

    Args:
        path: the file to be written.
        inputs: files the run reads (images, manifest); none of them may be ``path``.
        what: how the file is called in messages (e.g. ``"--csv"``).
        kind: what is written (a key of :data:`OUTPUT_SUFFIXES`: ``"csv"``, ``"json"``, ``"png"`` …); the name's
            ending must say so (``explain --figure f.txt`` is refused). ``None``: any name.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        DestinationError: ``path`` is a folder, an input (same resolved path or inode), an existing image, a name
            that does not fit ``kind`` or is too long, or its folder cannot be created or written.
    """
    path = Path(path)
    if len(path.name.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
        raise DestinationError(f"{what} {str(path)[:60]}…: the file name is longer than {MAX_NAME_BYTES} bytes")
    if path.is_dir():
        raise DestinationError(f"{what} {path} is a folder; give a file name")
    resolved = Path(os.path.realpath(path))
    existing = path.stat() if path.exists() else None
    inputs = [Path(p) for p in inputs]
    candidates = inputs if existing is not None and len(inputs) <= _MAX_INODE_CHECKS else [
        p for p in inputs if p.name == path.name or p.name == resolved.name
    ]
    for source in candidates:
        same = Path(os.path.realpath(source)) == resolved
        if not same and existing is not None:
            with contextlib.suppress(OSError):
                same = _same_file(source.stat(), existing)
        if same:
            raise DestinationError(f"{what} {path} is one of the inputs ({source}); pe-iqa never writes onto an input")
    if existing is not None and looks_like_image(path):
        raise DestinationError(f"{what} {path} exists and holds an image; pe-iqa will not overwrite it")
    _check_suffix(path, kind, what)
    folder = path.parent if str(path.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if not folder.is_dir():
            raise NotADirectoryError(f"{folder} is not a folder")
    except OSError as error:
        raise DestinationError(f"cannot create the folder of {what} {path}: {error.strerror or error}") from None
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise DestinationError(f"cannot write {what} {path}: folder {folder} is not writable "
                               f"({error.strerror or error})") from None
    return path


def _fsync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not supported everywhere (e.g. Windows); the rename is still atomic
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


_NO_FOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NO_FOLLOW | getattr(os, "O_CLOEXEC", 0)


def create_exclusive(path: str | Path, mode: str = "w", **open_options) -> IO:
    """Create ``path`` and open it for writing; fail if anything (a file, a dangling symbolic link) is there.

    ``O_CREAT | O_EXCL | O_NOFOLLOW``: a link planted at ``path`` is never followed to create its target elsewhere.
    Permissions are ``0o666`` less the process's umask (applied by the operating system).

    Raises:
        FileExistsError: something exists at ``path``.
    """
    if "b" not in mode:
        open_options.setdefault("encoding", "utf-8")
        open_options.setdefault("newline", "")
    descriptor = os.open(path, _CREATE_FLAGS, 0o666)
    try:
        return os.fdopen(descriptor, mode, **open_options)
    except BaseException:
        os.close(descriptor)
        raise


def _temporary_next_to(path: Path, mode: str, open_options: dict) -> tuple[IO, Path]:
    folder = path.parent if str(path.parent) else Path(".")
    for _ in range(100):
        temporary = folder / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            return create_exclusive(temporary, mode, **open_options), temporary
        except FileExistsError:
            continue
    raise FileExistsError(f"cannot create a temporary file next to {path}")


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w", **open_options) -> Iterator[IO]:
    """Open a temporary file next to ``path``; on success it replaces ``path`` atomically (fsynced).

    On any exception the temporary file is removed and ``path`` is left as it was. The temporary file is created
    exclusively (no link followed); a new file gets the permissions ``open`` would give it (umask applied by the
    operating system), a replaced one keeps its permissions.

    Example:
        >>> import tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "out.txt"
        >>> with atomic_write(target) as handle:
        ...     _ = handle.write("done\\n")
        >>> target.read_text()
        'done\\n'
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    handle, temporary = _temporary_next_to(path, mode, open_options)
    try:
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        if path.exists():
            with contextlib.suppress(OSError):  # keep the permissions a replaced file had
                os.chmod(temporary, path.stat().st_mode & 0o7777)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_folder(folder)


def path_safe_name(name: str) -> str:
    """A backbone name usable in a file name: ``:`` and ``/`` become ``-``.

    Example:
        >>> path_safe_name("timm:convnext_tiny")
        'timm-convnext_tiny'
    """
    return name.replace(":", "-").replace("/", "-")


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (:func:`atomic_write`)."""
    with atomic_write(path) as handle:
        handle.write(text)
