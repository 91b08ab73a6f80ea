"""Formulas as LaTeX, as standalone Python functions, and as ``srepr`` text.

Everything here goes through SymPy's printers (:func:`sympy.latex`, the code printers of
:mod:`sympy.printing.pycode` and :mod:`sympy.printing.numpy`, :func:`sympy.srepr`). The only
text assembled by hand is what surrounds printer output: LaTeX names of symbols (through the
printer's ``symbol_names`` option) and the ``def`` line and docstring of exported functions.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Callable, Mapping, Sequence

import sympy
from sympy.printing.codeprinter import PrintMethodNotImplementedError
from sympy.printing.numpy import NumPyPrinter
from sympy.printing.pretty.pretty_symbology import greek_unicode
from sympy.printing.pycode import PythonCodePrinter

from .symbolic import python_identifiers

# Names SymPy's default LaTeX printer renders well: letters, optional digits, one subscript.
_PLAIN_LATEX_NAME = re.compile(r"[A-Za-z]+[0-9]*(_[A-Za-z0-9]+)?")
_GREEK_NAME_BY_LETTER = {letter: name for name, letter in greek_unicode.items()}
_TEXT_MODE_ESCAPES = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "$": r"\$",
    "&": r"\&",
    "#": r"\#",
    "^": r"\textasciicircum{}",
    "_": r"\_",
    "%": r"\%",
    "~": r"\textasciitilde{}",
}
_LATEX_CONSTANTS = (sympy.pi, sympy.E, sympy.I)


def to_latex(expr: sympy.Expr, symbol_names: Mapping[sympy.Symbol | str, str] | None = None) -> str:
    """LaTeX of ``expr`` with each symbol written after the user's column name.

    Names such as ``x``, ``R1`` (``R_{1}``), ``v_max`` (``v_{max}``), ``alpha`` (``\\alpha``)
    or ``θ_0`` (``\\theta_{0}``) use SymPy's usual rendering. Any other name, and any name
    whose usual rendering would look like another symbol or like a constant (a column called
    ``pi`` next to the number pi), is written upright as ``\\text{...}`` with LaTeX's special
    characters escaped, e.g. ``\\text{mass (kg)}``.

    Parameters
    ----------
    expr : sympy.Expr
        Formula to print.
    symbol_names : mapping, optional
        LaTeX for some symbols, keyed by symbol or by name; overrides the rendering above.

    Returns
    -------
    str
        LaTeX source in math mode, without surrounding ``$``.

    Examples
    --------
    >>> mass, r1 = sympy.Symbol("mass (kg)"), sympy.Symbol("R1")
    >>> print(to_latex(mass / r1))
    \\frac{\\text{mass (kg)}}{R_{1}}
    """
    expr = sympy.sympify(expr, strict=True)
    overrides = dict(symbol_names or {})
    symbols = sorted(expr.free_symbols, key=sympy.default_sort_key)
    names: dict[sympy.Symbol, str] = {}
    for symbol in symbols:
        if symbol in overrides or symbol.name in overrides:
            names[symbol] = overrides.get(symbol, overrides.get(symbol.name))
        else:
            names[symbol] = _usual_latex_name(symbol.name)
    taken = [sympy.latex(constant) for constant in _LATEX_CONSTANTS]
    rendered = taken + [names[s] for s in symbols]
    for symbol in symbols:
        name = names[symbol]
        overridden = symbol in overrides or symbol.name in overrides
        if not overridden and rendered.count(name) > 1:
            names[symbol] = _text_latex_name(symbol.name)
    return sympy.latex(expr, symbol_names=names)


def _usual_latex_name(name: str) -> str:
    if name[:1] in _GREEK_NAME_BY_LETTER:
        spelled = _GREEK_NAME_BY_LETTER[name[0]] + name[1:]
        if _PLAIN_LATEX_NAME.fullmatch(spelled):
            return sympy.latex(sympy.Symbol(spelled))
    if _PLAIN_LATEX_NAME.fullmatch(name):
        return sympy.latex(sympy.Symbol(name))
    return _text_latex_name(name)


def _text_latex_name(name: str) -> str:
    escaped = "".join(_TEXT_MODE_ESCAPES.get(char, char) for char in name)
    return r"\text{" + escaped + "}"


class _RoundTripFloats:
    """Printer mixin writing floats with ``repr``: SymPy's default keeps only 15 digits."""

    def _print_Float(self, expr: sympy.Float) -> str:  # noqa: N802 (SymPy's dispatch name)
        return repr(float(expr))


class _NumPyFunctionPrinter(_RoundTripFloats, NumPyPrinter):
    """NumPy code with ``np.`` as the module prefix."""

    def _module_format(self, fqn: str, register: bool = True) -> str:
        printed = super()._module_format(fqn, register)
        return "np" + printed[len("numpy") :] if printed.startswith("numpy.") else printed


class _MathFunctionPrinter(_RoundTripFloats, PythonCodePrinter):
    """Scalar code on the :mod:`math` module."""


_BACKENDS = {
    "numpy": (_NumPyFunctionPrinter, "numpy", "np"),
    "math": (_MathFunctionPrinter, "math", "math"),
}


def to_python(
    expr: sympy.Expr,
    feature_names: Sequence[str],
    function_name: str = "formula",
    backend: str = "numpy",
) -> str:
    """Source of a standalone Python function that evaluates ``expr``.

    The function takes one parameter per feature, in the order of ``feature_names``, named by
    :func:`~nalu_sr.symbolic.python_identifiers`; its docstring states the formula in the
    user's names. Floats are written with ``repr`` so that they round-trip exactly.

    Parameters
    ----------
    expr : sympy.Expr
        Formula whose free symbols are named after entries of ``feature_names``.
    feature_names : sequence of str
        Column names, in the order of the function's parameters.
    function_name : str, default="formula"
        Name of the generated function; must be a valid identifier.
    backend : {"numpy", "math"}, default="numpy"
        ``"numpy"`` works on arrays (inputs go through ``np.asarray``; the result always has
        the broadcast shape of the inputs, even for a constant formula); ``"math"`` works on
        Python scalars and needs only ``import math``.

    Returns
    -------
    str
        Source text: an ``import`` line (when needed) and the function.

    Raises
    ------
    ValueError
        If a symbol of ``expr`` is not a feature, ``function_name`` is not an identifier,
        ``backend`` is unknown, or ``expr`` uses a function the backend cannot print.

    Examples
    --------
    >>> x = sympy.Symbol("x (m)")
    >>> print(to_python(2 * x, ["x (m)"], backend="math"))
    def formula(x_m):
        \"\"\"Return 2*x (m).
    <BLANKLINE>
        Parameters
        ----------
        x_m : float
            Column 'x (m)'.
        \"\"\"
        return 2*x_m
    <BLANKLINE>
    """
    if backend not in _BACKENDS:
        raise ValueError(f"backend={backend!r} is not supported; use 'numpy' or 'math'.")
    if not function_name.isidentifier() or keyword.iskeyword(function_name):
        raise ValueError(
            f"function_name={function_name!r} is not a valid Python function name; "
            "use letters, digits and underscores, not starting with a digit."
        )
    expr = sympy.sympify(expr, strict=True)
    identifiers = python_identifiers(feature_names)
    if function_name in {"np", "math", "numpy"}:
        raise ValueError(f"function_name={function_name!r} would hide a module; pick another.")
    unknown = sorted(s.name for s in expr.free_symbols if s.name not in identifiers)
    if unknown:
        raise ValueError(
            f"the formula uses {unknown}, which are not among the feature names "
            f"{list(feature_names)}; pass every column the formula uses."
        )
    renamed = expr.xreplace({s: sympy.Symbol(identifiers[s.name]) for s in expr.free_symbols})
    printer_class, module, alias = _BACKENDS[backend]
    printer = printer_class({"strict": True})
    try:
        body = printer.doprint(renamed)
    except PrintMethodNotImplementedError as error:
        raise ValueError(
            f"the {backend!r} backend cannot print {expr}: {error}. Export with the other "
            "backend or use sympy.lambdify."
        ) from error
    foreign = set(printer.module_imports) - {module}
    if foreign:
        raise ValueError(
            f"printing {expr} for {backend!r} needs modules {sorted(foreign)}; only "
            f"{module!r} is allowed in exported code. Use sympy.lambdify instead."
        )

    parameters = list(identifiers.values())
    lines = [f"def {function_name}({', '.join(parameters)}):"]
    lines += _docstring_lines(expr, identifiers, "array_like" if backend == "numpy" else "float")
    if backend == "numpy":
        lines += [f"    {p} = np.asarray({p}, dtype=float)" for p in parameters]
        if parameters and len(expr.free_symbols) < len(parameters):
            # np.broadcast takes at most 64 arrays; broadcast_shapes has no such limit.
            shapes = ", ".join(f"np.shape({p})" for p in parameters)
            shape = f"np.broadcast_shapes({shapes})"
            body = f"np.broadcast_to({body}, {shape}).astype(float)"
    lines.append(f"    return {body}")
    header = []
    if backend == "numpy" or printer.module_imports:
        header = [f"import {module}" + (f" as {alias}" if alias != module else ""), "", ""]
    return "\n".join(header + lines) + "\n"


def to_function(
    expr: sympy.Expr, feature_names: Sequence[str], backend: str = "numpy"
) -> Callable[..., object]:
    """The function of :func:`to_python`, compiled: a safe replacement for ``sympy.lambdify``.

    ``lambdify`` puts every symbol of the formula into the generated function's namespace by
    name, even with ``dummify=True``, so a column called ``pi``, ``e`` or ``sin`` silently
    replaces the constant or function of that name. Here parameters are renamed by
    :func:`~nalu_sr.symbolic.python_identifiers` and modules are always qualified (``np.pi``),
    so no column name can shadow anything. The compiled text comes from SymPy's printers and
    holds no user text outside the docstring.

    Parameters
    ----------
    expr, feature_names, backend
        As for :func:`to_python`.

    Returns
    -------
    callable
        ``f(*columns)``, one argument per entry of ``feature_names``.
    """
    source = to_python(expr, feature_names, function_name="formula", backend=backend)
    namespace: dict[str, object] = {}
    exec(compile(source, "<nalu_sr formula>", "exec"), namespace)
    return namespace["formula"]


def _docstring_lines(expr: sympy.Expr, identifiers: dict[str, str], kind: str) -> list[str]:
    text = [f"Return {sympy.sstr(expr)}."]
    if identifiers:
        text += ["", "Parameters", "----------"]
        for name, identifier in identifiers.items():
            text += [f"{identifier} : {kind}", f"    Column {name!r}."]
    body = "\n".join(text)
    awkward = any(not (char.isprintable() or char == "\n") for char in body)
    if awkward or '"""' in body or "\\" in body or body.endswith('"'):
        literal = repr(body)
    else:
        literal = '"""' + "\n    ".join(text) + '\n    """'
    return ["    " + literal.replace("\n    \n", "\n\n")]


def to_srepr(expr: sympy.Expr) -> str:
    """SymPy's ``srepr`` of ``expr``: the constructor calls that rebuild it exactly.

    Meant for reading and debugging; to store a formula, use
    :func:`nalu_sr.serialization.expr_to_tree`, which loads back without evaluating code.
    """
    return sympy.srepr(sympy.sympify(expr, strict=True))
