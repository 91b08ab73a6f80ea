"""Model files: the fitted state of an estimator (a :class:`ModelRecord`) as JSON.

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
                 "explained": false, "stages_left": 0, "jobs": [...]},
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
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sympy

from ._version import __version__
from .data import Split
from .files import write_text_atomic
from .search import SearchResult
from .serialization import ModelFileError, expr_to_tree, shorten, tree_to_expr
from .symbolic import feature_symbols

FORMAT = "nalu-sr-model"
FORMAT_VERSION = 1

# Formulas a candidate can degenerate to (a reciprocal of 0) that trees do not hold.
_SPECIAL_FORMULAS = {"zoo": sympy.zoo, "nan": sympy.nan, "oo": sympy.oo, "-oo": -sympy.oo}
_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
_COLUMN_TYPES = ("str", "int", "float", "bool", "formula")


@dataclass(frozen=True)
class ModelRecord:
    """The fitted state a model file holds, free of any estimator class.

    Attributes
    ----------
    result : SearchResult
        The search's outcome: formula, candidates, split, verdict and timings. Its
        ``feature_names`` are the model's features, all of them.
    params : dict
        The estimator's ``get_params()``, as plain values.
    from_dataframe : bool
        Whether the features were named by a DataFrame's columns (``feature_names_in_``).
    target : str or None
        Name of the target, when it was a named pandas Series.
    dropped : dict of str to str
        Features left out of the search, with the reason.
    estimator : str or None
        Name of the estimator class that wrote the file, for people reading it; loading
        does not use it (``None`` when the file does not name one).
    """

    result: SearchResult
    params: dict[str, Any]
    from_dataframe: bool
    target: str | None = None
    dropped: dict[str, str] = field(default_factory=dict)
    estimator: str | None = None


def record_to_dict(record: ModelRecord) -> dict[str, Any]:
    """The JSON-ready content of a model file."""
    result = record.result
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
        "estimator": record.estimator,
        "params": _params_to_json(record.params),
        "features": _features_to_json(record),
        "target": record.target,
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
            "explained": bool(result.explained),
            "stages_left": int(result.stages_left),
            "jobs": list(result.jobs),
        },
        "candidates": {"columns": columns, "rows": rows},
        "split": {
            "labels": "".join(str(int(label)) for label in result.split.labels),
            "train_ranges": [[float(lo), float(hi)] for lo, hi in result.split.train_ranges],
            "explicit": bool(result.split.explicit),
        },
    }


def dumps_record(record: ModelRecord) -> str:
    """The model file's text: indented, with each formula tree and table column on one line."""
    content = record_to_dict(record)
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


def save_record(record: ModelRecord, path: str | os.PathLike, *, overwrite: bool = True) -> None:
    """Write a model file to ``path`` atomically (see :func:`~nalu_sr.files.write_text_atomic`)."""
    write_text_atomic(path, dumps_record(record) + "\n", overwrite=overwrite)


def load_record(path: str | os.PathLike, known_params: Mapping[str, Any]) -> ModelRecord:
    """Read a model file written by :func:`save_record`.

    Parameters
    ----------
    path : path-like
    known_params : mapping of str to object
        The parameters of the estimator to build, with their defaults (its
        ``get_params()``): a stored parameter not among them is an error, and a float one
        stored as ``"nan"``, ``"inf"`` or ``"-inf"`` is read back as that float.

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
        return loads_record(text, known_params)
    except ModelFileError as error:
        raise ModelFileError(f"{path}: {error}") from None


def loads_record(text: str, known_params: Mapping[str, Any]) -> ModelRecord:
    """The record in the text of a model file; see :func:`load_record`."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise ModelFileError(
            f"not a nalu-sr model file: the text is not valid JSON ({shorten(error, 60)})."
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
    params = _params_from_json(_get(data, "params", dict, "$"), known_params)
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
    estimator = data.get("estimator")
    return ModelRecord(
        result=_result_from_json(data, names, symbols),
        params=params,
        from_dataframe=from_dataframe,
        target=target,
        dropped=dropped,
        estimator=estimator if isinstance(estimator, str) else None,
    )


def _result_from_json(data: dict, names: list[str], symbols: list[sympy.Symbol]) -> SearchResult:
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
    return SearchResult(
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
        # Absent from files written before the search plan was set by effort.
        explained=_get({"explained": False, **search}, "explained", bool, "$.search"),
        stages_left=_get({"stages_left": 0, **search}, "stages_left", int, "$.search"),
    )


# --- writing -----------------------------------------------------------------------------


def _features_to_json(record: ModelRecord) -> dict[str, Any]:
    features = {
        "names": list(record.result.feature_names),
        "from_dataframe": bool(record.from_dataframe),
    }
    if record.dropped:
        features["dropped"] = dict(record.dropped)
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
        raise ModelFileError(f"{where}.{key} must be {names}, got {shorten(value, 60)}.")
    return value


def _params_from_json(params: dict, known: Mapping[str, Any]) -> dict[str, Any]:
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
                f"$.params.{name} must be a plain JSON value, got {shorten(value, 60)}."
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
                f"{where}: unknown special formula {shorten(tree['special'], 60)}; "
                f"allowed: {sorted(_SPECIAL_FORMULAS)}."
            )
        return _SPECIAL_FORMULAS[tree["special"]]
    try:
        expr = tree_to_expr(tree)
    except ModelFileError as error:
        raise ModelFileError(f"{where}: {error}") from None
    except (LookupError, TypeError, ValueError, AttributeError, ArithmeticError) as error:
        # A damaged node that the tree reader does not check for is a bad file, not a crash.
        raise ModelFileError(
            f"{where} is not a valid formula tree ({shorten(error, 60)})."
        ) from None
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
        raise ModelFileError(f"{where} must be {kind}, got {shorten(value, 60)}.")
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


__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "ModelFileError",
    "ModelRecord",
    "dumps_record",
    "load_record",
    "loads_record",
    "record_to_dict",
    "save_record",
]
