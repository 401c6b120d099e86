"""The one writer: every file pe-iqa, its plugins and its benchmarks write goes through this module.

* :func:`check_destination` is the one output policy, run before any work and again by every writer here: the
  destination is absent or a regular file (folders, FIFOs, devices, sockets and symbolic links are refused from
  ``lstat``, never opened), not one of the inputs — compared by resolved path and by inode (hard links, symbolic
  links, ``./a/../a.png``) — nor an existing image file, inside the folder it was given, and its folder exists (or
  can be created) and is writable.
* :class:`OutputPlan` collects the destinations of one command, checks them together (two outputs never share a
  path) and creates their folders only after all passed.
* :func:`atomic_write` (and :func:`write_text_atomic`, :func:`write_bytes_atomic`, :func:`write_figure`,
  :func:`write_image`, :func:`save_torch`, :func:`save_npz`) takes the policy as arguments, checks, writes to a
  temporary file in the destination's folder, ``fsync``\\ s it and renames it over the destination
  (``os.replace``): a reader sees the old file or the new one, never a partial one, and a full disk leaves the old
  file untouched. :func:`create_exclusive` and :func:`open_in_place` serve append-only journals.

``tests/test_one_writer.py`` fails on any call outside this module that writes a file."""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import IO

__all__ = ["OUTPUT_SUFFIXES", "DestinationError", "InputSet", "OutputPlan", "atomic_write", "check_destination",
           "check_file_stem", "create_exclusive", "is_drawn_figure", "looks_like_image", "open_in_place",
           "output_name", "path_safe_name", "save_npz", "save_torch", "write_bytes_atomic", "write_figure",
           "write_image", "write_text_atomic"]

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


def output_name(raw: str | os.PathLike[str], what: str = "output file") -> Path:
    """The path a user gave for a file to write, refused when it cannot name a file.

    ``""`` (``Path("")`` is the current folder) and a name ending in a separator (``newdir/``: a folder) are
    refused here, before :class:`~pathlib.Path` drops the separator and a file called ``newdir`` is written.

    Raises:
        DestinationError: the name is empty or ends in a path separator.
    """
    text = os.fspath(raw)
    if not isinstance(text, str) or not text.strip():
        raise DestinationError(f"{what} is empty; give a file name")
    if text.endswith(("/", os.sep, *filter(None, [os.altsep]))):
        raise DestinationError(f"{what} {text} ends in a separator, so it names a folder; give a file name")
    return Path(text)


class InputSet:
    """The files a run reads, indexed once so that many destinations are checked against them cheaply.

    A destination is an input when it resolves to the same path as a same-named input (``./a/../a.png``, a link
    named like its target), or, for an existing destination, when it is the same file by device and inode (hard
    links, other links). Nothing is resolved up front: a million inputs cost no system call until a destination
    exists; then up to :data:`_MAX_INODE_CHECKS` of them are compared by inode.
    """

    def __init__(self, inputs: Iterable[str | Path] = ()) -> None:
        self._paths = [os.fspath(p) for p in inputs]
        self._by_name: dict[str, list[str]] | None = None
        self._inodes: dict[tuple[int, int], str] | None = None

    def find(self, path: Path, existing: os.stat_result | None) -> Path | None:
        """The input that ``path`` is (``existing``: its ``stat``, ``None`` if absent), or ``None``."""
        if self._by_name is None:
            self._by_name = {}
            basename = os.path.basename
            for source in self._paths:
                self._by_name.setdefault(basename(source), []).append(source)
        resolved = os.path.realpath(path)
        for name in dict.fromkeys((path.name, os.path.basename(resolved))):
            for source in self._by_name.get(name, ()):
                if os.path.realpath(source) == resolved:
                    return Path(source)
        if existing is None:
            return None
        if self._inodes is None:
            self._inodes = {}
            for source in self._paths[:_MAX_INODE_CHECKS]:
                with contextlib.suppress(OSError):
                    status = os.stat(source)
                    self._inodes.setdefault((status.st_dev, status.st_ino), source)
        found = self._inodes.get((existing.st_dev, existing.st_ino))
        return Path(found) if found is not None else None


def is_drawn_figure(path: str | Path) -> bool:
    """Whether ``path`` is a PNG that Matplotlib (hence pe-iqa's figure writer) drew: its ``Software`` text chunk
    says so, or it carries a pe-iqa provenance chunk. Such a figure may be redrawn; any other image is kept."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            text = getattr(image, "text", {}) or {}
            return image.format == "PNG" and (str(text.get("Software", "")).startswith("Matplotlib")
                                              or "pe-iqa provenance" in text)
    except Exception:
        return False


def _kind_of(status: os.stat_result) -> str:
    if stat.S_ISLNK(status.st_mode):
        return "a symbolic link; pe-iqa never writes through a link (remove it or give the file itself)"
    if stat.S_ISDIR(status.st_mode):
        return "a folder; give a file name"
    if stat.S_ISFIFO(status.st_mode):
        return "a FIFO (named pipe), not a regular file; give a regular file name"
    if stat.S_ISCHR(status.st_mode) or stat.S_ISBLK(status.st_mode):
        return "a device, not a regular file; give a regular file name"
    if stat.S_ISSOCK(status.st_mode):
        return "a socket, not a regular file; give a regular file name"
    return ""


def _check_folder(path: Path, what: str, create: bool, probe: bool) -> None:
    folder = path.parent if str(path.parent) else Path(".")
    if create:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if not folder.is_dir():
                raise NotADirectoryError(f"{folder} is not a folder")
        except OSError as error:
            raise DestinationError(f"cannot create the folder of {what} {path}: {error.strerror or error}") from None
    elif not folder.is_dir():
        ancestor = folder
        while not os.path.lexists(ancestor) and ancestor != ancestor.parent:
            ancestor = ancestor.parent
        if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
            raise DestinationError(f"cannot create the folder of {what} {path}: {ancestor} is not a writable folder")
        return
    if not probe:
        return
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise DestinationError(f"cannot write {what} {path}: folder {folder} is not writable "
                               f"({error.strerror or error})") from None


def check_destination(path: str | Path, inputs: Iterable[str | Path] | InputSet = (), what: str = "output file",
                      kind: str | None = None, *, within: str | Path | None = None,
                      replace_image: Callable[[Path], bool] | None = None, create_folder: bool = True,
                      probe: bool = True) -> Path:
    """Check that ``path`` can be written without harming anything; create its folder if missing.

    The one output policy of every writer (:func:`atomic_write` and the functions built on it run it themselves):
    the destination is absent or a regular file — a folder, FIFO, device, socket or symbolic link is refused from
    its ``lstat``, never by opening it — not an input, not an existing file that pe-iqa's reader decodes as an
    image, inside ``within`` when given, under a name that says what is written (``kind``) and that the file
    system takes, in a writable folder.

    Args:
        path: the file to be written.
        inputs: files the run reads (images, manifest), or an :class:`InputSet` of them; none may be ``path``.
        what: how the file is called in messages (e.g. ``"--csv"``).
        kind: what is written (a key of :data:`OUTPUT_SUFFIXES`: ``"csv"``, ``"json"``, ``"png"`` …); the name's
            ending must say so (``explain --figure f.txt`` is refused). ``None``: any name.
        within: the folder the user gave; ``path`` must resolve inside it (``--name ../escaped`` is refused).
        replace_image: an existing image for which this returns ``True`` may be replaced (e.g.
            :func:`is_drawn_figure`: a figure drawn earlier); any other image is kept.
        create_folder: create the missing folder now (``False``: only check that it can be created).
        probe: check that the folder is writable by creating (and removing) a temporary file in it.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        DestinationError: any of the above does not hold (the message says which).
    """
    path = output_name(path, what) if isinstance(path, str) else Path(path)
    if len(path.name.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
        raise DestinationError(f"{what} {str(path)[:60]}…: the file name is longer than {MAX_NAME_BYTES} bytes")
    if within is not None:
        root = os.path.realpath(within)
        if os.path.commonpath([root, os.path.realpath(path)]) != root:
            raise DestinationError(f"{what} {path} is outside the folder {within} it was given; name a file inside it")
    try:
        link_status = os.lstat(path)
    except OSError:  # absent, under a file, or in an unreadable folder (the folder check below says which)
        link_status = None
    existing = None
    if link_status is not None:
        with contextlib.suppress(OSError):
            existing = path.stat()
    source = (inputs if isinstance(inputs, InputSet) else InputSet(inputs)).find(path, existing)
    if source is not None:
        raise DestinationError(f"{what} {path} is one of the inputs ({source}); pe-iqa never writes onto an input")
    problem = _kind_of(link_status) if link_status is not None else ""
    if problem:
        raise DestinationError(f"{what} {path} is {problem}")
    if link_status is not None and looks_like_image(path) and not (replace_image and replace_image(path)):
        raise DestinationError(f"{what} {path} exists and holds an image; pe-iqa will not overwrite it")
    _check_suffix(path, kind, what)
    if probe or create_folder:
        _check_folder(path, what, create_folder, probe)
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


def _open_exclusive(path: str | Path, mode: str, open_options: dict) -> IO:
    if "b" not in mode:
        open_options.setdefault("encoding", "utf-8")
        open_options.setdefault("newline", "")
    descriptor = os.open(path, _CREATE_FLAGS, 0o666)
    try:
        return os.fdopen(descriptor, mode, **open_options)
    except BaseException:
        os.close(descriptor)
        raise


def create_exclusive(path: str | Path, mode: str = "w", *, what: str = "output file", **open_options) -> IO:
    """Check ``path`` (:func:`check_destination`), create it and open it for writing; fail if anything (a file, a
    dangling symbolic link) is there.

    ``O_CREAT | O_EXCL | O_NOFOLLOW``: a link planted at ``path`` is never followed to create its target elsewhere.
    Permissions are ``0o666`` less the process's umask (applied by the operating system).

    Raises:
        DestinationError: ``path`` fails the output policy.
        FileExistsError: something exists at ``path``.
    """
    check_destination(path, what=what, probe=False)
    return _open_exclusive(path, mode, open_options)


def _temporary_next_to(path: Path, mode: str, open_options: dict) -> tuple[IO, Path]:
    folder = path.parent if str(path.parent) else Path(".")
    for _ in range(100):
        temporary = folder / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            return _open_exclusive(temporary, mode, dict(open_options)), temporary
        except FileExistsError:
            continue
    raise FileExistsError(f"cannot create a temporary file next to {path}")


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w", *, what: str = "output file", kind: str | None = None,
                 inputs: Iterable[str | Path] | InputSet = (), within: str | Path | None = None,
                 replace_image: Callable[[Path], bool] | None = None, **open_options) -> Iterator[IO]:
    """Check ``path`` (:func:`check_destination`, always), then open a temporary file next to it; on success it
    replaces ``path`` atomically (fsynced).

    On any exception the temporary file is removed and ``path`` is left as it was. The temporary file is created
    exclusively (no link followed); a new file gets the permissions ``open`` would give it (umask applied by the
    operating system), a replaced one keeps its permissions. ``what``, ``kind``, ``inputs``, ``within`` and
    ``replace_image`` are the destination policy of :func:`check_destination`.

    Example:
        >>> import tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "out.txt"
        >>> with atomic_write(target) as handle:
        ...     _ = handle.write("done\\n")
        >>> target.read_text()
        'done\\n'
    """
    path = check_destination(path, inputs, what, kind, within=within, replace_image=replace_image, probe=False)
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


def write_bytes_atomic(path: str | Path, data: bytes, **policy) -> Path:
    """Write ``data`` to ``path`` atomically (:func:`atomic_write`; ``policy``: its destination arguments)."""
    with atomic_write(path, "wb", **policy) as handle:
        handle.write(data)
    return Path(path)


def write_text_atomic(path: str | Path, text: str, **policy) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (:func:`atomic_write`; ``policy``: its destination arguments)."""
    with atomic_write(path, **policy) as handle:
        handle.write(text)
    return Path(path)


def write_figure(figure: object, path: str | Path, *, dpi: int = 100, metadata: Mapping[str, str] | None = None,
                 bbox_inches: str | None = None, **policy) -> Path:
    """Render a Matplotlib figure as PNG in memory and write it atomically; a figure drawn earlier
    (:func:`is_drawn_figure`) may be replaced, any other image is kept."""
    buffer = io.BytesIO()
    figure.savefig(buffer, dpi=dpi, format="png", metadata=dict(metadata or {}), bbox_inches=bbox_inches)
    policy.setdefault("kind", "png")
    policy.setdefault("replace_image", is_drawn_figure)
    return write_bytes_atomic(path, buffer.getvalue(), **policy)


def write_image(path: str | Path, pixels: object, image_format: str = "PNG", **policy) -> Path:
    """Encode an ``(H, W[, C])`` ``uint8`` array (Pillow) and write it atomically to ``path``, which must be absent
    or a non-image file (benchmark scratch images, test inputs)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=image_format)
    return write_bytes_atomic(path, buffer.getvalue(), **policy)


def save_torch(obj: object, path: str | Path, **policy) -> Path:
    """``torch.save`` ``obj`` into memory, then write it atomically to ``path``."""
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return write_bytes_atomic(path, buffer.getvalue(), **policy)


def save_npz(path: str | Path, arrays: Mapping[str, object], **policy) -> Path:
    """``numpy.savez_compressed`` ``arrays`` into memory, then write them atomically to ``path``."""
    import numpy as np

    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return write_bytes_atomic(path, buffer.getvalue(), **policy)


def open_in_place(path: str | Path, mode: str, what: str = "journal") -> IO:
    """Open an existing regular file to append to it (``"a"``) or mend it (``"rb+"``), never through a link.

    For pe-iqa's own append-only files (journals); the file is checked (a regular file, not a link) from its
    ``lstat`` before it is opened, and opened with ``O_NOFOLLOW``.

    Raises:
        DestinationError: ``path`` is absent, a link, or not a regular file.
    """
    if mode not in ("a", "rb+"):
        raise ValueError(f"mode must be 'a' or 'rb+', got {mode!r}")
    path = Path(path)
    try:
        problem = _kind_of(os.lstat(path))
    except FileNotFoundError:
        problem = "absent"
    if problem:
        raise DestinationError(f"{what} {path} is {problem}")
    options = {"newline": "", "encoding": "utf-8"} if "b" not in mode else {}
    return open(path, mode, opener=_no_follow_opener, **options)  # the caller closes it


def _no_follow_opener(name: str, flags: int) -> int:
    return os.open(name, flags | _NO_FOLLOW)


class OutputPlan:
    """Every destination of one command, checked together before anything is created or written.

    Each :meth:`add` runs :func:`check_destination` without creating folders and refuses a path another output of
    the same command already takes (``explain --csv X --json X``; ``score --maps X --csv X``); :meth:`ready`
    creates the folders once every destination passed.

    Example:
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> plan = OutputPlan()
        >>> _ = plan.add(folder / "a.csv", "--csv", "csv")
        >>> plan.add(folder / "a.csv", "--json")
        Traceback (most recent call last):
        ...
        pe_iqa.safe_files.DestinationError: --json ... is also --csv; give each output its own name
    """

    def __init__(self, inputs: Iterable[str | Path] = (), within: str | Path | None = None) -> None:
        self.inputs = InputSet(inputs)
        self.within = within
        self._taken: dict[str, str] = {}
        self._folders: dict[Path, str] = {}

    def _claim(self, path: Path, what: str) -> None:
        key = os.path.normcase(os.path.realpath(path))
        if key in self._taken:
            raise DestinationError(f"{what} {path} is also {self._taken[key]}; give each output its own name")
        self._taken[key] = what

    def add(self, path: str | Path, what: str, kind: str | None = None, *,
            replace_image: Callable[[Path], bool] | None = None) -> Path:
        """Check one output file (:func:`check_destination`, folder not created yet) and claim its path."""
        path = check_destination(path, self.inputs, what, kind, within=self.within, replace_image=replace_image,
                                 create_folder=False)
        self._claim(path, what)
        self._folders.setdefault(path.parent if str(path.parent) else Path("."), what)
        return path

    def add_folder(self, path: str | Path, what: str) -> Path:
        """Check one output folder (absent or a folder — a link to a folder is the folder the user chose — inside
        ``within``) and claim its path."""
        path = output_name(path, what) if isinstance(path, str) else Path(path)
        if os.path.lexists(path) and not path.is_dir():
            raise DestinationError(f"{what} {path} is a file, not a folder")
        check_destination(path / ".pe_iqa_write_check", self.inputs, what, within=self.within, create_folder=False)
        self._claim(path, what)
        self._folders.setdefault(path, what)
        return path

    def ready(self) -> None:
        """Create the folders of every planned output (after all were checked)."""
        for folder, what in self._folders.items():
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise DestinationError(f"cannot create the folder of {what} {folder}: {error.strerror or error}"
                                       ) from None


def path_safe_name(name: str) -> str:
    """A backbone name usable in a file name: ``:`` and ``/`` become ``-``.

    Example:
        >>> path_safe_name("timm:convnext_tiny")
        'timm-convnext_tiny'
    """
    return name.replace(":", "-").replace("/", "-")
