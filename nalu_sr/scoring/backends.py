"""Choosing a scoring backend; each is imported only when first asked for.

Numba is optional (``pip install nalu-sr[fast]``), and importing it, let alone compiling the kernel,
costs seconds; nothing here imports it until a score is requested from it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

BACKENDS = ("numpy", "numba", "torch")


def load_backend(name: str) -> tuple[str, ModuleType]:
    """The backend module for ``name``, and the name of the backend actually used.

    ``"auto"`` is ``"numba"`` when Numba imports and ``"numpy"`` otherwise, without a warning.

    Raises
    ------
    ValueError
        For a name that is not a backend.
    ImportError
        For ``"numba"`` when Numba is not installed.
    """
    if name == "auto":
        try:
            return "numba", importlib.import_module(".numba_backend", __package__)
        except ImportError:
            return "numpy", importlib.import_module(".numpy_backend", __package__)
    if name not in BACKENDS:
        raise ValueError(
            f"backend={name!r} is not a scoring backend; use one of "
            f"{', '.join(repr(b) for b in ('auto', *BACKENDS))}."
        )
    try:
        return name, importlib.import_module(f".{name}_backend", __package__)
    except ImportError as error:
        if name == "numba":
            raise ImportError(
                "backend='numba' needs Numba, which is not installed; install it with "
                "`pip install nalu-sr[fast]`, or use backend='auto' to fall back to NumPy."
            ) from error
        raise


def available_backends() -> list[str]:
    """Names of the backends that can run here (importing each one to find out)."""
    available = []
    for name in BACKENDS:
        try:
            load_backend(name)
        except ImportError:
            continue
        available.append(name)
    return available
