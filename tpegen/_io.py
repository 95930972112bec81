"""Safe reading of user files and atomic writing of outputs.

Reading: every user file (config, topology, Liberty, ``.npy``) is checked before it is read: it
must be a regular file (not a folder, FIFO or device, which would hang or never end) below a size
limit, and text files must be UTF-8. Failures are one-line :class:`~tpegen.errors.TpegenError`\\ s
naming the file.

Writing: outputs are built in a scratch file or folder next to the target and renamed into place
only when everything succeeded, so a failed command leaves nothing half-written and nothing
behind (parent folders it created are removed again). It never writes through a symlink or onto
a device node, never replaces a folder, and only writes into an existing non-empty folder when
tpegen wrote that folder before (it carries the marker file :data:`MARKER`) or ``force`` is given;
even then it replaces only the files it writes. New files and folders get the user's umask.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from tpegen.errors import ConfigError, TpegenError

MARKER = ".tpegen-output"  # a folder holding this file was created by tpegen
MIB = 1 << 20


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISREG(mode):
        return "a file"
    return "not a regular file"


def _oserror(path: Path | str, exc: OSError, doing: str) -> TpegenError:
    return TpegenError(f"{path}: cannot {doing} ({exc.strerror or exc})")


def check_input_file(path: str | Path, what: str, *, limit: int) -> tuple[Path, int]:
    """Return ``(path, size)`` of an existing regular file of at most ``limit`` bytes."""
    if str(path) == "":
        raise ConfigError(what, "a file path", "")
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise TpegenError(f"{p}: no such file ({what})") from None
    except OSError as exc:
        raise _oserror(p, exc, f"read {what}") from None
    if not stat.S_ISREG(st.st_mode):
        raise TpegenError(f"{p}: {what} must be a regular file, not {_kind(st.st_mode)}")
    if st.st_size > limit:
        raise TpegenError(f"{p}: {what} is {st.st_size:,} bytes; the limit is {limit:,} bytes")
    return p, st.st_size


def read_text_file(path: str | Path, what: str, *, limit: int = MIB) -> str:
    """The UTF-8 text of a user file (a BOM is allowed), after :func:`check_input_file`."""
    p, _ = check_input_file(path, what, limit=limit)
    try:
        with open(p, "rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise _oserror(p, exc, f"read {what}") from None
    if len(data) > limit:
        raise TpegenError(f"{p}: {what} is larger than the limit of {limit:,} bytes")
    if b"\0" in data:
        raise TpegenError(f"{p}: {what} must be UTF-8 text, but it holds NUL bytes (a binary file?)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TpegenError(
            f"{p}: {what} must be UTF-8 text; byte 0x{data[exc.start]:02x} at offset {exc.start} is not"
        ) from None


# -- writing -----------------------------------------------------------------------------------


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _check_name_lengths(target: Path) -> None:
    for part in target.parts:
        if len(os.fsencode(part)) > 255:
            raise TpegenError(f"{target}: a path component is longer than 255 bytes ({part[:40]}...)")
    if len(os.fsencode(str(target.absolute()))) > 4000:
        raise TpegenError(f"{target}: the path is too long")


def _make_parents(target: Path, option: str) -> list[Path]:
    """Create ``target``'s missing parent folders; return those created (outermost first)."""
    top = _existing_parent(target, option)
    missing = []
    parent = target.parent
    while parent != top:
        missing.append(parent)
        parent = parent.parent
    created: list[Path] = []
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o777)
        except OSError as exc:
            _remove_folders(created)
            raise _oserror(folder, exc, f"create the folder ({option})") from None
        created.append(folder)
    return created


def _remove_folders(created: list[Path]) -> None:
    for folder in reversed(created):
        with contextlib.suppress(OSError):
            folder.rmdir()


# Outputs written inside a transaction() are published together when it ends without error.
_TRANSACTION: contextvars.ContextVar[list | None] = contextvars.ContextVar("tpegen_outputs", default=None)


@contextlib.contextmanager
def transaction() -> Iterator[None]:
    """Defer publishing every :func:`atomic_file` / :func:`atomic_dir` output inside the block
    until the block succeeds; on any error all of them are discarded.

    The CLI runs each command in one transaction and flushes standard output before it ends, so
    that a command whose report cannot be printed (closed pipe, full disk) leaves no files."""
    staged: list[tuple] = []
    token = _TRANSACTION.set(staged)
    try:
        yield
    except BaseException:
        for _commit, rollback in reversed(staged):
            rollback()
        raise
    finally:
        _TRANSACTION.reset(token)
    for i, (commit, _rollback) in enumerate(staged):
        try:
            commit()
        except BaseException:
            for _commit, rollback in staged[i:]:
                rollback()
            raise


def _stage(commit, rollback) -> None:
    staged = _TRANSACTION.get()
    if staged is not None:
        staged.append((commit, rollback))
        return
    try:
        commit()
    except BaseException:
        rollback()
        raise


def _check_target(target: str | Path, option: str) -> Path:
    if str(target) == "":
        raise ConfigError(option, "a non-empty path", "")
    target = Path(target)
    _check_name_lengths(target)
    return target


def _writable_entry(path: Path, option: str) -> None:
    """An existing entry tpegen may replace: a regular file (never a symlink, device or folder)."""
    try:
        st = path.lstat()
    except (FileNotFoundError, NotADirectoryError):
        return  # missing, or below a file (reported when its parents are made)
    if stat.S_ISLNK(st.st_mode):
        raise TpegenError(f"{path}: is a symlink; tpegen does not write through symlinks ({option})")
    if not stat.S_ISREG(st.st_mode):
        raise TpegenError(
            f"{path}: exists and is {_kind(st.st_mode)}; tpegen only replaces regular files ({option})"
        )


def check_output_file(target: str | Path, *, option: str = "-o") -> Path:
    """Check, before any work, that ``target`` can become an output file (see :func:`atomic_file`)."""
    target = _check_target(target, option)
    _writable_entry(target, option)
    _existing_parent(target, option)
    return target


def check_output_dir(target: str | Path, *, option: str = "-o", force: bool = False) -> Path:
    """Check, before any work, that ``target`` can become an output folder (see :func:`atomic_dir`)."""
    target = _check_target(target, option)
    try:
        st = target.lstat()
    except (FileNotFoundError, NotADirectoryError):
        st = None  # missing, or below a file (reported when its parents are made)
    if st is not None:
        if stat.S_ISLNK(st.st_mode) and target.is_dir():
            st = target.stat()  # a symlink to a folder: write into that folder
        if not stat.S_ISDIR(st.st_mode):
            raise TpegenError(f"{target}: exists and is {_kind(st.st_mode)}, not a folder ({option})")
        if not force and not (target / MARKER).is_file() and any(target.iterdir()):
            raise TpegenError(
                f"{target}: folder is not empty and was not written by tpegen; "
                f"choose a new or empty folder, or pass --force to add tpegen's files to it ({option})"
            )
    _existing_parent(target, option)
    return target


def _existing_parent(target: Path, option: str) -> Path:
    """The nearest existing ancestor of ``target``, which must be a folder."""
    parent = target.parent
    while not parent.exists():
        if parent.is_symlink():
            raise TpegenError(f"{parent}: is a broken symlink ({option})")
        parent = parent.parent
    if not parent.is_dir():
        raise TpegenError(f"{target}: {parent} is not a folder ({option})")
    return parent


@contextlib.contextmanager
def atomic_file(target: str | Path, *, option: str = "-o") -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success it is renamed to ``target``.

    An existing regular file at ``target`` is replaced; anything else there is refused.
    """
    target = check_output_file(target, option=option)
    created = _make_parents(target, option)
    try:
        fd, name = tempfile.mkstemp(prefix=f".{target.name[:200]}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        _remove_folders(created)
        raise _oserror(target, exc, f"write ({option})") from None
    os.close(fd)
    tmp = Path(name)

    def rollback() -> None:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        _remove_folders(created)

    def commit() -> None:
        try:
            os.chmod(tmp, 0o666 & ~_umask())
            os.replace(tmp, target)
        except OSError as exc:
            raise _oserror(target, exc, f"write ({option})") from None

    try:
        yield tmp
    except BaseException:
        rollback()
        raise
    _stage(commit, rollback)


@contextlib.contextmanager
def atomic_dir(target: str | Path, *, option: str = "-o", force: bool = False) -> Iterator[Path]:
    """Yield a scratch folder; on success its files become ``target``'s (see module docstring).

    ``target`` may be new, an empty folder, or a folder tpegen wrote before; a non-empty folder
    that tpegen did not write is refused unless ``force``. Only the files written in the scratch
    folder are replaced; nothing else in ``target`` is touched.
    """
    target = check_output_dir(target, option=option, force=force)
    created = _make_parents(target, option)
    try:
        scratch = Path(tempfile.mkdtemp(prefix=f".{target.name[:200]}.", dir=target.parent))
    except OSError as exc:
        _remove_folders(created)
        raise _oserror(target, exc, f"write ({option})") from None

    def rollback() -> None:
        shutil.rmtree(scratch, ignore_errors=True)
        _remove_folders(created)

    def commit() -> None:
        try:
            _publish(scratch, target, option)
        except OSError as exc:
            raise _oserror(target, exc, f"write ({option})") from None
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    try:
        yield scratch
        (scratch / MARKER).write_text("This folder was written by tpegen; it may overwrite its files.\n")
    except OSError as exc:
        rollback()
        raise _oserror(target, exc, f"write ({option})") from None
    except BaseException:
        rollback()
        raise
    _stage(commit, rollback)


def _publish(scratch: Path, target: Path, option: str) -> None:
    mask = _umask()
    for path in [scratch, *scratch.rglob("*")]:
        os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~mask)
    if not target.exists():
        os.replace(scratch, target)
        return
    items: Iterable[Path] = sorted(scratch.iterdir())
    for item in items:
        dest = target / item.name
        if item.is_dir():
            if dest.exists() or dest.is_symlink():
                raise TpegenError(f"{dest}: exists; tpegen does not replace folders ({option})")
        else:
            _writable_entry(dest, option)
    for item in items:
        os.replace(item, target / item.name)


# -- .npy operands -----------------------------------------------------------------------------

# 16,777,216 elements (a 4096 x 4096 matrix): an int64 operand and the float64 and int64 copies the
# numeric models make stay well under 1 GiB.
MAX_MATRIX_ELEMENTS = 1 << 24
_NUMERIC_KINDS = {"i": "integer", "u": "unsigned integer", "f": "float"}


def load_matrix(path: str | Path, what: str, *, max_elements: int = MAX_MATRIX_ELEMENTS):
    """Load a 2-D numeric ``.npy`` matrix (see :func:`load_array`)."""
    return load_array(path, what, ndim=2, max_elements=max_elements)


def load_array(
    path: str | Path, what: str, *, ndim: int | None = None, max_elements: int = MAX_MATRIX_ELEMENTS
):
    """Load a numeric ``.npy`` array, checking its header before any data is read.

    The header must describe an array (``ndim``-D unless None) of an integer or float dtype
    with at most ``max_elements`` elements, and the file must hold exactly that many bytes.
    """
    import numpy as np

    limit = 16 * max_elements + MIB
    p, size = check_input_file(path, what, limit=limit)
    try:
        with open(p, "rb") as fh:
            try:
                version = np.lib.format.read_magic(fh)
            except ValueError:
                raise TpegenError(f"{p}: {what} is not a .npy file (no NumPy magic header)") from None
            try:
                read_header = {
                    (1, 0): np.lib.format.read_array_header_1_0,
                    (2, 0): np.lib.format.read_array_header_2_0,
                }[version]
                shape, fortran, dtype = read_header(fh, max_header_size=10_000)
            except KeyError:
                raise TpegenError(
                    f"{p}: {what} has .npy format version {version}; 1.0 and 2.0 are read"
                ) from None
            except (ValueError, SyntaxError, TypeError) as exc:
                raise TpegenError(f"{p}: {what} has a malformed .npy header ({str(exc)[:80]})") from None
            offset = fh.tell()
            if dtype.kind not in _NUMERIC_KINDS or dtype.hasobject or dtype.fields is not None:
                raise TpegenError(
                    f"{p}: {what} must hold integers or floats (int8..int64, uint8..uint64, float16..float64), "
                    f"got dtype {dtype}"
                )
            if ndim is not None and len(shape) != ndim:
                kind = "a 2-D matrix" if ndim == 2 else f"a {ndim}-D array"
                raise TpegenError(f"{p}: {what} must be {kind}, got shape {shape}")
            count = math.prod(int(d) for d in shape)
            if count > max_elements:
                raise TpegenError(
                    f"{p}: {what} has {count:,} elements {tuple(shape)}; the limit is {max_elements:,}"
                )
            if size - offset != count * dtype.itemsize:
                raise TpegenError(
                    f"{p}: {what} is truncated or padded: the header says {tuple(shape)} {dtype} "
                    f"({count * dtype.itemsize:,} bytes) but the file holds {size - offset:,}"
                )
            data = np.fromfile(fh, dtype=dtype, count=count)
    except OSError as exc:
        raise _oserror(p, exc, f"read {what}") from None
    data = data.reshape(shape, order="F" if fortran else "C")
    return data.astype(data.dtype.newbyteorder("="), copy=False)
