"""Formulas as LaTeX, as standalone Python functions, as PyTorch modules, and as ``srepr`` text.

Everything here goes through SymPy's printers (:func:`sympy.latex`, the code printers of
:mod:`sympy.printing.pycode` and :mod:`sympy.printing.numpy`, :func:`sympy.srepr`). The only
text assembled by hand is what surrounds printer output: LaTeX names of symbols (through the
printer's ``symbol_names`` option), the ``def`` line and docstring of exported functions, and
the ``class`` around the formula of exported PyTorch modules.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Callable, Mapping, Sequence

import sympy
import torch
from sympy.printing.codeprinter import PrintMethodNotImplementedError
from sympy.printing.numpy import NumPyPrinter
from sympy.printing.pretty.pretty_symbology import greek_unicode
from sympy.printing.pycode import PythonCodePrinter

from .errors import InputError
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
    if function_name in {"np", "math", "numpy"}:
        raise ValueError(f"function_name={function_name!r} would hide a module; pick another.")
    renamed, identifiers = _over_identifiers(expr, feature_names)
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


def _over_identifiers(
    expr: sympy.Expr, feature_names: Sequence[str]
) -> tuple[sympy.Expr, dict[str, str]]:
    """``expr`` over symbols named by :func:`~nalu_sr.symbolic.python_identifiers`, and the
    mapping from column names to those identifiers."""
    identifiers = python_identifiers(feature_names)
    unknown = sorted(s.name for s in expr.free_symbols if s.name not in identifiers)
    if unknown:
        raise ValueError(
            f"the formula uses {unknown}, which are not among the feature names "
            f"{list(feature_names)}; pass every column the formula uses."
        )
    renamed = expr.xreplace({s: sympy.Symbol(identifiers[s.name]) for s in expr.free_symbols})
    return renamed, identifiers


#: SymPy functions by class name, and the torch functions of the same meaning.
_TORCH_FUNCTIONS = {
    "Abs": "abs",
    "sign": "sign",
    "exp": "exp",
    "log": "log",
    "sin": "sin",
    "cos": "cos",
    "tan": "tan",
    "asin": "asin",
    "acos": "acos",
    "atan": "atan",
    "sinh": "sinh",
    "cosh": "cosh",
    "tanh": "tanh",
    "asinh": "asinh",
    "acosh": "acosh",
    "atanh": "atanh",
    "erf": "erf",
    "erfc": "erfc",
}


class _TorchPrinter(_RoundTripFloats, PythonCodePrinter):
    """Code on torch tensors: ``torch.`` functions, ``**`` for powers, Python numbers.

    Python numbers take the dtype and device of the tensors they meet, so the code runs in
    float32 or float64 on any device. Functions of the Python printer that torch lacks, and
    ``Piecewise`` (printed there as Python's ``if``), are not printed.
    """

    _kf = {name: f"torch.{function}" for name, function in _TORCH_FUNCTIONS.items()}

    def _print_Pow(self, expr: sympy.Pow, rational: bool = False) -> str:  # noqa: N802
        return self._hprint_Pow(expr, rational=rational, sqrt="torch.sqrt")

    def _print_torch_function(self, expr: sympy.Function) -> str:
        function = self.known_functions.get(type(expr).__name__)
        if function is None:
            return self._print_not_supported(expr)
        arguments = ", ".join(self._print(argument) for argument in expr.args)
        return f"{self._module_format(function)}({arguments})"

    _print_Piecewise = PythonCodePrinter._print_not_supported  # noqa: N815 (SymPy's name)


for _name in set(PythonCodePrinter._kf) | set(_TORCH_FUNCTIONS):
    setattr(_TorchPrinter, f"_print_{_name}", _TorchPrinter._print_torch_function)


def _constants_as_floats(expr: sympy.Expr) -> sympy.Expr:
    """``expr`` with every constant other than an integer or a fraction (``pi/3``,
    ``sqrt(2)``, ``E``) replaced by the float nearest to it.

    torch functions take tensors, not Python numbers, and printing ``pi/3`` as ``(1/3)*pi``
    would round twice. Integers and fractions stay: Python divides them exactly rounded.
    """
    if expr.is_Rational:
        return expr
    if expr.is_number:
        try:
            return sympy.Float(float(expr.evalf(30)))
        except TypeError:
            raise ValueError(f"the constant {expr} is not a real number.") from None
    if isinstance(expr, (sympy.Add, sympy.Mul)):
        # The numeric factors (or terms) of a product (or sum) make one constant.
        numbers = [argument for argument in expr.args if argument.is_number]
        rest = [_constants_as_floats(argument) for argument in expr.args if not argument.is_number]
        constant = [_constants_as_floats(expr.func(*numbers))] if numbers else []
        return expr.func(*constant, *rest, evaluate=False)
    if not expr.args:
        return expr
    return expr.func(*(_constants_as_floats(argument) for argument in expr.args))


def to_torch(expr: sympy.Expr, feature_names: Sequence[str], class_name: str = "Formula") -> str:
    """Source of a standalone Python module whose ``torch.nn.Module`` computes ``expr``.

    The module imports only torch. Its class's ``forward`` takes a tensor of shape
    ``(n_rows, len(feature_names))``, the columns in the order of ``feature_names`` (every
    one of them, used by the formula or not), and returns a tensor of shape ``(n_rows,)``
    with the input's dtype and device; integer input is computed in float64. Constants are
    Python numbers, so ``.to(device)`` has nothing to move, and gradients flow through the
    formula. Integers and fractions are divided by Python, other constants (``pi/3``) are
    written as the nearest float: both keep float64's precision.

    Parameters
    ----------
    expr : sympy.Expr
        Formula whose free symbols are named after entries of ``feature_names``.
    feature_names : sequence of str
        Column names, in the order of the input's columns; at least one.
    class_name : str, default="Formula"
        Name of the generated class; must be a valid identifier other than ``torch``.

    Returns
    -------
    str
        Source text: ``import torch`` and the class.

    Raises
    ------
    ValueError
        If a symbol of ``expr`` is not a feature, ``feature_names`` is empty, ``class_name``
        is not an identifier, or ``expr`` uses a function torch cannot compute here
        (``Min``, ``Piecewise``, an undefined function).

    Examples
    --------
    >>> c = sympy.Symbol("C")
    >>> print(to_torch(sympy.Rational(9, 5) * c + 32, ["C"]))
    import torch
    <BLANKLINE>
    <BLANKLINE>
    class Formula(torch.nn.Module):
        \"\"\"Return 9*C/5 + 32 for each row of the input.
    <BLANKLINE>
        forward takes a tensor of shape (n_rows, 1) whose columns are, in order:
        C : column 'C'
        It returns a tensor of shape (n_rows,) with the input's dtype and device.
        \"\"\"
    <BLANKLINE>
        feature_names = ('C',)
    <BLANKLINE>
        def forward(self, input):
            if input.ndim != 2 or input.shape[1] != 1:
                raise ValueError(f"expected shape (n_rows, 1), got {tuple(input.shape)}")
            if not input.is_floating_point():
                input = input.double()
            (C,) = input.unbind(dim=1)
            return (9/5)*C + 32
    <BLANKLINE>
    """
    if not class_name.isidentifier() or keyword.iskeyword(class_name) or class_name == "torch":
        raise ValueError(
            f"class_name={class_name!r} is not a valid Python class name here; use letters, "
            "digits and underscores, not starting with a digit, and not 'torch'."
        )
    if not feature_names:
        raise ValueError("a torch module needs at least one feature column; got none.")
    expr = sympy.sympify(expr, strict=True)
    renamed, identifiers = _over_identifiers(expr, feature_names)
    printer = _TorchPrinter({"strict": True})
    try:
        body = printer.doprint(_constants_as_floats(renamed))
    except PrintMethodNotImplementedError as error:
        raise ValueError(
            f"the torch export cannot print {expr}: {error}. Export it as Python with NumPy "
            "instead."
        ) from error
    foreign = set(printer.module_imports) - {"torch"}
    if foreign:
        raise ValueError(
            f"printing {expr} for torch needs modules {sorted(foreign)}; only torch is "
            "allowed in the exported module."
        )
    if not renamed.free_symbols:
        body = f"input.new_full((input.shape[0],), {body})"
    width = len(identifiers)
    columns = ", ".join(identifiers.values())
    text = [
        f"Return {sympy.sstr(expr)} for each row of the input.",
        "",
        f"forward takes a tensor of shape (n_rows, {width}) whose columns are, in order:",
        *(f"{identifier} : column {name!r}" for name, identifier in identifiers.items()),
        "It returns a tensor of shape (n_rows,) with the input's dtype and device.",
    ]
    shape_error = f"expected shape (n_rows, {width}), got {{tuple(input.shape)}}"
    lines = [
        "import torch",
        "",
        "",
        f"class {class_name}(torch.nn.Module):",
        _docstring(text),
        "",
        f"    feature_names = {tuple(feature_names)!r}",
        "",
        "    def forward(self, input):",
        f"        if input.ndim != 2 or input.shape[1] != {width}:",
        f'            raise ValueError(f"{shape_error}")',
        "        if not input.is_floating_point():",
        "            input = input.double()",
        f"        ({columns}{',' if width == 1 else ''}) = input.unbind(dim=1)",
        f"        return {body}",
    ]
    return "\n".join(lines) + "\n"


class TorchFormula(torch.nn.Module):
    """A formula as a ``torch.nn.Module``: the class of :func:`to_torch`, compiled.

    Unlike the class that :func:`to_torch` prints, this one can be pickled and saved with
    ``torch.save`` (load it back with ``torch.load(path, weights_only=False)``, with nalu-sr
    installed): it keeps the formula, not the compiled code, and compiles it again on loading.

    Parameters
    ----------
    expr : sympy.Expr
        Formula whose free symbols are named after entries of ``feature_names``.
    feature_names : sequence of str
        Column names, in the order of the input's columns.

    Attributes
    ----------
    expr : sympy.Expr
    feature_names : tuple of str

    Shape:
        - Input: ``(n_rows, len(feature_names))``, float32 or float64 (integers are computed
          in float64), on any device.
        - Output: ``(n_rows,)``, with the input's dtype and device.

    Examples
    --------
    >>> x, y = sympy.symbols("x y")
    >>> module = TorchFormula(x * y + sympy.pi, ["x", "y"])
    >>> module(torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64))
    tensor([ 5.1416, 15.1416], dtype=torch.float64)
    """

    def __init__(self, expr: sympy.Expr, feature_names: Sequence[str]) -> None:
        super().__init__()
        self.expr = sympy.sympify(expr, strict=True)
        self.feature_names = tuple(feature_names)
        self._compile()

    def _compile(self) -> None:
        namespace: dict[str, object] = {}
        source = to_torch(self.expr, self.feature_names)
        exec(compile(source, "<nalu_sr torch formula>", "exec"), namespace)
        # The generated forward uses nothing of self: this module can run it.
        self._formula = namespace["Formula"].forward

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """The formula on each row of ``input``, whose columns are the features in order."""
        width = len(self.feature_names)
        if input.ndim != 2 or input.shape[1] != width:
            raise InputError(
                f"expected a tensor of shape (n_rows, {width}), one column per feature "
                f"{list(self.feature_names)}, got shape {tuple(input.shape)}."
            )
        return self._formula(self, input)

    def extra_repr(self) -> str:
        return sympy.sstr(self.expr)

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state.pop("_formula", None)
        return state

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        self._compile()


def _docstring_lines(expr: sympy.Expr, identifiers: dict[str, str], kind: str) -> list[str]:
    text = [f"Return {sympy.sstr(expr)}."]
    if identifiers:
        text += ["", "Parameters", "----------"]
        for name, identifier in identifiers.items():
            text += [f"{identifier} : {kind}", f"    Column {name!r}."]
    return [_docstring(text)]


def _docstring(text: list[str]) -> str:
    """``text`` as a docstring indented by four spaces, or as a ``repr`` when user names in it
    hold quotes, backslashes or unprintable characters."""
    body = "\n".join(text)
    awkward = any(not (char.isprintable() or char == "\n") for char in body)
    if awkward or '"""' in body or "\\" in body or body.endswith('"'):
        literal = repr(body)
    else:
        literal = '"""' + "\n    ".join(text) + '\n    """'
    return "    " + literal.replace("\n    \n", "\n\n")


def to_srepr(expr: sympy.Expr) -> str:
    """SymPy's ``srepr`` of ``expr``: the constructor calls that rebuild it exactly.

    Meant for reading and debugging; to store a formula, use
    :func:`nalu_sr.serialization.expr_to_tree`, which loads back without evaluating code.
    """
    return sympy.srepr(sympy.sympify(expr, strict=True))
