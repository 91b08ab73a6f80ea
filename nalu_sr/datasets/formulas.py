"""Tables of numbers drawn from a known formula: the ground truth our searches must recover.

A formula is written ``"target = expression"`` (or given as a SymPy ``Eq``). Every name in it is
a real-valued symbol, including names SymPy would otherwise read as constants (``E``, ``I``,
``S``, ``N``, ``pi``) and Python keywords (``lambda``); only the functions listed in
:data:`FUNCTIONS` followed by ``(`` are read as functions.
"""

from __future__ import annotations

import io
import numbers
import tokenize
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
import sympy
from sympy.parsing.sympy_parser import convert_xor, parse_expr, standard_transformations

__all__ = [
    "FUNCTIONS",
    "check_ranges",
    "evaluate_formula",
    "make_formula_dataset",
    "parse_formula",
]

Interval = tuple[float, float]

#: Function names a formula may call; any other name is a real symbol.
FUNCTIONS: dict[str, Callable[..., sympy.Expr]] = {
    "sin": sympy.sin,
    "cos": sympy.cos,
    "tan": sympy.tan,
    "asin": sympy.asin,
    "acos": sympy.acos,
    "atan": sympy.atan,
    "sinh": sympy.sinh,
    "cosh": sympy.cosh,
    "tanh": sympy.tanh,
    "exp": sympy.exp,
    "log": sympy.log,
    "sqrt": sympy.sqrt,
    "abs": sympy.Abs,
    "Abs": sympy.Abs,
    "Min": sympy.Min,
    "Max": sympy.Max,
}

# What parse_expr's number transformations emit; nothing else is reachable from the text.
_PARSER_GLOBALS = {
    "Integer": sympy.Integer,
    "Float": sympy.Float,
    "Rational": sympy.Rational,
    "Symbol": sympy.Symbol,
}
_TRANSFORMATIONS = (*standard_transformations, convert_xor)


def _parse_side(text: str, symbols: dict[str, sympy.Symbol], formula: str) -> sympy.Expr:
    """Parse one side of a formula, mapping every non-function name to a real symbol.

    Names are swapped for placeholders before SymPy sees them, so that ``lambda`` (a Python
    keyword) and ``E``/``I``/``S``/``N`` (SymPy singletons) are plain symbols too.
    """
    try:
        tokens = [
            tok
            for tok in tokenize.generate_tokens(io.StringIO(text.strip()).readline)
            if tok.type not in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER)
        ]
    except (tokenize.TokenError, IndentationError, SyntaxError) as exc:
        raise ValueError(f"cannot read {text.strip()!r} in formula {formula!r}: {exc}") from exc
    if not tokens:
        raise ValueError(f"formula {formula!r} has an empty side; write it as 'y = x0 + x1'.")

    local: dict[str, object] = dict(FUNCTIONS)
    placeholders: dict[str, str] = {}
    pieces: list[tuple[int, str]] = []
    for position, tok in enumerate(tokens):
        if tok.type != tokenize.NAME:
            pieces.append((tok.type, tok.string))
            continue
        following = tokens[position + 1].string if position + 1 < len(tokens) else ""
        if following == "(":
            if tok.string not in FUNCTIONS:
                raise ValueError(
                    f"unknown function {tok.string!r} in formula {formula!r}; "
                    f"use one of {sorted(FUNCTIONS)} or write products with '*'."
                )
            pieces.append((tok.type, tok.string))
            continue
        name = tok.string
        if name not in placeholders:
            placeholders[name] = f"_nalu_sr_symbol_{len(placeholders)}"
            local[placeholders[name]] = symbols.setdefault(name, sympy.Symbol(name, real=True))
        pieces.append((tok.type, placeholders[name]))
    code = tokenize.untokenize(pieces)
    try:
        return parse_expr(
            code,
            local_dict=local,
            global_dict=dict(_PARSER_GLOBALS),
            transformations=_TRANSFORMATIONS,
        )
    except (SyntaxError, TypeError, NameError, ValueError) as exc:
        raise ValueError(
            f"cannot read {text.strip()!r} in formula {formula!r} as an expression: {exc}. "
            "Use Python syntax: '*' for products, '**' for powers."
        ) from exc


def parse_formula(expr: str | sympy.Eq) -> sympy.Eq:
    """Read a ground-truth formula as a SymPy equation ``target = expression``.

    Parameters
    ----------
    expr : str or sympy.Eq
        ``"V = I*R"``-style text, or an ``Eq`` whose left-hand side is a single symbol.
        In text every name becomes a real symbol (``E``, ``I``, ``S``, ``N``, ``pi``,
        ``lambda`` included) unless it is one of :data:`FUNCTIONS` followed by ``(``.

    Returns
    -------
    sympy.Eq
        The equation; ``lhs`` is the target symbol, ``rhs`` the expression.

    Raises
    ------
    ValueError
        If the text is not ``target = expression``, the target is not a single name, or the
        target appears in its own expression.

    Examples
    --------
    >>> from nalu_sr.datasets.formulas import parse_formula
    >>> eq = parse_formula("E = m*v**2/2")
    >>> eq.lhs, eq.rhs
    (E, m*v**2/2)
    """
    if isinstance(expr, str):
        sides = expr.split("=")
        if len(sides) != 2 or any(op in expr for op in ("==", "<=", ">=", "!=")):
            raise ValueError(
                f"formula {expr!r} must contain exactly one '=' with the target on its left, "
                "e.g. 'V = I*R'."
            )
        symbols: dict[str, sympy.Symbol] = {}
        lhs = _parse_side(sides[0], symbols, expr)
        rhs = _parse_side(sides[1], symbols, expr)
        equation = sympy.Eq(lhs, rhs, evaluate=False)
    elif isinstance(expr, sympy.Equality):
        equation = expr
    else:
        raise TypeError(
            f"formula must be a string such as 'V = I*R' or a sympy.Eq, got {type(expr).__name__}."
        )
    if not isinstance(equation.lhs, sympy.Symbol):
        raise ValueError(
            f"the left-hand side of formula {expr!r} must be a single target name, "
            f"got {equation.lhs}."
        )
    if equation.lhs in equation.rhs.free_symbols:
        raise ValueError(
            f"target {equation.lhs} appears on the right-hand side of formula {expr!r}; "
            "give the target its own name."
        )
    return equation


def _check_interval(name: str, interval: np.ndarray) -> Interval:
    low, high = (float(v) for v in interval)
    if not (np.isfinite(low) and np.isfinite(high)):
        raise ValueError(f"range of {name!r} must have finite bounds, got ({low}, {high}).")
    if not low < high:
        raise ValueError(
            f"range of {name!r} must have low < high, got ({low}, {high}); "
            "swap the bounds or widen the interval."
        )
    return low, high


def check_ranges(ranges: Mapping[str, object]) -> dict[str, list[Interval]]:
    """Validate sampling ranges and return each as a sorted list of disjoint intervals.

    Parameters
    ----------
    ranges : mapping
        Input name -> ``(low, high)``, or a sequence of such intervals meaning their union.
        Overlapping or touching intervals are merged.

    Returns
    -------
    dict of str to list of (float, float)
        Same keys and order as ``ranges``.

    Raises
    ------
    ValueError
        On an empty mapping, a non-string name, a value that is not an interval or a list of
        intervals, a non-finite bound, or ``low >= high``.
    """
    if not isinstance(ranges, Mapping) or not ranges:
        raise ValueError(
            "ranges must be a non-empty mapping such as {'x0': (0, 1), 'x1': [(-6, -2), (2, 6)]}."
        )
    checked: dict[str, list[Interval]] = {}
    for key, value in ranges.items():
        name = key.name if isinstance(key, sympy.Symbol) else key
        if not isinstance(name, str) or not name:
            raise ValueError(f"range names must be non-empty strings, got {key!r}.")
        try:
            array = np.asarray(value, dtype=float)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"range of {name!r} must be (low, high) or a list of (low, high), got {value!r}."
            ) from exc
        if array.shape == (2,):
            array = array[None, :]
        if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] != 2:
            raise ValueError(
                f"range of {name!r} must be (low, high) or a list of (low, high), got {value!r}."
            )
        intervals = sorted(_check_interval(name, row) for row in array)
        merged = [intervals[0]]
        for low, high in intervals[1:]:
            if low <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], high))
            else:
                merged.append((low, high))
        checked[name] = merged
    return checked


def _sample_union(intervals: list[Interval], n_samples: int, rng: np.random.Generator):
    """Uniform samples on a union of disjoint intervals, one uniform draw per sample."""
    lows = np.array([low for low, _ in intervals])
    highs = np.array([high for _, high in intervals])
    lengths = highs - lows
    starts = np.concatenate(([0.0], np.cumsum(lengths)[:-1]))
    position = rng.uniform(0.0, lengths.sum(), n_samples)
    which = np.searchsorted(starts, position, side="right") - 1
    values = lows[which] + (position - starts[which])
    # Rounding may push a value a hair past its interval's upper end.
    return np.minimum(values, highs[which])


def _check_random_state(random_state) -> np.random.Generator:
    if random_state is None or isinstance(random_state, (numbers.Integral, np.random.Generator)):
        return np.random.default_rng(random_state)
    raise ValueError(
        f"random_state must be None, an int or a numpy.random.Generator, got {random_state!r}."
    )


def evaluate_formula(expr: str | sympy.Eq, data: Mapping[str, object]) -> np.ndarray:
    """Evaluate the right-hand side of a formula on columns of data, with NumPy.

    Parameters
    ----------
    expr : str or sympy.Eq
        The formula, as accepted by :func:`parse_formula`.
    data : mapping or pandas.DataFrame
        Input name -> 1-d array; must hold every name the expression uses. Other columns
        (the target, irrelevant inputs) are ignored.

    Returns
    -------
    numpy.ndarray of shape (n_samples,)
        The expression's values, as float64.

    Raises
    ------
    ValueError
        If ``data`` lacks a variable of the expression, or the values are complex.
    """
    equation = parse_formula(expr)
    variables = sorted(equation.rhs.free_symbols, key=lambda s: s.name)
    missing = [s.name for s in variables if s.name not in data]
    if missing:
        raise ValueError(
            f"no values for {missing} of formula {equation.lhs} = {equation.rhs}; "
            "add them to the data."
        )
    columns = [np.asarray(data[s.name], dtype=float) for s in variables]
    first = next(iter(data), None)
    n_rows = len(data[first]) if first is not None else 1
    function = sympy.lambdify(variables, equation.rhs, modules="numpy")
    with np.errstate(all="ignore"):
        values = np.asarray(function(*columns))
    if np.iscomplexobj(values):
        raise ValueError(
            f"formula {equation.lhs} = {equation.rhs} gives complex values on these inputs; "
            "restrict the ranges to where it is real."
        )
    return np.broadcast_to(values.astype(float), (n_rows,)).copy()


def make_formula_dataset(
    expr: str | sympy.Eq,
    ranges: Mapping[str, object],
    n_samples: int = 500,
    noise: float = 0.0,
    random_state: int | np.random.Generator | None = None,
) -> pd.DataFrame:
    """Generate a regression table from a known formula.

    Each input is drawn independently and uniformly from its range (or from the union of its
    intervals), and the target is the formula evaluated on the drawn inputs, plus optional
    Gaussian noise.

    Parameters
    ----------
    expr : str or sympy.Eq
        The ground truth, ``"target = expression"`` such as ``"V = I*R"``, or a SymPy ``Eq``
        whose left-hand side is a symbol. In text, every name other than a function call from
        :data:`FUNCTIONS` is a real symbol (``E``, ``I``, ``S``, ``N``, ``pi``, ``lambda``
        included).
    ranges : mapping
        Input name -> ``(low, high)`` for a uniform draw, or a list of ``(low, high)`` to draw
        uniformly from their union (e.g. ``[(-6, -2), (2, 6)]``). Must cover every variable of
        the expression; names the expression does not use become irrelevant columns.
    n_samples : int, default=500
        Number of rows.
    noise : float, default=0.0
        Standard deviation of the Gaussian noise added to the target, as a fraction of the
        root mean square of the noise-free target (the SRBench convention): ``noise=0.1`` adds
        ``N(0, (0.1 * sqrt(mean(y**2)))**2)``. Inputs are never noisy.
    random_state : int, numpy.random.Generator or None, default=None
        Seed or generator for the draws. An int gives the same table on every call; a
        generator is advanced.

    Returns
    -------
    pandas.DataFrame of shape (n_samples, len(ranges) + 1)
        The inputs, in the order of ``ranges``, then the target column, all float64.

    Raises
    ------
    ValueError
        If the formula cannot be read, a variable has no range, a range is not a valid
        interval, ``n_samples < 1``, ``noise`` is negative, or the formula is not finite on the
        drawn inputs (e.g. a division by an input whose range contains zero).

    Examples
    --------
    >>> from nalu_sr.datasets import make_formula_dataset
    >>> df = make_formula_dataset("V = I*R", {"I": (0.1, 2), "R": (1, 100)},
    ...                           n_samples=3, random_state=0)
    >>> list(df.columns)
    ['I', 'R', 'V']
    >>> bool((df["V"] == df["I"] * df["R"]).all())
    True
    """
    equation = parse_formula(expr)
    checked = check_ranges(ranges)
    target = equation.lhs.name
    if target in checked:
        raise ValueError(
            f"target {target!r} is also given a range; rename the target or drop its range."
        )
    missing = sorted(s.name for s in equation.rhs.free_symbols if s.name not in checked)
    if missing:
        raise ValueError(
            f"variables {missing} of formula {target} = {equation.rhs} have no range; "
            "add them to ranges, e.g. {" + f"{missing[0]!r}: (0, 1)" + "}."
        )
    if isinstance(n_samples, bool) or not isinstance(n_samples, numbers.Integral):
        raise ValueError(f"n_samples must be a positive int, got {n_samples!r}.")
    if n_samples < 1:
        raise ValueError(f"n_samples must be at least 1, got {n_samples}.")
    if not (np.isfinite(noise) and noise >= 0):
        raise ValueError(f"noise must be a finite fraction >= 0 (e.g. 0.01), got {noise!r}.")
    rng = _check_random_state(random_state)

    data = {
        name: _sample_union(intervals, int(n_samples), rng) for name, intervals in checked.items()
    }
    values = evaluate_formula(equation, data)
    bad = ~np.isfinite(values)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        example = {name: float(column[row]) for name, column in data.items()}
        raise ValueError(
            f"formula {target} = {equation.rhs} is not finite at {int(bad.sum())} of "
            f"{n_samples} rows (e.g. {example}); keep divisors and logarithm arguments "
            "away from zero in ranges."
        )
    if noise > 0:
        scale = noise * float(np.sqrt(np.mean(values**2)))
        values = values + rng.normal(0.0, scale, values.shape)
    data[target] = values
    return pd.DataFrame(data, columns=[*checked, target])
