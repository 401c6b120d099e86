"""One writer (issue 25): every call that writes a file lives in :mod:`pe_iqa.safe_files`.

The guard walks the syntax tree of every ``.py`` under ``src/``, ``plugins/`` and ``benchmarks/`` and lists each
call that writes a file — ``open``/``Path.open``/``os.fdopen`` in a write mode (``w``, ``a``, ``x``, ``+``, or a mode
it cannot read), ``os.open`` with a writing flag, ``write_text``, ``write_bytes``, ``savefig``, ``.save(`` (Pillow,
``torch.save``), ``to_csv``, ``numpy.save*``/``savetxt``/``tofile``, ``shutil`` copies and moves, ``os.replace``/
``os.rename``/``Path.rename``, temporary *files* (``NamedTemporaryFile``, ``TemporaryFile``, ``mkstemp``) — outside
the writer module. Such a call would skip the destination check; route it through the writer instead.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WRITER = Path("src/pe_iqa/safe_files.py")
SCANNED = ("src", "plugins", "benchmarks")

#: Calls outside the writer that write a file on purpose, each with the reason it cannot go through the writer.
ALLOWED = {
    ("plugins/pe_iqa_pyiqa_autoregister/build_pth.py", "write_text"):
        "setuptools loads this build step without importing pe_iqa; it writes the .pth into the wheel's build folder",
    ("benchmarks/process_memory.py", "open"): "writes '5' to /proc/self/clear_refs, a kernel control file",
}

_ALWAYS = {"write_text", "write_bytes", "savefig", "save", "to_csv", "savez", "savez_compressed", "savetxt", "tofile",
           "rename", "touch", "NamedTemporaryFile", "TemporaryFile", "SpooledTemporaryFile", "mkstemp"}
_MODULE_ONLY = {("os", "replace"), ("os", "rename"), ("os", "renames"), *(
    ("shutil", name) for name in ("copy", "copy2", "copyfile", "copytree", "copyfileobj", "move"))}
_WRITE_FLAGS = {"O_WRONLY", "O_RDWR", "O_CREAT", "O_APPEND", "O_TRUNC"}


def _mode(call: ast.Call, position: int) -> ast.expr | None:
    for keyword in call.keywords:
        if keyword.arg == "mode":
            return keyword.value
    return call.args[position] if len(call.args) > position else None


def _writes_in_mode(mode: ast.expr | None) -> bool:
    if mode is None:
        return False
    if isinstance(mode, ast.Constant) and isinstance(mode.value, str):
        return any(letter in mode.value for letter in "wax+")
    return True  # a mode computed at run time: cannot be shown to only read


def _call_name(call: ast.Call) -> tuple[str | None, str | None]:
    """``(owner, name)``: ``open`` → ``(None, "open")``, ``os.replace`` → ``("os", "replace")``."""
    function = call.func
    if isinstance(function, ast.Name):
        return None, function.id
    if isinstance(function, ast.Attribute):
        owner = function.value.id if isinstance(function.value, ast.Name) else ""
        return owner, function.attr
    return None, None


def _writes(call: ast.Call) -> str | None:
    """What the call writes by, or ``None`` if it writes no file."""
    owner, name = _call_name(call)
    if name is None:
        return None
    if owner == "os" and name == "open":
        flags = {node.attr for arg in call.args[1:2] for node in ast.walk(arg) if isinstance(node, ast.Attribute)}
        target = call.args[0] if call.args else None
        to_null = isinstance(target, ast.Attribute) and target.attr == "devnull"
        return "os.open" if flags & _WRITE_FLAGS and not to_null else None
    if name == "open" and owner is None:
        return "open" if _writes_in_mode(_mode(call, 1)) else None
    if name == "open" and owner != "Image":
        return "open" if _writes_in_mode(_mode(call, 0)) else None
    if name == "fdopen":
        return "fdopen" if _writes_in_mode(_mode(call, 1)) else None
    if (owner, name) in _MODULE_ONLY:
        return f"{owner}.{name}"
    if name == "replace" and len(call.args) == 1 and not call.keywords:  # Path.replace(target); str.replace has 2
        return "Path.replace"
    return name if name in _ALWAYS else None


def find_writes(root: Path = ROOT) -> list[str]:
    """``path:line: call`` of every file-writing call outside the writer module (minus :data:`ALLOWED`)."""
    found = []
    for folder in SCANNED:
        for path in sorted((root / folder).rglob("*.py")):
            relative = path.relative_to(root)
            if relative == WRITER or ".venv" in relative.parts:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(relative))
            for node in ast.walk(tree):
                if isinstance(node, ast.Call):
                    how = _writes(node)
                    if how and (relative.as_posix(), how) not in ALLOWED:
                        found.append(f"{relative.as_posix()}:{node.lineno}: {how}")
    return found


def test_every_file_write_goes_through_the_writer_module() -> None:
    """Issue 25, one writer: no call outside :mod:`pe_iqa.safe_files` writes a file."""
    found = find_writes()
    assert not found, "write through pe_iqa.safe_files instead:\n" + "\n".join(found)


@pytest.mark.parametrize("code", [
    "open(p, 'w')", "open(p, mode='a')", "p.open('x')", "p.open(mode='r+')", "open(p, m)", "p.write_text('x')",
    "p.write_bytes(b'')", "fig.savefig(p)", "torch.save(s, p)", "image.save(p)", "frame.to_csv(p)",
    "np.savez_compressed(p, a=a)", "np.save(p, a)", "shutil.copy(a, b)", "shutil.move(a, b)", "os.replace(a, b)",
    "os.rename(a, b)", "p.rename(q)", "partial.replace(path)", "tempfile.NamedTemporaryFile('w', delete=False)",
    "tempfile.mkstemp()", "os.open(p, os.O_WRONLY | os.O_CREAT)", "os.fdopen(d, 'w')", "p.touch()",
])
def test_the_guard_finds_each_kind_of_write(code: str) -> None:
    call = ast.parse(code).body[0].value
    assert isinstance(call, ast.Call) and _writes(call)


@pytest.mark.parametrize("code", [
    "open(p)", "open(p, 'rb')", "p.open(newline='')", "Image.open(p)", "Image.open(p, 'r')", "text.replace('a', 'b')",
    "os.open(p, os.O_RDONLY)", "os.open(os.devnull, os.O_WRONLY)", "tempfile.mkdtemp()", "json.dumps(x)",
    "text.replace(old, new)", "frame.replace(to_replace=1)",
])
def test_the_guard_lets_reads_pass(code: str) -> None:
    call = ast.parse(code).body[0].value
    assert isinstance(call, ast.Call) and not _writes(call)


def _writers() -> dict[str, object]:
    import numpy as np

    from pe_iqa import safe_files

    def atomic(path: Path) -> None:
        with safe_files.atomic_write(path) as handle:
            handle.write("x")

    def figure(path: Path) -> None:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib.figure import Figure

        safe_files.write_figure(Figure(figsize=(1, 1)), path)

    return {
        "atomic_write": atomic,
        "write_text_atomic": lambda path: safe_files.write_text_atomic(path, "x"),
        "write_bytes_atomic": lambda path: safe_files.write_bytes_atomic(path, b"x"),
        "write_figure": figure,
        "write_image": lambda path: safe_files.write_image(path, np.zeros((2, 2), np.uint8)),
        "save_torch": lambda path: safe_files.save_torch({"a": 1}, path),
        "save_npz": lambda path: safe_files.save_npz(path, {"a": np.zeros(2)}),
        "create_exclusive": lambda path: safe_files.create_exclusive(path).close(),
    }


@pytest.mark.parametrize("writer", list(_writers()))
def test_every_writer_checks_its_destination_itself(writer: str, tmp_path: Path) -> None:
    """Issue 25: the check cannot be skipped — each writer of the module refuses a photo, a folder and a link."""
    import numpy as np
    from PIL import Image

    from pe_iqa.safe_files import DestinationError

    write = _writers()[writer]
    photo = tmp_path / "photo.png"
    Image.fromarray(np.full((4, 4, 3), 7, np.uint8)).save(photo)
    before = photo.read_bytes()
    (tmp_path / "folder").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    for target, reason in ((photo, "holds an image"), (tmp_path / "folder", "is a folder"),
                           (tmp_path / "link", "symbolic link")):
        with pytest.raises(DestinationError, match=reason):
            write(target)
    assert photo.read_bytes() == before and not (tmp_path / "elsewhere").exists()
    write(tmp_path / "new")
    assert (tmp_path / "new").is_file()
