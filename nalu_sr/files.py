"""Writing files whole or not at all: model files, exports, predictions, figures, tables."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["write_bytes_atomic", "write_text_atomic"]


def write_text_atomic(
    path: str | os.PathLike,
    text: str,
    *,
    overwrite: bool = False,
    mode: int | None = None,
) -> None:
    """Write ``text`` to ``path`` so that the file is either complete or untouched.

    The text goes to a temporary file in the same folder, which then replaces ``path``
    (``os.replace``), or, when ``overwrite`` is false, is linked to ``path`` only if no file
    exists there (``os.link`` fails atomically on an existing file).

    Parameters
    ----------
    path : path-like
    text : str
        Written as UTF-8, with line endings as they are.
    overwrite : bool, default=False
        Replace an existing file; when false, an existing file raises ``FileExistsError``.
    mode : int, optional
        Permissions of the new file, e.g. ``0o644`` for tables everyone should read; by
        default those of any new file (``0o666`` less the umask).

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is false.
    FileNotFoundError
        If the folder of ``path`` does not exist.
    OSError
        If the write fails (a full disk, a read-only folder); it names ``path``, not the
        temporary file.
    """
    write_bytes_atomic(path, text.encode("utf-8"), overwrite=overwrite, mode=mode)


def write_bytes_atomic(
    path: str | os.PathLike,
    data: bytes,
    *,
    overwrite: bool = False,
    mode: int | None = None,
) -> None:
    """Write ``data`` to ``path`` so that the file is either complete or untouched.

    The binary form of :func:`write_text_atomic` (compressed tables, figures), with the same
    temporary file, parameters and errors.

    Parameters
    ----------
    path : path-like
    data : bytes
    overwrite : bool, default=False
        Replace an existing file; when false, an existing file raises ``FileExistsError``.
    mode : int, optional
        Permissions of the new file; by default those of any new file.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is false.
    FileNotFoundError
        If the folder of ``path`` does not exist.
    OSError
        If the write fails; it names ``path``, not the temporary file.
    """
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"folder {folder} does not exist; create it first.")
    if not overwrite and (path.exists() or path.is_symlink()):
        raise FileExistsError(f"{path} already exists; choose another name or allow overwriting.")
    try:
        _write_and_rename(path, data, overwrite, 0o666 & ~_umask() if mode is None else mode)
    except FileExistsError:
        raise
    except OSError as error:
        raise OSError(error.errno, error.strerror or str(error), str(path)) from error


def _write_and_rename(path: Path, data: bytes, overwrite: bool, mode: int) -> None:
    descriptor, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        # mkstemp makes the file private (0o600).
        os.chmod(temporary, mode)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(temporary, path)
            return
        try:
            os.link(temporary, path)
        except FileExistsError:
            raise FileExistsError(
                f"{path} already exists; choose another name or allow overwriting."
            ) from None
        except OSError:
            # No hard links on this file system: the check above is the best we can do.
            os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
