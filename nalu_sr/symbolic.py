"""From a snapped structure and fitted numbers to a small, exact SymPy formula.

Four jobs, in the order the pipeline needs them:

- :func:`feature_symbols` and :func:`python_identifiers` name the user's columns, once for SymPy
  (any string is a valid symbol name, so nothing is ever parsed) and once for generated code;
- :func:`rationalize` and :func:`rationalize_candidates` replace fitted floats by exact numbers
  (integers, small fractions, fractions times a power of pi) when the data allow it;
- :func:`complexity` and :func:`simplify_formula` measure a formula and pick its shortest form;
- :func:`structure_to_expr` writes a :mod:`nalu_sr.structure` structure as an expression.
"""

from __future__ import annotations

import builtins
import functools
import itertools
import keyword
import math
import numbers
import random
import re
import unicodedata
from collections.abc import Sequence
from typing import NamedTuple

import sympy
from sympy.polys.polyerrors import BasePolynomialError

from .structure import Structure

# Names the exported code itself uses; a parameter with one of these names would shadow it.
_RESERVED_IDENTIFIERS = frozenset(dir(builtins)) | {"math", "np", "numpy", "torch", "self"}

# Above 2**53 consecutive doubles are more than 1 apart: "the nearest integer" stops meaning much.
_LARGEST_EXACT_INTEGER = 2**53

#: Powers of pi an exact constant may carry besides 1: ``pi/2``, ``1/(4*pi)``, ``pi**2/6``,
#: ``1/(16*pi**2)``.
PI_POWERS = (1, -1, 2, -2)

#: Largest denominator of a fraction times a power of pi: 16, so that ``1/(4*pi)**2`` is one.
PI_DENOMINATOR = 16

#: Largest numerator and denominator next to a root or ``e`` (``3*sqrt(2)/2``,
#: ``sqrt(pi)/4``): wider ranges would crowd the number line with forms no formula uses
#: (``5*sqrt(2)/(4*sqrt(pi))`` lies within 0.3% of 1).
ROOT_DENOMINATOR = 4

#: Irrational constants besides the powers of pi, each with what writing it adds to a
#: constant's description length: ``sqrt(2)`` (and ``sqrt(2)/2``), ``sqrt(3)`` (an rms speed's
#: ``sqrt(3*k*T/m)``, three-phase power, hexagons), the normal density's
#: ``1/sqrt(2*pi)`` and the error function's ``2/sqrt(pi)``, and ``e``. A rational multiple
#: of each is proposed like a fraction times pi, with small numerators and denominators.
#: ``log(2)`` is a half-life's (``N0*exp(-log(2)*t/T)``), ``1/log(2)`` and ``1/log(10)`` turn
#: natural logarithms into bits and decades (``B*log(1 + S/N)/log(2)``, a pH). ``e``
#: costs two digits, not one: multiples such as ``6*e`` are rare in formulas, and at one digit
#: they would crowd the integers and fractions the coincidence bound counts.
ROOT_CONSTANTS: tuple[tuple[sympy.Expr, int], ...] = (
    (sympy.sqrt(2), 2),
    (sympy.sqrt(3), 2),
    (sympy.sqrt(sympy.pi), 2),
    (1 / sympy.sqrt(sympy.pi), 2),
    (sympy.sqrt(2) * sympy.sqrt(sympy.pi), 3),
    (sympy.sqrt(2) / sympy.sqrt(sympy.pi), 3),
    (sympy.E, 2),
    (1 / sympy.E, 2),
    (sympy.log(2), 2),
    (1 / sympy.log(2), 2),
    (1 / sympy.log(10), 2),
)

# Work bounds for simplify_formula: expand only when it gives at most this many terms, and
# factor / cancel (whose cost grows fast with common denominators) only on small formulas.
_MAX_EXPANDED_TERMS = 256
_MAX_FACTOR_TERMS = 64
_MAX_FACTOR_NODES = 80
_MAX_FACTOR_SYMBOLS = 12
# Arguments at which sin**2 + cos**2 = 1 is tried (each triples the forms simplified).
_MAX_TRIG_ARGUMENTS = 2


def feature_symbols(names: Sequence[str]) -> list[sympy.Symbol]:
    """One real SymPy symbol per column, named exactly as the column.

    SymPy accepts any string as a symbol name and the symbols are built directly (never parsed
    from text), so names such as ``lambda``, ``E``, ``I``, ``pi``, ``mass (kg)`` or ``α`` give
    plain symbols that neither clash with SymPy's constants nor with each other.

    Parameters
    ----------
    names : sequence of str
        Column names, in column order.

    Returns
    -------
    list of sympy.Symbol
        ``sympy.Symbol(name, real=True)`` for each name, in the same order.

    Raises
    ------
    ValueError
        If a name is not a string, is empty, or appears twice.

    Examples
    --------
    >>> feature_symbols(["mass (kg)", "pi"])
    [mass (kg), pi]
    """
    names = list(names)
    seen: set[str] = set()
    for position, name in enumerate(names):
        if not isinstance(name, str) or not name.strip():
            raise ValueError(
                f"feature name at position {position} is {name!r}; every column needs a "
                "non-empty string name. Rename the column or pass feature_names explicitly."
            )
        if name in seen:
            raise ValueError(
                f"feature name {name!r} appears more than once; column names must be unique. "
                "Rename one of the columns."
            )
        seen.add(name)
    return [sympy.Symbol(name, real=True) for name in names]


def python_identifiers(names: Sequence[str]) -> dict[str, str]:
    """Map column names to distinct Python identifiers usable as function parameters.

    Names that already are valid, non-reserved identifiers are kept unchanged. Others are
    normalised (NFKC, as Python does for identifiers), every run of characters not allowed in
    an identifier becomes ``_``, a leading digit gets an ``x_`` prefix, and keywords, builtins
    and the names exported code uses (``math``, ``np``, ``numpy``, ``torch``, ``self``) get a
    ``_`` suffix. Remaining clashes are numbered ``_2``, ``_3``, ... in column order, so the
    mapping is deterministic.

    Parameters
    ----------
    names : sequence of str
        Column names, unique.

    Returns
    -------
    dict of str to str
        Column name to identifier, in column order.

    Examples
    --------
    >>> python_identifiers(["lambda", "mass (kg)", "2x"])
    {'lambda': 'lambda_', 'mass (kg)': 'mass_kg', '2x': 'x_2x'}
    """
    names = [symbol.name for symbol in feature_symbols(names)]
    taken = {name for name in names if _is_free_identifier(name)}
    mapping: dict[str, str] = {}
    for name in names:
        if _is_free_identifier(name):
            mapping[name] = name
            continue
        base = _sanitize_identifier(name)
        candidate, counter = base, 2
        while candidate in taken:
            candidate, counter = f"{base}_{counter}", counter + 1
        taken.add(candidate)
        mapping[name] = candidate
    return mapping


def _is_free_identifier(name: str) -> bool:
    return (
        name.isidentifier()
        and unicodedata.normalize("NFKC", name) == name
        and not keyword.iskeyword(name)
        and name not in _RESERVED_IDENTIFIERS
    )


def _sanitize_identifier(name: str) -> str:
    text = unicodedata.normalize("NFKC", name)
    text = "".join(c if ("a" + c).isidentifier() else " " for c in text)
    text = re.sub(r"\s+", "_", text.strip())
    text = text.strip("_") or "x"
    if not text.isidentifier():
        text = unicodedata.normalize("NFKC", "x_" + text)
    if not text.isidentifier():
        text = "x"
    if keyword.iskeyword(text) or text in _RESERVED_IDENTIFIERS:
        text += "_"
    return text


def rationalize(
    value: float,
    rtol: float = 1e-9,
    max_denominator: int = 12,
    allow_pi: bool = True,
    scale: float | None = None,
) -> sympy.Expr:
    """The simplest exact number within ``rtol`` (relative) of ``value``.

    Tried in order: 0 (when ``|value| <= rtol * scale``), an integer, ``p/q`` with
    ``q <= max_denominator``, ``p/q * pi**k`` with ``k`` in :data:`PI_POWERS`,
    ``|p| <= max_denominator`` and ``q <= PI_DENOMINATOR``. When none is close enough the
    value is returned as a :class:`sympy.Float` built from the double itself: such a Float
    holds the exact 53-bit binary value, so ``float(result) == value`` and no digits are lost,
    while a Rational of that binary value (``p / 2**k``) would be both exact and misleading.
    The printers in :mod:`nalu_sr.export` and :mod:`nalu_sr.serialization` write such Floats
    at full (round-trip) precision.

    Parameters
    ----------
    value : float
        The fitted number. Must be finite.
    rtol : float, default=1e-9
        Largest accepted relative difference between ``value`` and the exact form.
    max_denominator : int, default=12
        Largest denominator ``q`` of a plain fraction (and largest numerator next to pi).
    allow_pi : bool, default=True
        Whether fractions times a power of pi are tried.
    scale : float, optional
        Typical size of the quantity ``value`` multiplies; when given, values with
        ``|value| <= rtol * scale`` become exactly 0.

    Returns
    -------
    sympy.Expr
        An Integer, a Rational, a rational multiple of a power of pi, or a Float.

    Examples
    --------
    >>> rationalize(1.8), rationalize(2 * math.pi), rationalize(6.674e-11)
    (9/5, 2*pi, 6.67400000000000e-11)
    >>> rationalize(1 / (4 * math.pi)), rationalize(1 / (4 * math.pi) ** 2)
    (1/(4*pi), 1/(16*pi**2))
    """
    return rationalize_candidates(
        value,
        rtol=rtol,
        max_denominator=max_denominator,
        allow_pi=allow_pi,
        scale=scale,
        max_candidates=1,
    )[0]


def rationalize_candidates(
    value: float,
    rtol: float = 1e-3,
    max_denominator: int = 12,
    allow_pi: bool = True,
    scale: float | None = None,
    max_candidates: int = 4,
) -> list[sympy.Expr]:
    """Plausible exact forms of ``value``, simplest first, with the plain Float last.

    A looser tolerance than :func:`rationalize` proposes forms such as ``9/5`` for
    ``1.8000012``; the caller refits or re-scores each candidate and keeps the simplest that
    still fits the data. Candidates are ordered by how many digits they take to write
    (numerator, denominator, one more for pi, two for its square), then by distance to
    ``value``, so ``2*pi`` comes before ``44/7``.

    Parameters
    ----------
    value : float
        The fitted number. Must be finite.
    rtol : float, default=1e-3
        Largest relative difference for a candidate to be proposed.
    max_denominator : int, default=12
        Largest denominator ``q`` of a plain fraction (and largest numerator next to pi;
        denominators there go up to :data:`PI_DENOMINATOR`).
    allow_pi : bool, default=True
        Whether fractions times a power of pi (:data:`PI_POWERS`) are proposed.
    scale : float, optional
        When given and ``|value| <= rtol * scale``, 0 is proposed first.
    max_candidates : int, default=4
        Most exact forms returned (the Float is added after them).

    Returns
    -------
    list of sympy.Expr
        Exact candidates, then ``sympy.Float(value)``. When ``max_candidates`` is 1 this is a
        one-element list holding the best exact form, or the Float when there is none.
    """
    value = _as_finite_float(value)
    if rtol < 0 or max_denominator < 1 or max_candidates < 1:
        raise ValueError(
            f"rtol={rtol}, max_denominator={max_denominator}, max_candidates={max_candidates}: "
            "rtol must be >= 0 and the other two >= 1."
        )
    if value == 0.0 or (scale is not None and abs(value) <= rtol * abs(scale)):
        return [sympy.S.Zero] if max_candidates == 1 else [sympy.S.Zero, sympy.Float(value)]

    found: dict[sympy.Expr, tuple] = {}
    for unit in _units(allow_pi, max_denominator):
        target = value / unit.value
        for q in range(1, unit.max_denominator + 1):
            p = round(target * q)
            if p == 0 or abs(p) >= _LARGEST_EXACT_INTEGER or abs(p) > unit.max_numerator:
                continue
            exact = sympy.Rational(p, q) * unit.expr
            error = abs(p / q * unit.value - value)
            if error <= rtol * abs(value) and exact not in found:
                found[exact] = (description_length(exact), error)
    exact_forms = sorted(found, key=found.__getitem__)[:max_candidates]
    if max_candidates == 1 and exact_forms:
        return exact_forms
    return [*exact_forms, sympy.Float(value)]


def shortest_decimal(value: float, margin: float) -> float:
    """The number with the fewest significant digits within ``margin`` of ``value``.

    A fitted constant is known only to within its uncertainty; the digits beyond it are
    noise. ``shortest_decimal(6.67413e-11, 2e-14)`` is ``6.674e-11``.

    Examples
    --------
    >>> shortest_decimal(8.31447, 1e-3)
    8.314
    >>> shortest_decimal(0.1 + 0.2, 1e-12)
    0.3
    """
    value = _as_finite_float(value)
    if not margin > 0 or value == 0:
        return value
    for digits in range(1, 18):
        shorter = float(f"{value:.{digits - 1}e}")
        if abs(shorter - value) <= margin:
            return shorter
    return value


#: Most digits of a whole decimal written as an integer (see :func:`decimal_number`).
INTEGER_DIGITS = 6


def decimal_number(decimal: float) -> sympy.Expr:
    """A decimal from :func:`shortest_decimal` as a SymPy number: an integer up to
    :data:`INTEGER_DIGITS` digits (``32``), else a float. ``8.99e9`` has three significant
    digits; written as the integer ``8990000000`` it would be judged as an exact form of ten
    digits, which the data never pin (see :func:`~nalu_sr.search.candidates.is_pinned`).

    Examples
    --------
    >>> decimal_number(32.0), decimal_number(8.314), decimal_number(8.99e9)
    (32, 8.31400000000000, 8990000000.00000)
    """
    if decimal.is_integer() and abs(decimal) < 10**INTEGER_DIGITS:
        return sympy.Integer(int(decimal))
    return sympy.Float(decimal)


@functools.lru_cache(maxsize=4096)
def is_exact_form(expr: sympy.Expr) -> bool:
    """Whether ``expr`` is one of the exact forms :func:`rationalize_candidates` proposes: a
    rational number times one of its constants (a power of pi, a root, ``e``, ``log(2)``).

    Examples
    --------
    >>> is_exact_form(3 * sympy.pi / 4), is_exact_form(1 / sympy.log(10))
    (True, True)
    >>> is_exact_form(sympy.log(2 / sympy.E))
    False
    """
    coefficient, constant = sympy.sympify(expr).as_coeff_Mul()
    return isinstance(coefficient, sympy.Rational) and constant in _UNIT_EXPRESSIONS


def exact_form_density(exact: sympy.Expr, spread: float = 0.5) -> float:
    """How many exact numbers at least as simple as ``exact`` lie in a unit interval near it.

    The numbers counted are those :func:`rationalize_candidates` proposes, over every power
    of pi it tries, that are as simple as ``exact`` or simpler (a denominator no larger, and
    no more digits to write: the order in which they are proposed), within ``spread``
    (relative) of ``exact``; their count over that window's width is the local density. An
    interval of width ``w`` around a fitted value holds one of them by coincidence with
    probability about ``w`` times this.

    Examples
    --------
    >>> round(exact_form_density(sympy.Integer(32)), 2)
    1.16
    >>> round(exact_form_density(sympy.Rational(9, 5)), 1)
    11.7
    >>> round(exact_form_density(1 / (4 * sympy.pi)), 1)
    37.7
    """
    exact = sympy.sympify(exact)
    if not is_exact_form(exact):
        raise ValueError(
            f"{exact} is not a rational number or a rational multiple of pi**k or of a "
            "listed constant."
        )
    length, denominator = description_length(exact), int(exact.as_coeff_Mul()[0].q)
    size = abs(float(exact))
    low, high = size * (1 - spread), size * (1 + spread)
    count = 0
    for unit in _units(True):
        for q in range(1, min(denominator, unit.max_denominator) + 1):
            digits = length - unit.digits - (len(str(q)) if q > 1 else 0)
            if digits < 1:
                continue
            largest = min(10**digits - 1, unit.max_numerator)
            first = max(1, math.ceil(low * q / unit.value))
            last = min(largest, math.floor(high * q / unit.value))
            count += _coprime_count(first, last, q)
    return count / (high - low)


def _coprime_count(first: int, last: int, q: int) -> int:
    """How many integers in ``first..last`` share no factor with ``q`` (fractions p/q in
    lowest terms), by inclusion-exclusion over the prime factors of ``q``."""
    if last < first:
        return 0
    total = 0
    primes = list(sympy.primefactors(q))
    for r in range(len(primes) + 1):
        for chosen in itertools.combinations(primes, r):
            d = math.prod(chosen)
            total += (-1) ** r * (last // d - (first - 1) // d)
    return total


def rival_forms(value: float, margin: float, chosen: sympy.Expr) -> list[sympy.Expr]:
    """Exact forms other than ``chosen`` within ``margin`` of ``value`` that are about as
    plausible: at most one digit longer to write, or a small multiple (numerator and
    denominator up to 4) of pi, a root or ``e``. ``0.3989 +- 0.0014`` holds ``2/5`` and its
    rival ``1/sqrt(2*pi)``; ``0.5 +- 0.0015`` holds ``1/2`` and ``11/(7*pi)``, no rival.

    Examples
    --------
    >>> rival_forms(0.3989, 0.0014, sympy.Rational(2, 5))
    [5/(4*pi), sqrt(2)/(2*sqrt(pi))]
    >>> rival_forms(0.5, 0.0015, sympy.Rational(1, 2))
    []
    """
    if value == 0 or margin <= 0:
        return []
    nearby = rationalize_candidates(value, rtol=margin / abs(value), max_candidates=8)
    longest = description_length(chosen) + 1
    rivals = []
    for form in nearby:
        if isinstance(form, sympy.Float) or form == chosen:
            continue
        coefficient, unit = form.as_coeff_Mul()
        small = unit is not sympy.S.One and max(abs(coefficient.p), coefficient.q) <= 4
        if small or description_length(form) <= longest:
            rivals.append(form)
    return rivals


def description_length(exact: sympy.Expr) -> int:
    """Digits needed to write ``exact`` (numerator, denominator if not 1), plus the power of pi."""
    coefficient, constant = exact.as_coeff_Mul()
    numerator, denominator = coefficient.as_numer_denom()
    length = len(str(abs(numerator)))
    if denominator != 1:
        length += len(str(denominator))
    return length + _unit_digits(constant)


def _unit_digits(unit: sympy.Expr) -> int:
    """What writing ``unit`` adds: nothing for 1, 1 for pi, 2 for its square, and the digits
    :data:`ROOT_CONSTANTS` gives the roots and ``e``."""
    if unit is sympy.S.One:
        return 0
    if unit in _ROOT_DIGITS:
        return _ROOT_DIGITS[unit]
    return abs(int(unit.as_base_exp()[1]))


class _Unit(NamedTuple):
    """What exact constants are made of: ``p/q * expr`` with ``|p| <= max_numerator``;
    ``digits`` is what writing ``expr`` adds to the description length."""

    expr: sympy.Expr
    value: float
    max_denominator: int
    max_numerator: float
    digits: int


_ROOT_DIGITS = dict(ROOT_CONSTANTS)
_UNIT_EXPRESSIONS = frozenset(
    {sympy.S.One, *(sympy.pi**k for k in PI_POWERS), *(expr for expr, _ in ROOT_CONSTANTS)}
)


@functools.lru_cache(maxsize=64)
def _units(allow_pi: bool, max_denominator: int = 12) -> tuple[_Unit, ...]:
    units = [_Unit(sympy.S.One, 1.0, max_denominator, math.inf, 0)]
    if allow_pi:
        units += [
            _Unit(sympy.pi**k, math.pi**k, PI_DENOMINATOR, max_denominator, abs(k))
            for k in PI_POWERS
        ]
        units += [
            _Unit(expr, float(expr), ROOT_DENOMINATOR, ROOT_DENOMINATOR, digits)
            for expr, digits in ROOT_CONSTANTS
        ]
    return tuple(units)


def _as_finite_float(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, sympy.Number)):
        raise TypeError(f"expected a real number, got {value!r} of type {type(value).__name__}.")
    result = float(value)
    if not math.isfinite(result):
        raise ValueError(f"cannot give an exact form to {result}; the fitted value must be finite.")
    return result


def complexity(expr: sympy.Basic) -> int:
    """Number of nodes in the expression tree of ``expr``.

    Every node counts 1: operators (Add, Mul, Pow, functions), symbols and numbers alike, and a
    Rational or Float is a single node. The count follows SymPy's own tree, so ``x - y`` is
    ``Add(x, Mul(-1, y))`` (5 nodes) and ``x / y`` is ``Mul(x, Pow(y, -1))`` (5 nodes).

    Examples
    --------
    >>> w, h, x, y = sympy.symbols("w h x y")
    >>> complexity(x * y), complexity(sympy.factor(2 * w + 2 * h))
    (3, 5)
    """
    return sum(1 for _ in sympy.preorder_traversal(sympy.sympify(expr, strict=True)))


def simplify_formula(expr: sympy.Expr) -> sympy.Expr:
    """The form of ``expr`` with the fewest nodes among a few cheap rewrites.

    Candidates are ``expr`` itself, ``factor``, ``expand``, ``together``, ``cancel`` and
    ``factor_terms``; ties keep the earliest (so an already minimal input comes back
    unchanged). Full :func:`sympy.simplify` is never called: its cost is unbounded on large
    formulas. ``expand`` is skipped when it would give more than a few hundred terms, and
    ``factor`` / ``cancel`` (whose cost explodes with common denominators) run only on formulas
    of at most a few dozen nodes. Results are cached, since a search meets the same formula
    many times. Every rewrite is an algebraic identity; when the formula holds floats, a
    candidate is also checked numerically at a few points, since rewriting floating-point
    coefficients rounds them.

    Parameters
    ----------
    expr : sympy.Expr
        Formula to shorten.

    Returns
    -------
    sympy.Expr
        An equal formula with at most as many nodes as ``expr``, or one more where that
        takes a minus sign away (``V*(1 - exp(-t))`` for ``-V*(-1 + exp(-t))``).
    """
    expr = sympy.sympify(expr, strict=True)
    if not isinstance(expr, sympy.Expr) or expr.is_Atom:
        return expr
    # sin(a)**2 + cos(a)**2 is 1, which the polynomial rewrites cannot see: each square of a
    # sine is also written through the cosine, and the other way round.
    forms = [expr]
    both = {f.args[0] for f in expr.atoms(sympy.sin)} & {f.args[0] for f in expr.atoms(sympy.cos)}
    for arg in sorted(both, key=sympy.default_sort_key)[:_MAX_TRIG_ARGUMENTS]:
        sin, cos = sympy.sin(arg), sympy.cos(arg)
        forms = [
            g for f in forms for g in (f, f.subs(sin**2, 1 - cos**2), f.subs(cos**2, 1 - sin**2))
        ]
    # A cosine of a double angle through the square of a cosine or a sine:
    # I0*(cos(2*theta) + 1)/2 is I0*cos(theta)**2.
    doubled = [f.args[0] / 2 for f in expr.atoms(sympy.cos) if _is_doubled(f.args[0])]
    for half in sorted(doubled, key=sympy.default_sort_key)[:_MAX_TRIG_ARGUMENTS]:
        double = sympy.cos(2 * half)
        forms = [
            g
            for f in forms
            for g in (
                f,
                f.subs(double, 2 * sympy.cos(half) ** 2 - 1),
                f.subs(double, 1 - 2 * sympy.sin(half) ** 2),
            )
        ]
    # A hyperbolic tangent through exponentials: 1/2 - tanh(x/2)/2 is 1/(exp(x) + 1).
    tangents = sorted(expr.atoms(sympy.tanh), key=sympy.default_sort_key)[:_MAX_TRIG_ARGUMENTS]
    for tangent in tangents:
        grown = sympy.exp(2 * tangent.args[0])
        forms = [g for f in forms for g in (f, f.subs(tangent, (grown - 1) / (grown + 1)))]
    # -c*log(a/b) is c*log(b/a).
    logs = sorted(expr.atoms(sympy.log), key=sympy.default_sort_key)[:_MAX_TRIG_ARGUMENTS]
    for log in logs:
        forms = [g for f in forms for g in (f, f.subs(log, -sympy.log(1 / log.args[0])))]
    # e*exp(x - 1) is exp(x): Euler's number, an exact constant, meets exponentials whose
    # argument holds a constant term ((E - T)/T).
    if expr.has(sympy.exp):
        forms += [sympy.powsimp(f, deep=True, combine="exp") for f in forms]
    # Among forms of as many nodes, the one with the fewest minus signs.
    shortest = min(
        (_simplify_functions(f) for f in dict.fromkeys(forms)),
        key=lambda f: (complexity(f), _minus_signs(f)),
    )
    written = _positive_sums(_roots_of_reciprocals(shortest))
    # A sign moved into a sum may cost a node (-V*(-1 + e)/R is V*(1 - e)/R): worth it where
    # it removes a minus sign.
    fewer_signs = _minus_signs(written) < _minus_signs(shortest)
    allowed = complexity(shortest) + (1 if fewer_signs else 0)
    return written if complexity(written) <= allowed else shortest


def _is_doubled(argument: sympy.Expr) -> bool:
    """Whether ``argument`` is an even integer times something (``2*k*x``)."""
    coefficient, _ = argument.as_coeff_Mul()
    return coefficient.is_Integer and coefficient % 2 == 0 and coefficient != 0


def _minus_signs(expr: sympy.Expr) -> int:
    """Minus signs in ``expr`` as it prints."""
    return str(expr).count("-")


def _roots_of_reciprocals(expr: sympy.Expr) -> sympy.Expr:
    """``expr`` with each root of a reciprocal, ``sqrt(1/x)``, written ``1/sqrt(x)``: on the
    real numbers both are defined exactly where ``x > 0``, and equal there."""
    return expr.replace(
        lambda e: (
            e.is_Pow
            and e.exp.is_Rational
            and not e.exp.is_Integer
            and e.base.is_Pow
            and e.base.exp == -1
        ),
        lambda e: sympy.Pow(e.base.base, -e.exp),
    )


def _positive_sums(expr: sympy.Expr) -> sympy.Expr:
    """``expr`` with a negated product's sign moved into one of its sums (or sums raised to an
    odd power, ``1/(f - do)``) when that leaves no more minus signs: ``-do*f/(f - do)`` as
    ``do*f/(do - f)`` (:func:`simplify_formula` keeps it only where it adds no node)."""

    def base(factor: sympy.Expr) -> sympy.Expr | None:
        if factor.is_Add:
            return factor
        if factor.is_Pow and factor.base.is_Add and factor.exp.is_Integer and factor.exp % 2:
            return factor.base
        return None

    def flipped(product: sympy.Mul) -> sympy.Expr:
        coefficient, rest = product.as_coeff_mul()
        if coefficient >= 0:
            return product
        for factor in rest:
            inner = base(factor)
            if inner is None:
                continue
            negative = sum(t.could_extract_minus_sign() for t in inner.args)
            if len(inner.args) - negative <= negative:
                others = list(rest)
                others.remove(factor)
                turned = factor.subs(inner, -inner) if factor is not inner else -inner
                return sympy.Mul(-coefficient, turned, *others)
        return product

    def even_power(e: sympy.Expr) -> bool:
        return bool(e.is_Pow and e.base.is_Add and e.exp.is_Integer and e.exp % 2 == 0)

    # A sum raised to an even power reads the same either way round: (x - m)**2, not
    # (-m + x)**2.
    expr = expr.replace(
        even_power,
        lambda e: sympy.Pow(-e.base, e.exp) if str(e.base).startswith("-") else e,
    )
    return expr.replace(lambda e: e.is_Mul, flipped)


def _simplify_functions(expr: sympy.Expr) -> sympy.Expr:
    """:func:`_simplify_cached` with every function application held as one symbol."""
    if expr.is_Atom:
        return expr
    # To the polynomial rewrites, exp(-838*k*t/(3*Ta)) is the 838th power of exp(k*t/(3*Ta))
    # (and a float multiple a power with a huge rational exponent), which takes them minutes:
    # every function application is one opaque symbol to them instead.
    # Numbered dummies, so that equal formulas still share their cached simplification.
    # Each argument is simplified on its own first: exp(-(x - m)**2/(2*s**2)), not its
    # expanded exponent.
    expr = expr.replace(
        lambda e: isinstance(e, sympy.Function) and len(e.args) == 1 and not e.args[0].is_Atom,
        lambda e: e.func(simplify_formula(e.args[0])),
    )
    functions = sorted(expr.atoms(sympy.Function), key=sympy.default_sort_key)
    opaque = {f: sympy.Dummy("f", dummy_index=i) for i, f in enumerate(functions)}
    if not opaque:
        return _simplify_cached(expr)
    simplified = _simplify_cached(expr.xreplace(opaque))
    return simplified.xreplace({dummy: f for f, dummy in opaque.items()})


@functools.lru_cache(maxsize=4096)
def _simplify_cached(expr: sympy.Expr) -> sympy.Expr:
    best, best_size = expr, complexity(expr)
    terms = _expanded_terms_bound(expr)
    # Multivariate factoring grows steeply with the number of symbols as well as with size,
    # and a sum of terms in one distinct symbol each has nothing to factor but a number,
    # which factor_terms takes out cheaply.
    small = (
        terms <= _MAX_FACTOR_TERMS
        and best_size <= _MAX_FACTOR_NODES
        and len(expr.free_symbols) <= _MAX_FACTOR_SYMBOLS
        and not _separate_symbols(expr)
    )
    rewrites = []
    if small:
        rewrites.append(sympy.factor)
    if terms <= _MAX_EXPANDED_TERMS:
        rewrites.append(sympy.expand)
    rewrites.append(sympy.together)
    if small:
        rewrites.append(sympy.cancel)
    rewrites.append(sympy.factor_terms)
    has_floats = expr.has(sympy.Float)
    for rewrite in rewrites:
        try:
            candidate = rewrite(expr)
        except BasePolynomialError:
            continue
        size = complexity(candidate)
        if size < best_size and (not has_floats or _agree_numerically(expr, candidate)):
            best, best_size = candidate, size
    return best


def _separate_symbols(expr: sympy.Expr) -> bool:
    """Whether ``expr`` is a sum whose terms each hold one symbol, no two the same one."""
    if not expr.is_Add:
        return False
    seen: set[sympy.Symbol] = set()
    for term in expr.args:
        symbols = term.free_symbols
        if len(symbols) > 1 or symbols & seen:
            return False
        seen |= symbols
    return True


def _expanded_terms_bound(expr: sympy.Basic) -> int:
    """An upper bound on the number of terms of ``expand(expr)``, capped to stay cheap."""
    cap = _MAX_EXPANDED_TERMS + 1
    if expr.is_Add:
        return min(cap, sum(_expanded_terms_bound(arg) for arg in expr.args))
    if expr.is_Mul:
        total = 1
        for arg in expr.args:
            total = min(cap, total * _expanded_terms_bound(arg))
        return total
    if expr.is_Pow and expr.exp.is_Integer:
        base = _expanded_terms_bound(expr.base)
        if base == 1:
            return 1
        exponent = abs(int(expr.exp))
        return cap if exponent * math.log2(base) >= math.log2(cap) else base**exponent
    return 1


def _agree_numerically(a: sympy.Expr, b: sympy.Expr, points: int = 3) -> bool:
    """Whether ``a`` and ``b`` agree to 1e-9 at a few fixed points where ``a`` is finite."""
    symbols = sorted(a.free_symbols | b.free_symbols, key=sympy.default_sort_key)
    rng = random.Random(0)
    for _ in range(points):
        values = {s: sympy.Float(rng.uniform(0.5, 2.0)) for s in symbols}
        va, vb = complex(a.evalf(subs=values)), complex(b.evalf(subs=values))
        if not (math.isfinite(va.real) and math.isfinite(va.imag)):
            continue
        if abs(va - vb) > 1e-9 * max(1.0, abs(va)):
            return False
    return True


def structure_to_expr(
    structure: Structure,
    coefficients: Sequence[float | sympy.Expr],
    features: Sequence[sympy.Expr],
) -> sympy.Expr:
    """The formula ``c0 + sum_t c_t * prod_k (sum_j s_tkj * f_j) ** e_tk``, simplified.

    Parameters
    ----------
    structure : Structure
        A canonical structure from :mod:`nalu_sr.structure`: terms of ``(factor, exponent)``
        powers, each factor a tuple of ``(feature_index, sign)`` pairs.
    coefficients : sequence of float or sympy.Expr
        ``[c0, c1, ..., cT]``: the intercept, then one coefficient per term of ``structure``.
        Python / NumPy floats become :class:`sympy.Float`, integers :class:`sympy.Integer`.
    features : sequence of sympy.Expr
        The expression of each feature index (for example ``x``, ``1/x``, ``1``).

    Returns
    -------
    sympy.Expr
        The formula after :func:`simplify_formula`.

    Raises
    ------
    ValueError
        If the number of coefficients is not ``len(structure) + 1`` or a feature index is out
        of range.

    Examples
    --------
    >>> x, y = sympy.symbols("x y")
    >>> x_plus_y = ((0, 1), (1, 1))
    >>> structure_to_expr((((x_plus_y, 2),),), [0, 3], [x, y])
    3*(x + y)**2
    >>> structure_to_expr((((((0, 1),), 1), (x_plus_y, -1)),), [1, 2], [x, y])
    2*x/(x + y) + 1
    """
    if len(coefficients) != len(structure) + 1:
        raise ValueError(
            f"got {len(coefficients)} coefficients for a structure of {len(structure)} terms; "
            "pass the intercept followed by one coefficient per term."
        )
    exact = [_as_sympy_number(c) for c in coefficients]
    total = exact[0]
    for coefficient, term in zip(exact[1:], structure):
        product = sympy.Mul(*(_factor_expr(f, features) ** e for f, e in term))
        total += coefficient * product
    return simplify_formula(total)


def _factor_expr(factor, features: Sequence[sympy.Expr]) -> sympy.Expr:
    terms = []
    for index, sign in factor:
        if not 0 <= index < len(features):
            raise ValueError(
                f"the structure uses feature index {index}, but only {len(features)} feature "
                "expressions were given; pass one expression per feature index."
            )
        terms.append(sign * features[index])
    return sympy.Add(*terms)


def _as_sympy_number(value: float | sympy.Expr) -> sympy.Expr:
    if isinstance(value, sympy.Basic):
        return value
    if isinstance(value, bool):
        raise TypeError(f"a coefficient must be a number, got the boolean {value!r}.")
    if isinstance(value, numbers.Integral):
        return sympy.Integer(int(value))
    return sympy.Float(_as_finite_float(value))


def denominators(expr: sympy.Expr) -> list[sympy.Expr]:
    """The expressions ``expr`` divides by (bases of negative powers), in a stable order.

    Examples
    --------
    >>> x, y = sympy.symbols("x y")
    >>> denominators(2*x/(x + y) - 1/y**2)
    [y, x + y]
    """
    bases = {p.base for p in expr.atoms(sympy.Pow) if p.exp.is_negative}
    return sorted(bases, key=sympy.default_sort_key)


def domain_arguments(expr: sympy.Expr) -> list[sympy.Expr]:
    """The arguments of ``expr``'s real roots and logarithms, which must stay positive (a root's
    at least not negative) for the formula to be real, in a stable order.

    Examples
    --------
    >>> a, b = sympy.symbols("a b", real=True)
    >>> domain_arguments(sympy.sqrt(a**2 - b) + sympy.log(b) + a**2)
    [b, a**2 - b]
    """
    roots = {p.base for p in expr.atoms(sympy.Pow) if not p.exp.is_integer}
    logs = {f.args[0] for f in expr.atoms(sympy.log)}
    return sorted(roots | logs, key=sympy.default_sort_key)
