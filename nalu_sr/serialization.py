"""A safe, readable file format for formulas: JSON trees rebuilt with SymPy constructors only.

Pickle and ``sympify`` run code found in the file; this format cannot. A formula becomes a tree
of plain JSON values:

- ``{"symbol": "mass (kg)"}``: a symbol, real like those of
  :func:`~nalu_sr.symbolic.feature_symbols`; other assumptions are listed under
  ``"assumptions"``;
- ``{"integer": 3}``, ``{"rational": [1, 3]}``: exact numbers;
- ``{"float": "6.674e-11"}``: a double, written with ``repr`` so it reads back bit for bit
  (Floats of higher precision add ``"precision"``, in bits);
- ``{"constant": "pi"}`` or ``{"constant": "E"}``;
- ``{"op": "Add" | "Mul" | "Pow" | "sin" | ..., "args": [...]}``: an operation from a fixed list.

Loading checks every node against that grammar, the nesting depth, the node count and the size
of numbers (so a small file cannot make SymPy build a gigantic integer), and raises
:class:`ModelFileError` naming the offending node.
"""

from __future__ import annotations

import json
import re
from typing import Any

import sympy
from mpmath.libmp import repr_dps, to_str
from sympy.core.assumptions import _assume_defined

MAX_DEPTH = 64
MAX_NODES = 100_000
MAX_INTEGER_BITS = 4096
MAX_FLOAT_PRECISION = 1024
MAX_NAME_LENGTH = 1000

_OPERATORS: dict[str, tuple[type, int | None]] = {
    "Add": (sympy.Add, None),
    "Mul": (sympy.Mul, None),
    "Pow": (sympy.Pow, 2),
    "sin": (sympy.sin, 1),
    "cos": (sympy.cos, 1),
    "tan": (sympy.tan, 1),
    "tanh": (sympy.tanh, 1),
    "atan": (sympy.atan, 1),
    "asin": (sympy.asin, 1),
    "exp": (sympy.exp, 1),
    "log": (sympy.log, 1),
    "Abs": (sympy.Abs, 1),
    "sign": (sympy.sign, 1),
}
_CONSTANTS = {"pi": sympy.pi, "E": sympy.E}
_ASSUMPTION_NAMES = frozenset(_assume_defined)
# At most 5 exponent digits: reading "1e<300 digits>" would build a gigantic power of ten.
_DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d{1,5})?")


class ModelFileError(ValueError):
    """A stored formula that does not follow the format; the message names the bad node."""


def expr_to_tree(expr: sympy.Basic) -> dict[str, Any]:
    """A JSON-ready tree of ``expr`` (dicts, lists, str, int) that loads back exactly.

    Parameters
    ----------
    expr : sympy.Basic
        Formula built from symbols, integers, rationals, floats, pi, E, ``+``, ``*``, ``**``
        and the functions sin, cos, tan, exp, log, Abs, sign.

    Returns
    -------
    dict
        The tree; ``json.dumps`` accepts it and :func:`tree_to_expr` rebuilds ``expr``.

    Raises
    ------
    ModelFileError
        If ``expr`` holds anything else (``nan``, ``zoo``, ``I``, an undefined function, ...),
        or exceeds the limits :func:`tree_to_expr` enforces (so every saved tree loads).

    Examples
    --------
    >>> x = sympy.Symbol("x", real=True)
    >>> expr_to_tree(x / 3)
    {'op': 'Mul', 'args': [{'rational': [1, 3]}, {'symbol': 'x'}]}
    """
    tree = _to_tree(expr)
    try:
        tree_to_expr(tree)
    except ModelFileError as error:
        raise ModelFileError(
            f"cannot store {expr!s}: it could not be loaded back ({error})"
        ) from None
    return tree


def _to_tree(expr: sympy.Basic, depth: int = 0) -> dict[str, Any]:
    if depth > MAX_DEPTH:
        raise ModelFileError(f"cannot store a formula nested deeper than {MAX_DEPTH} levels.")
    if type(expr) is sympy.Symbol:
        node: dict[str, Any] = {"symbol": expr.name}
        assumptions = dict(expr._assumptions_orig)
        if assumptions != {"real": True}:
            node["assumptions"] = assumptions
        return node
    if isinstance(expr, sympy.Integer):
        return {"integer": int(expr)}
    if isinstance(expr, sympy.Rational):
        return {"rational": [int(expr.p), int(expr.q)]}
    if isinstance(expr, sympy.Float):
        return _float_to_node(expr)
    for name, constant in _CONSTANTS.items():
        if expr is constant:
            return {"constant": name}
    for name, (constructor, _) in _OPERATORS.items():
        if expr.func is constructor:
            return {"op": name, "args": [_to_tree(arg, depth + 1) for arg in expr.args]}
    raise ModelFileError(
        f"cannot store {expr!r} (of type {type(expr).__name__}): model files hold symbols, "
        f"exact and float numbers, pi, E and the operations {sorted(_OPERATORS)} only."
    )


def _float_to_node(value: sympy.Float) -> dict[str, Any]:
    if not value.is_finite:
        raise ModelFileError(f"cannot store the non-finite number {value!s}.")
    precision = int(value._prec)
    if precision == 53 and sympy.Float(float(value)) == value:
        return {"float": repr(float(value))}
    return {"float": to_str(value._mpf_, repr_dps(precision)), "precision": precision}


def tree_to_expr(tree: Any) -> sympy.Expr:
    """Rebuild a formula from :func:`expr_to_tree` output, without evaluating any text.

    Only SymPy constructors run (``Symbol``, ``Integer``, ``Rational``, ``Float``, ``Add``,
    ``Mul``, ``Pow`` and the listed functions), with ``evaluate=False`` so that the stored form
    comes back exactly. Strings are only ever used as symbol names, decimal numbers or keys of
    the fixed tables above.

    Parameters
    ----------
    tree : dict
        A tree as produced by :func:`expr_to_tree` (for example after ``json.loads``).

    Returns
    -------
    sympy.Expr
        The formula; ``tree_to_expr(expr_to_tree(e)) == e``.

    Raises
    ------
    ModelFileError
        If a node is malformed or unknown, the tree is deeper than ``MAX_DEPTH`` or larger than
        ``MAX_NODES`` nodes, or a number is too large.
    """
    return _TreeReader().read(tree, path="$", depth=0)


class _TreeReader:
    """Walks a tree once, checking each node before anything is built from it.

    Besides the expression, each step returns a bound on the bits of its exact value when it is
    built from exact numbers only (``None`` otherwise): an unevaluated ``2**(2**4096)`` is small
    in the file but would exhaust memory the first time SymPy evaluates it.
    """

    def __init__(self) -> None:
        self.nodes = 0

    def read(self, node: Any, path: str, depth: int) -> sympy.Expr:
        return self._read(node, path, depth)[0]

    def _read(self, node: Any, path: str, depth: int) -> tuple[sympy.Expr, int | None]:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise ModelFileError(
                f"the formula has more than {MAX_NODES} nodes (at {_where(path)})."
            )
        if depth > MAX_DEPTH:
            raise ModelFileError(
                f"the formula is nested deeper than {MAX_DEPTH} (at {_where(path)})."
            )
        if not isinstance(node, dict):
            raise ModelFileError(
                f"node {_where(path)} is a {type(node).__name__}; expected an object."
            )
        kind = _single_kind(node, path)
        if kind == "op":
            return self._operation(node, path, depth)
        if kind == "symbol":
            return _symbol(node, path), None
        _expect_keys(node, {kind, "precision"} if kind == "float" else {kind}, path)
        leaf = _LEAF_READERS[kind](node, path)
        if leaf.is_Rational:
            return leaf, max(int(leaf.p).bit_length(), int(leaf.q).bit_length())
        return leaf, None

    def _operation(self, node: dict, path: str, depth: int) -> tuple[sympy.Expr, int | None]:
        _expect_keys(node, {"op", "args"}, path)
        name, args = node["op"], node["args"]
        if not isinstance(name, str) or name not in _OPERATORS:
            raise ModelFileError(
                f"node {_where(path)} has unknown operation {shorten(name)}; "
                f"allowed: {sorted(_OPERATORS)}."
            )
        constructor, arity = _OPERATORS[name]
        if not isinstance(args, list):
            raise ModelFileError(f"node {_where(path)} ({name}): 'args' must be a list.")
        if (arity is None and len(args) < 2) or (arity is not None and len(args) != arity):
            expected = "at least 2" if arity is None else str(arity)
            raise ModelFileError(
                f"node {_where(path)} ({name}) has {len(args)} arguments; expected {expected}."
            )
        children = [self._read(arg, f"{path}.args[{i}]", depth + 1) for i, arg in enumerate(args)]
        exprs, bits = zip(*children)
        exact_bits = _exact_bits(name, exprs, bits)
        if exact_bits is not None and exact_bits > MAX_INTEGER_BITS:
            raise ModelFileError(
                f"node {_where(path)} ({name}): its exact value would need more than "
                f"{MAX_INTEGER_BITS} bits."
            )
        return constructor(*exprs, evaluate=False), exact_bits


def _exact_bits(
    name: str, exprs: tuple[sympy.Expr, ...], bits: tuple[int | None, ...]
) -> int | None:
    """Upper bound on the bits of numerator and denominator of an exact numeric node."""
    if name not in ("Add", "Mul", "Pow") or any(b is None for b in bits):
        return None
    if name == "Add":
        return sum(bits) + len(bits).bit_length()
    if name == "Mul":
        return sum(bits)
    base_bits, exponent_bits = bits
    exponent = exprs[1]
    if exponent.is_Rational:
        return base_bits * max(1, -(-abs(int(exponent.p)) // int(exponent.q)))
    return base_bits << min(exponent_bits, MAX_INTEGER_BITS)


def _single_kind(node: dict, path: str) -> str:
    kinds = [
        key for key in ("op", "symbol", "integer", "rational", "float", "constant") if key in node
    ]
    if len(kinds) != 1:
        raise ModelFileError(
            f"node {_where(path)} has keys {sorted(map(str, node))}; expected exactly one of "
            "'op', 'symbol', 'integer', 'rational', 'float', 'constant'."
        )
    return kinds[0]


def _expect_keys(node: dict, allowed: set[str], path: str) -> None:
    extra = set(node) - allowed
    if extra:
        raise ModelFileError(f"node {_where(path)} has unexpected keys {sorted(map(str, extra))}.")


def _symbol(node: dict, path: str) -> sympy.Symbol:
    _expect_keys(node, {"symbol", "assumptions"}, path)
    name = node["symbol"]
    if not isinstance(name, str) or not name or len(name) > MAX_NAME_LENGTH:
        raise ModelFileError(
            f"node {_where(path)}: a symbol name must be a non-empty string of at most "
            f"{MAX_NAME_LENGTH} characters."
        )
    assumptions = node.get("assumptions", {"real": True})
    if not isinstance(assumptions, dict) or not all(
        key in _ASSUMPTION_NAMES and isinstance(value, bool) for key, value in assumptions.items()
    ):
        raise ModelFileError(
            f"node {_where(path)}: 'assumptions' must map SymPy assumption names to true or false."
        )
    try:
        return sympy.Symbol(name, **assumptions)
    except ValueError as error:
        raise ModelFileError(
            f"node {_where(path)}: inconsistent assumptions {assumptions}."
        ) from error


def _integer(node: dict, path: str) -> sympy.Integer:
    return sympy.Integer(_checked_int(node["integer"], path))


def _rational(node: dict, path: str) -> sympy.Rational:
    pair = node["rational"]
    if not isinstance(pair, list) or len(pair) != 2:
        raise ModelFileError(
            f"node {_where(path)}: 'rational' must be a list [numerator, denominator]."
        )
    p, q = (_checked_int(value, path) for value in pair)
    if q <= 0:
        raise ModelFileError(
            f"node {_where(path)}: the denominator of a rational must be positive."
        )
    return sympy.Rational(p, q)


def _float(node: dict, path: str) -> sympy.Float:
    text = node["float"]
    precision = node.get("precision", 53)
    if not isinstance(text, str) or len(text) > 400 or not _DECIMAL.fullmatch(text):
        raise ModelFileError(
            f"node {_where(path)}: 'float' must be a decimal number written as a string, "
            f"got {shorten(text)}."
        )
    if not _is_int(precision) or not 1 <= precision <= MAX_FLOAT_PRECISION:
        raise ModelFileError(
            f"node {_where(path)}: 'precision' must be an integer number of bits in "
            f"[1, {MAX_FLOAT_PRECISION}]."
        )
    if "precision" in node:
        value = sympy.Float(text, precision=precision)
    else:
        # Python's float() reads a repr back bit for bit, subnormal doubles included; a 53-bit
        # SymPy Float parsed from the same text would round a subnormal differently.
        value = sympy.Float(float(text))
    if not value.is_finite:
        raise ModelFileError(f"node {_where(path)}: the float {shorten(text)} is not finite.")
    return value


def _constant(node: dict, path: str) -> sympy.Expr:
    name = node["constant"]
    if not isinstance(name, str) or name not in _CONSTANTS:
        raise ModelFileError(
            f"node {_where(path)} has unknown constant {shorten(name)}; "
            f"allowed: {sorted(_CONSTANTS)}."
        )
    return _CONSTANTS[name]


_LEAF_READERS = {"integer": _integer, "rational": _rational, "float": _float, "constant": _constant}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _checked_int(value: Any, path: str) -> int:
    if not _is_int(value):
        raise ModelFileError(f"node {_where(path)}: expected an integer, got {shorten(value)}.")
    if value.bit_length() > MAX_INTEGER_BITS:
        raise ModelFileError(f"node {_where(path)}: integer larger than {MAX_INTEGER_BITS} bits.")
    return value


def _where(path: str, limit: int = 60) -> str:
    return path if len(path) <= limit else "..." + path[-limit:]


def shorten(value: Any, limit: int = 40) -> str:
    """``repr(value)`` (an exception's own text) cut to ``limit`` characters, for messages
    that quote what a file held."""
    text = str(value) if isinstance(value, BaseException) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def dumps(expr: sympy.Basic, **json_options: Any) -> str:
    """JSON text of ``expr``; ``json_options`` go to :func:`json.dumps` (e.g. ``indent=2``)."""
    return json.dumps(expr_to_tree(expr), ensure_ascii=False, **json_options)


def loads(text: str) -> sympy.Expr:
    """The formula stored in JSON ``text``; any problem raises :class:`ModelFileError`."""
    try:
        tree = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise ModelFileError(
            f"the formula is not valid JSON: {shorten(str(error), 120)}"
        ) from error
    return tree_to_expr(tree)


__all__ = [
    "MAX_DEPTH",
    "MAX_FLOAT_PRECISION",
    "MAX_INTEGER_BITS",
    "MAX_NAME_LENGTH",
    "MAX_NODES",
    "ModelFileError",
    "dumps",
    "expr_to_tree",
    "loads",
    "tree_to_expr",
]
