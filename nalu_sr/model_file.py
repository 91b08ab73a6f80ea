"""Saving and loading fitted :class:`~nalu_sr.estimator.NaluRegressor` models as JSON.

A model file is plain JSON that people can read and diff, and that loads without running any
code: formulas are stored as :mod:`nalu_sr.serialization` trees, never as text that would be
parsed, and every field is checked before use. Layout (``format_version`` 1)::

    {
      "format": "nalu-sr-model",
      "format_version": 1,
      "nalu_sr_version": "0.1.0",
      "estimator": "NaluRegressor",
      "params": {...},                      # get_params(), JSON values only
      "features": {"names": [...], "from_dataframe": true,
                   "dropped": {"c": "constant 2"}},  # only when columns were left out
      "target": "V",                        # or null
      "formula": {"text": "I*R", "tree": {...}},
      "exact": true, "chosen": 0, "tolerance": 1e-06, "message": "...",
      "extrapolation": {...},               # for readers; recomputed on load
      "search": {"seconds": ..., "reseeded": 0, "interrupted": false, "timed_out": false,
                 "jobs": [...]},
      "candidates": {"columns": [{"name": "formula", "type": "str"}, ...], "rows": [...]},
      "split": {"labels": "0102...", "train_ranges": [[low, high], ...], "explicit": false}
    }

Candidate cells are typed by their column: ``"str"``, ``"int"``, ``"bool"``, ``"float"``
(non-finite values written as the strings ``"nan"``, ``"inf"``, ``"-inf"``, since JSON has no
such numbers) and ``"formula"`` (a tree). Text versions of formulas are there for people and
are rebuilt from the trees on load. The split's labels hold one digit per row: 0 train,
1 validation, 2 extrapolation.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import sympy

from ._version import __version__
from .data import Split
from .search import SearchResult
from .serialization import ModelFileError, expr_to_tree, tree_to_expr
from .symbolic import feature_symbols

if TYPE_CHECKING:
    from .estimator import NaluRegressor

FORMAT = "nalu-sr-model"
FORMAT_VERSION = 1

# Formulas a candidate can degenerate to (a reciprocal of 0) that trees do not hold.
_SPECIAL_FORMULAS = {"zoo": sympy.zoo, "nan": sympy.nan, "oo": sympy.oo, "-oo": -sympy.oo}
_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
_COLUMN_TYPES = ("str", "int", "float", "bool", "formula")


def model_to_dict(estimator: NaluRegressor) -> dict[str, Any]:
    """The JSON-ready content of a fitted estimator's model file."""
    result: SearchResult = estimator.result_
    columns = [
        {"name": str(name), "type": _column_type(name, result.candidates[name])}
        for name in result.candidates.columns
    ]
    rows = [
        {
            column["name"]: _cell_to_json(value, column["type"])
            for column, value in zip(columns, row, strict=True)
        }
        for row in result.candidates.itertuples(index=False, name=None)
    ]
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "nalu_sr_version": __version__,
        "estimator": type(estimator).__name__,
        "params": _params_to_json(estimator.get_params(deep=False)),
        "features": _features_to_json(estimator),
        "target": estimator.target_name_,
        "formula": _formula_to_json(result.formula),
        "exact": bool(result.exact),
        "chosen": int(result.chosen),
        "tolerance": float(result.tolerance),
        "message": result.message,
        "extrapolation": _plain(result.extrapolation),
        "search": {
            "seconds": float(result.seconds),
            "reseeded": int(result.reseeded),
            "interrupted": bool(result.interrupted),
            "timed_out": bool(result.timed_out),
            "jobs": list(result.jobs),
        },
        "candidates": {"columns": columns, "rows": rows},
        "split": {
            "labels": "".join(str(int(label)) for label in result.split.labels),
            "train_ranges": [[float(lo), float(hi)] for lo, hi in result.split.train_ranges],
            "explicit": bool(result.split.explicit),
        },
    }


def dumps_model(estimator: NaluRegressor) -> str:
    """The model file's text: indented, with each formula tree and table column on one line."""
    content = model_to_dict(estimator)
    marker = f"inline-{uuid.uuid4().hex}-"
    inline: dict[str, str] = {}

    def one_line(value: Any) -> str:
        key = f"{marker}{len(inline)}"
        inline[key] = json.dumps(value, ensure_ascii=False, allow_nan=False)
        return key

    table = content["candidates"]
    formula_columns = [c["name"] for c in table["columns"] if c["type"] == "formula"]
    for row in table["rows"]:
        for name in formula_columns:
            row[name] = one_line(row[name])
    table["columns"] = [one_line(column) for column in table["columns"]]
    content["formula"]["tree"] = one_line(content["formula"]["tree"])
    content["split"]["train_ranges"] = [one_line(pair) for pair in content["split"]["train_ranges"]]
    ranges = content["extrapolation"]["fitted_ranges"]
    content["extrapolation"]["fitted_ranges"] = {k: one_line(v) for k, v in ranges.items()}
    text = json.dumps(content, indent=2, ensure_ascii=False, allow_nan=False)
    for key, value in inline.items():
        text = text.replace(json.dumps(key), value, 1)
    return text


def save_model(
    estimator: NaluRegressor, path: str | os.PathLike, *, overwrite: bool = True
) -> None:
    """Write a fitted estimator to ``path`` atomically (see :func:`write_text_atomic`)."""
    write_text_atomic(path, dumps_model(estimator) + "\n", overwrite=overwrite)


def load_model(path: str | os.PathLike, cls: type | None = None) -> NaluRegressor:
    """Read a model file written by :func:`save_model`.

    Parameters
    ----------
    path : path-like
    cls : type, optional
        Estimator class to build (``NaluRegressor`` or a subclass).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ModelFileError
        If the file is not UTF-8 JSON, not a nalu-sr model, written by a newer format
        version, or any field is missing or malformed; the message names the field.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ModelFileError(f"{path}: not a nalu-sr model file: it is not UTF-8 text.") from error
    try:
        return loads_model(text, cls)
    except ModelFileError as error:
        raise ModelFileError(f"{path}: {error}") from None


def loads_model(text: str, cls: type | None = None) -> NaluRegressor:
    """Build an estimator from the text of a model file; see :func:`load_model`."""
    if cls is None:
        from . import estimator

        cls = estimator.NaluRegressor
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise ModelFileError(
            f"not a nalu-sr model file: the text is not valid JSON ({_short(error)})."
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ModelFileError(
            f'not a nalu-sr model file: it has no "format": "{FORMAT}" field. Model files '
            "are written by NaluRegressor.save or `nalu-sr fit --output FILE`."
        )
    version = _get(data, "format_version", int, "$")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"the file has format version {version}, newer than the {FORMAT_VERSION} this "
            f"nalu-sr {__version__} reads; upgrade nalu-sr to load it."
        )
    if version < 1:
        raise ModelFileError(f"format_version must be at least 1, got {version}.")
    params = _params_from_json(_get(data, "params", dict, "$"), cls)
    features = _get(data, "features", dict, "$")
    names = _get(features, "names", list, "$.features")
    if not names or not all(isinstance(name, str) for name in names):
        raise ModelFileError("$.features.names must be a non-empty list of strings.")
    try:
        symbols = feature_symbols(names)
    except ValueError as error:
        raise ModelFileError(f"$.features.names: {error}") from None
    from_dataframe = _get(features, "from_dataframe", bool, "$.features")
    # Files written before features were left out of the search have no "dropped" field.
    dropped = _get(features, "dropped", dict, "$.features") if "dropped" in features else {}
    if not all(name in names and isinstance(why, str) for name, why in dropped.items()):
        raise ModelFileError(
            "$.features.dropped must map feature names to the reason they were left out."
        )
    target = _get(data, "target", (str, type(None)), "$")

    candidates = _candidates_from_json(_get(data, "candidates", dict, "$"), names)
    chosen = _get(data, "chosen", int, "$")
    if chosen not in candidates.index:
        raise ModelFileError(f"$.chosen = {chosen} is not a row of the candidates table.")
    formula = _formula_from_json(_get(data, "formula", dict, "$"), "$.formula", names)
    if "sympy_format" in candidates and candidates.loc[chosen, "sympy_format"] != formula:
        raise ModelFileError(
            f"$.formula differs from the formula of candidate row {chosen} ($.chosen)."
        )
    search = _get(data, "search", dict, "$")
    jobs = _get(search, "jobs", list, "$.search")
    if not all(isinstance(job, str) for job in jobs):
        raise ModelFileError("$.search.jobs must be a list of strings.")
    result = SearchResult(
        formula=formula,
        exact=_get(data, "exact", bool, "$"),
        candidates=candidates,
        chosen=chosen,
        feature_names=list(names),
        symbols=symbols,
        split=_split_from_json(_get(data, "split", dict, "$"), len(names)),
        tolerance=float(_get(data, "tolerance", (int, float), "$")),
        message=_get(data, "message", str, "$"),
        seconds=float(_get(search, "seconds", (int, float), "$.search")),
        reseeded=_get(search, "reseeded", int, "$.search"),
        interrupted=_get(search, "interrupted", bool, "$.search"),
        timed_out=_get(search, "timed_out", bool, "$.search"),
        jobs=list(jobs),
    )
    estimator = cls(**params)
    estimator.n_features_in_ = len(names)
    if from_dataframe:
        estimator.feature_names_in_ = np.asarray(names, dtype=object)
    estimator._set_result(result, target, dropped)
    return estimator


def write_text_atomic(path: str | os.PathLike, text: str, *, overwrite: bool = False) -> None:
    """Write ``text`` to ``path`` so that the file is either complete or untouched.

    The text goes to a temporary file in the same folder, which then replaces ``path``
    (``os.replace``), or, when ``overwrite`` is false, is linked to ``path`` only if no file
    exists there (``os.link`` fails atomically on an existing file).

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is false.
    FileNotFoundError
        If the folder of ``path`` does not exist.
    """
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"folder {folder} does not exist; create it first.")
    if not overwrite and (path.exists() or path.is_symlink()):
        raise FileExistsError(f"{path} already exists; choose another name or allow overwriting.")
    try:
        _write_and_rename(path, text, overwrite)
    except FileExistsError:
        raise
    except OSError as error:
        # A full disk, a read-only folder: name the file the user asked for, not the
        # temporary one.
        raise OSError(error.errno, error.strerror or str(error), str(path)) from error


def _write_and_rename(path: Path, text: str, overwrite: bool) -> None:
    descriptor, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        os.chmod(temporary, 0o666 & ~_umask())
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
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


# --- writing -----------------------------------------------------------------------------


def _features_to_json(estimator: NaluRegressor) -> dict[str, Any]:
    features = {
        "names": list(estimator.result_.feature_names),
        "from_dataframe": hasattr(estimator, "feature_names_in_"),
    }
    dropped = getattr(estimator, "dropped_features_", {})
    if dropped:
        features["dropped"] = dict(dropped)
    return features


def _column_type(name: object, column: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(column):
        return "bool"
    if pd.api.types.is_integer_dtype(column):
        return "int"
    if pd.api.types.is_float_dtype(column):
        return "float"
    if all(isinstance(value, sympy.Basic) for value in column):
        return "formula"
    if all(isinstance(value, str) for value in column):
        return "str"
    raise ModelFileError(f"cannot store candidates column {name!r} of dtype {column.dtype}.")


def _cell_to_json(value: Any, kind: str) -> Any:
    if kind == "formula":
        return _formula_to_json(value)["tree"]
    if kind == "float":
        return _float_to_json(float(value))
    if kind == "int":
        return int(value)
    if kind == "bool":
        return bool(value)
    return str(value)


def _float_to_json(value: float) -> float | str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def _formula_to_json(expr: sympy.Expr) -> dict[str, Any]:
    for name, special in _SPECIAL_FORMULAS.items():
        if expr == special:
            return {"text": str(expr), "tree": {"special": name}}
    return {"text": str(expr), "tree": expr_to_tree(expr)}


def _params_to_json(params: dict[str, Any]) -> dict[str, Any]:
    stored = {}
    for name, value in params.items():
        if isinstance(value, tuple):
            value = list(value)
        if name == "random_state" and isinstance(value, np.random.RandomState):
            value = None  # a generator's state is not a setting; the fit it gave is stored
        if isinstance(value, np.generic):
            value = value.item()
        if not _is_plain_param(value):
            raise ModelFileError(
                f"cannot store parameter {name}={value!r} in a model file: parameters must "
                "be numbers, strings, booleans, None or lists of those."
            )
        stored[name] = _float_to_json(value) if isinstance(value, float) else value
    return stored


def _is_plain_param(value: Any) -> bool:
    if isinstance(value, list):
        return all(_is_plain_param(item) and not isinstance(item, list) for item in value)
    return value is None or isinstance(value, (bool, int, float, str))


def _plain(value: Any) -> Any:
    """``value`` with tuples as lists and non-finite floats as strings (JSON has neither)."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, (float, np.floating)):
        return _float_to_json(float(value))
    if isinstance(value, np.generic):
        return value.item()
    return value


# --- reading -----------------------------------------------------------------------------


def _get(container: dict, key: str, types: type | tuple[type, ...], where: str) -> Any:
    if key not in container:
        raise ModelFileError(f"{where} has no field {key!r}.")
    value = container[key]
    wanted = types if isinstance(types, tuple) else (types,)
    # JSON true/false are Python bools, which are also ints: an int field must not take them.
    is_bool = isinstance(value, bool)
    if not isinstance(value, wanted) or (is_bool and bool not in wanted):
        names = " or ".join("null" if t is type(None) else t.__name__ for t in wanted)
        raise ModelFileError(f"{where}.{key} must be {names}, got {_short(value)}.")
    return value


def _params_from_json(params: dict, cls: type) -> dict[str, Any]:
    known = cls().get_params(deep=False)
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ModelFileError(
            f"$.params has unknown parameters {unknown}; the file may come from another "
            "version of nalu-sr."
        )
    restored = {}
    for name, value in params.items():
        if not _is_plain_param(value):
            raise ModelFileError(
                f"$.params.{name} must be a plain JSON value, got {_short(value)}."
            )
        if isinstance(value, str) and value in _NON_FINITE and isinstance(known[name], float):
            value = _NON_FINITE[value]
        restored[name] = value
    return restored


def _formula_from_json(node: dict, where: str, names: list[str]) -> sympy.Expr:
    tree = _get(node, "tree", dict, where)
    return _tree(tree, f"{where}.tree", names)


def _tree(tree: Any, where: str, names: list[str]) -> sympy.Expr:
    if isinstance(tree, dict) and set(tree) == {"special"}:
        if tree["special"] not in _SPECIAL_FORMULAS:
            raise ModelFileError(
                f"{where}: unknown special formula {_short(tree['special'])}; "
                f"allowed: {sorted(_SPECIAL_FORMULAS)}."
            )
        return _SPECIAL_FORMULAS[tree["special"]]
    try:
        expr = tree_to_expr(tree)
    except ModelFileError as error:
        raise ModelFileError(f"{where}: {error}") from None
    except (LookupError, TypeError, ValueError, AttributeError, ArithmeticError) as error:
        # A damaged node that the tree reader does not check for is a bad file, not a crash.
        raise ModelFileError(f"{where} is not a valid formula tree ({_short(error)}).") from None
    foreign = sorted(s.name for s in expr.free_symbols if s.name not in names)
    if foreign:
        raise ModelFileError(f"{where} uses {foreign}, which are not features of the model.")
    return expr


def _candidates_from_json(table: dict, names: list[str]) -> pd.DataFrame:
    columns = _get(table, "columns", list, "$.candidates")
    rows = _get(table, "rows", list, "$.candidates")
    schema: list[tuple[str, str]] = []
    for i, column in enumerate(columns):
        where = f"$.candidates.columns[{i}]"
        if not isinstance(column, dict):
            raise ModelFileError(f"{where} must be an object with 'name' and 'type'.")
        name, kind = _get(column, "name", str, where), _get(column, "type", str, where)
        if kind not in _COLUMN_TYPES:
            raise ModelFileError(
                f"{where}.type must be one of {list(_COLUMN_TYPES)}, got {kind!r}."
            )
        schema.append((name, kind))
    if len({name for name, _ in schema}) != len(schema):
        raise ModelFileError("$.candidates.columns names a column twice.")
    if not rows:
        raise ModelFileError("$.candidates.rows is empty; a fitted model has candidates.")
    records = []
    for i, row in enumerate(rows):
        where = f"$.candidates.rows[{i}]"
        if not isinstance(row, dict) or set(row) != {name for name, _ in schema}:
            raise ModelFileError(f"{where} must be an object with exactly the listed columns.")
        records.append(
            {name: _cell(row[name], kind, f"{where}.{name}", names) for name, kind in schema}
        )
    frame = pd.DataFrame(records, columns=[name for name, _ in schema])
    if "formula" in frame and "sympy_format" in frame:
        frame["formula"] = [str(expr) for expr in frame["sympy_format"]]
    return frame


def _cell(value: Any, kind: str, where: str, names: list[str]) -> Any:
    if kind == "formula":
        return _tree(value, where, names)
    if kind == "float":
        if isinstance(value, str) and value in _NON_FINITE:
            return _NON_FINITE[value]
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ModelFileError(f"{where} must be a number or one of 'nan', 'inf', '-inf'.")
    expected = {"int": int, "bool": bool, "str": str}[kind]
    if not isinstance(value, expected) or (kind == "int" and isinstance(value, bool)):
        raise ModelFileError(f"{where} must be {kind}, got {_short(value)}.")
    return value


def _split_from_json(split: dict, n_features: int) -> Split:
    labels = _get(split, "labels", str, "$.split")
    if not labels or set(labels) - set("012"):
        raise ModelFileError("$.split.labels must be a non-empty string of the digits 0, 1, 2.")
    ranges = _get(split, "train_ranges", list, "$.split")
    valid = len(ranges) == n_features and all(
        isinstance(pair, list)
        and len(pair) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in pair)
        for pair in ranges
    )
    if not valid:
        raise ModelFileError(
            f"$.split.train_ranges must hold one [low, high] pair of numbers per feature "
            f"({n_features})."
        )
    return Split(
        labels=(np.frombuffer(labels.encode("ascii"), dtype=np.uint8) - ord("0")).astype(np.int8),
        train_ranges=np.array(ranges, dtype=np.float64).reshape(n_features, 2),
        explicit=_get(split, "explicit", bool, "$.split"),
    )


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value) if not isinstance(value, BaseException) else str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "ModelFileError",
    "dumps_model",
    "load_model",
    "loads_model",
    "model_to_dict",
    "save_model",
    "write_text_atomic",
]
