"""The public formula suite: named ground-truth formulas with training and extrapolation tables.

Every entry is a formula, the ranges its training inputs are drawn from, and wider ranges
(containing the training ones) for the extrapolation table. The tables shipped in the
repository's ``datasets/`` folder are regenerated, byte for byte, by::

    python -m nalu_sr.datasets.suite datasets/ --overwrite

Each entry writes ``<name>.csv`` (training), ``<name>_wide.csv`` (extrapolation) and
``<name>.json`` (the manifest: formula, ranges, sizes, seed). Floats are written with 17
significant digits, so a table read back exactly (see :func:`load_suite_entry`) holds the
generated numbers and its target column is exactly the formula evaluated on its inputs.
"""

from __future__ import annotations

import argparse
import difflib
import functools
import io
import json
import os
import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pandas as pd
import sympy

from ..files import write_text_atomic
from .formulas import check_ranges, make_formula_dataset, parse_formula

__all__ = [
    "DATA_DIR",
    "DEFAULT_SEED",
    "SUITE",
    "SuiteEntry",
    "list_suite",
    "load_suite_entry",
    "truth",
    "write_suite",
    "write_suite_entry",
]

#: Folder of the shipped tables (present in a source checkout, absent from an installed wheel).
DATA_DIR = Path(__file__).resolve().parents[2] / "datasets"

#: Seed of the shipped tables.
DEFAULT_SEED = 0

_FLOAT_FORMAT = "%.17g"
#: Permissions of the written tables: shipped tables are meant to be read by everyone.
_READABLE = 0o644
_NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]*")


def _covers(outer: list[tuple[float, float]], inner: list[tuple[float, float]]) -> bool:
    """Whether every interval of ``inner`` lies inside one interval of ``outer``."""
    return all(any(lo >= a and hi <= b for a, b in outer) for lo, hi in inner)


@dataclass(frozen=True)
class SuiteEntry:
    """One formula of the suite, with where its training and extrapolation inputs come from.

    Parameters
    ----------
    name : str
        Snake-case identifier; also the stem of the entry's files.
    formula : str
        Ground truth as ``"target = expression"`` (see :func:`~.formulas.parse_formula`).
    ranges : mapping
        Training ranges: input name -> ``(low, high)`` or a list of intervals (their union).
        Names the formula does not use are irrelevant columns.
    wide_ranges : mapping
        Extrapolation ranges, same names; each must contain its training range and reach
        beyond it.
    n_samples : int
        Rows of the training table.
    description : str
        What the formula is and where it comes from.
    n_wide_samples : int, default=500
        Rows of the extrapolation table.

    Raises
    ------
    ValueError
        If the formula does not parse, a variable has no range, the two sets of names differ,
        or a wide range does not contain and exceed its training range.
    """

    name: str
    formula: str
    ranges: Mapping[str, object] = field(hash=False)
    wide_ranges: Mapping[str, object] = field(hash=False)
    n_samples: int
    description: str
    n_wide_samples: int = 500

    def __post_init__(self) -> None:
        if not _NAME_PATTERN.fullmatch(self.name):
            raise ValueError(f"suite entry name {self.name!r} must be snake_case, e.g. 'ohms_law'.")
        equation = parse_formula(self.formula)
        train = check_ranges(self.ranges)
        wide = check_ranges(self.wide_ranges)
        missing = sorted(s.name for s in equation.rhs.free_symbols if s.name not in train)
        if missing:
            raise ValueError(f"entry {self.name!r}: variables {missing} have no training range.")
        if list(train) != list(wide):
            raise ValueError(
                f"entry {self.name!r}: ranges and wide_ranges must name the same inputs in the "
                f"same order, got {list(train)} and {list(wide)}."
            )
        for var in train:
            if not _covers(wide[var], train[var]) or _covers(train[var], wide[var]):
                raise ValueError(
                    f"entry {self.name!r}: wide range of {var!r} {wide[var]} must contain its "
                    f"training range {train[var]} and extend beyond it."
                )
        if self.n_samples < 1 or self.n_wide_samples < 1:
            raise ValueError(f"entry {self.name!r}: row counts must be at least 1.")
        object.__setattr__(self, "ranges", MappingProxyType(dict(self.ranges)))
        object.__setattr__(self, "wide_ranges", MappingProxyType(dict(self.wide_ranges)))

    @property
    def target(self) -> str:
        """Name of the target column."""
        return parse_formula(self.formula).lhs.name

    @property
    def inputs(self) -> tuple[str, ...]:
        """Names of the input columns, in table order."""
        return tuple(check_ranges(self.ranges))

    @property
    def is_arithmetic(self) -> bool:
        """Whether the formula uses only numbers, +, -, *, / and integer powers of its inputs.

        Entries for which this is false (``sin``) have no exact form in an arithmetic search
        space; a search should return an approximation and report that it failed to extrapolate.
        """
        rhs = parse_formula(self.formula).rhs
        for node in sympy.preorder_traversal(rhs):
            if isinstance(node, sympy.Pow):
                if not node.exp.is_Integer:
                    return False
            elif not isinstance(node, (sympy.Symbol, sympy.Number, sympy.Add, sympy.Mul)):
                return False
        return True


def _static_product_formula(offset: int, size: int = 25, overlap: int = 12) -> str:
    """The static arithmetic task's product: two sums over overlapping windows of 100 inputs."""
    x = sympy.symbols("x0:100", real=True)
    a = sympy.Add(*x[offset : offset + size])
    b = sympy.Add(*x[offset + size - overlap : offset + 2 * size - overlap])
    return f"y = {sympy.sstr(a * b)}"


def _same(names: str, interval: object) -> dict[str, object]:
    return dict.fromkeys(names.split(), interval)


_STATIC_OFFSET = 20

_ENTRIES = [
    SuiteEntry(
        "nac_subtract",
        "y = x0 - x1",
        _same("x0 x1", (0, 1)),
        _same("x0 x1", (-5, 5)),
        500,
        "The toy a single NAC learns: weights converge to +1 and -1.",
    ),
    SuiteEntry(
        "sum_of_ten",
        "y = (x0 + x1 + x2 + x3) + (x4 + x5 + x6 + x7 + x8 + x9)",
        {f"x{i}": (0, 10) for i in range(10)},
        {f"x{i}": (0, 100) for i in range(10)},
        500,
        "NALU addition example: a = sum of the first 4 inputs, b = sum of the other 6, y = a + b.",
    ),
    SuiteEntry(
        "static_product_100",
        _static_product_formula(_STATIC_OFFSET),
        {f"x{i}": (1, 2) for i in range(100)},
        {f"x{i}": (1, 6) for i in range(100)},
        1000,
        "NAU paper static task, multiplication, offset 20: y = a*b with a = x20 + ... + x44 and "
        "b = x33 + ... + x57 (windows of 25 inputs sharing 12); 75 inputs are irrelevant.",
    ),
    SuiteEntry(
        "four_input_product",
        "y = (x1 + x2)*(x1 + x2 + x3 + x4)",
        _same("x1 x2 x3 x4", (1, 2)),
        _same("x1 x2 x3 x4", (1, 6)),
        500,
        "NAU paper four-input task: a product of two sums sharing two inputs.",
    ),
    SuiteEntry(
        "ohms_law",
        "V = I*R",
        {"I": (0.1, 2), "R": (1, 100)},
        {"I": (0.01, 20), "R": (0.5, 1000)},
        500,
        "Voltage across a resistor [V] from current [A] and resistance [ohm].",
    ),
    SuiteEntry(
        "rectangle_perimeter",
        "P = 2*(w + h)",
        _same("w h", (1, 10)),
        _same("w h", (0.1, 100)),
        500,
        "Perimeter of a w-by-h rectangle.",
    ),
    SuiteEntry(
        "parallel_resistors",
        "R = R1*R2/(R1 + R2)",
        _same("R1 R2", (1, 100)),
        _same("R1 R2", (0.5, 1000)),
        500,
        "Equivalent resistance [ohm] of two resistors in parallel.",
    ),
    SuiteEntry(
        "body_mass_index",
        "bmi = m/h**2",
        {"m": (40, 120), "h": (1.4, 2.0)},
        {"m": (10, 300), "h": (0.5, 2.5)},
        500,
        "Body mass index [kg/m^2] from mass [kg] and height [m].",
    ),
    SuiteEntry(
        "kinetic_energy",
        "E = m*v**2/2",
        {"m": (1, 10), "v": (0.5, 10)},
        {"m": (0.1, 100), "v": (0.1, 50)},
        500,
        "Kinetic energy [J] of a mass [kg] moving at speed v [m/s].",
    ),
    SuiteEntry(
        "celsius_to_fahrenheit",
        "F = 9*C/5 + 32",
        {"C": (-40, 100)},
        {"C": (-273.15, 1000)},
        500,
        "Temperature conversion; the constants are not in {-1, 0, 1}.",
    ),
    SuiteEntry(
        "difference_of_squares",
        "y = x**2 - z**2",
        _same("x z", (-5, 5)),
        _same("x z", (-20, 20)),
        500,
        "x^2 - z^2, also (x + z)*(x - z); inputs of both signs.",
    ),
    SuiteEntry(
        "pairwise_products",
        "y = a*b + b*c + c*a",
        _same("a b c", (-3, 3)),
        _same("a b c", (-15, 15)),
        500,
        "Sum of the three pairwise products: several product terms added.",
    ),
    SuiteEntry(
        "sum_times_difference",
        "y = (a + b)*(c - d)",
        _same("a b c d", (0, 5)),
        _same("a b c d", (-10, 20)),
        500,
        "A sum times a difference: adding layer, then multiplying layer.",
    ),
    SuiteEntry(
        "box_density",
        "rho = m/(l*w*h)",
        {"m": (1, 10), "l": (0.1, 1), "w": (0.1, 1), "h": (0.1, 1)},
        {"m": (0.5, 100), "l": (0.05, 5), "w": (0.05, 5), "h": (0.05, 5)},
        500,
        "Density [kg/m^3] of a box of mass m [kg] and sides l, w, h [m].",
    ),
    SuiteEntry(
        "average_speed",
        "v = d/t",
        {"d": (1, 100), "t": (1, 10)},
        {"d": (0, 1000), "t": (0.5, 100)},
        500,
        "Average speed [m/s] over distance d [m] in time t [s].",
    ),
    SuiteEntry(
        "trapezoid_area",
        "A = (a + b)*h/2",
        _same("a b h", (1, 10)),
        _same("a b h", (0.1, 100)),
        500,
        "Area of a trapezoid with parallel sides a, b and height h.",
    ),
    SuiteEntry(
        "mean_of_three",
        "y = (a + b + c)/3",
        _same("a b c", (0, 10)),
        _same("a b c", (-100, 100)),
        500,
        "Arithmetic mean of three inputs: a sum scaled by a constant.",
    ),
    SuiteEntry(
        "net_work",
        "W = (F - f)*d",
        {"F": (10, 100), "f": (0, 10), "d": (0, 10)},
        {"F": (0, 1000), "f": (0, 100), "d": (0, 100)},
        500,
        "Work [J] done by force F against friction f [N] over distance d [m].",
    ),
    SuiteEntry(
        "product_with_distractors",
        "y = x0*x2",
        {f"x{i}": (-2, 2) for i in range(6)},
        {f"x{i}": (-8, 8) for i in range(6)},
        500,
        "A product of two of six inputs; x1, x3, x4 and x5 are irrelevant.",
    ),
    SuiteEntry(
        "triple_product",
        "t = x*y*z",
        _same("x y z", (-3, 3)),
        _same("x y z", (-12, 12)),
        500,
        "Product of three inputs of both signs.",
    ),
    SuiteEntry(
        "newton_gravitation",
        "F = 6.674e-11*m1*m2/r**2",
        {"m1": (1e3, 1e4), "m2": (1e3, 1e4), "r": (1, 10)},
        {"m1": (1e2, 1e5), "m2": (1e2, 1e5), "r": (0.5, 100)},
        500,
        "Gravitational force [N] between masses [kg] at distance r [m]; a tiny constant.",
    ),
    SuiteEntry(
        "ideal_gas_pressure",
        "P = 8.314*n*T/V",
        {"n": (0.1, 2), "T": (250, 400), "V": (0.01, 0.1)},
        {"n": (0.01, 20), "T": (50, 2000), "V": (0.001, 1)},
        500,
        "Pressure [Pa] of n [mol] of ideal gas at temperature T [K] in volume V [m^3].",
    ),
    # Rational formulas, constants with pi, offsets and powers (textbook physics, chemistry
    # and engineering). The last few are beyond the search's space and must be reported as
    # not exact.
    SuiteEntry(
        "carnot_efficiency",
        "eta = 1 - Tc/Th",
        {"Tc": (250, 300), "Th": (400, 600)},
        {"Tc": (150, 350), "Th": (360, 1200)},
        500,
        "Efficiency of a reversible heat engine between reservoirs at Th and Tc [K].",
    ),
    SuiteEntry(
        "refrigerator_performance",
        "COP = Tc/(Th - Tc)",
        {"Tc": (250, 270), "Th": (300, 320)},
        {"Tc": (230, 280), "Th": (295, 350)},
        500,
        "Coefficient of performance of a reversible refrigerator between Tc and Th [K].",
    ),
    SuiteEntry(
        "reflection_coefficient",
        "Gamma = (Z - Z0)/(Z + Z0)",
        {"Z": (10, 100), "Z0": (40, 60)},
        {"Z": (1, 300), "Z0": (30, 80)},
        500,
        "Voltage reflection coefficient of a load Z on a line of impedance Z0 [ohm].",
    ),
    SuiteEntry(
        "voltage_divider",
        "Vout = V*R2/(R1 + R2)",
        {"V": (1, 12), "R1": (100, 1000), "R2": (100, 1000)},
        {"V": (0.5, 24), "R1": (10, 5000), "R2": (10, 5000)},
        500,
        "Output of an unloaded divider of resistors R1, R2 [ohm] across V [V].",
    ),
    SuiteEntry(
        "michaelis_menten",
        "v = Vmax*S/(Km + S)",
        {"Vmax": (1, 10), "S": (0.1, 5), "Km": (0.5, 2)},
        {"Vmax": (0.5, 20), "S": (0.01, 20), "Km": (0.2, 5)},
        500,
        "Rate of an enzyme reaction at substrate concentration S with constants Vmax, Km.",
    ),
    SuiteEntry(
        "doppler_shift",
        "f_obs = f*(c + vo)/(c - vs)",
        {"f": (200, 800), "c": (330, 350), "vo": (0, 30), "vs": (0, 30)},
        {"f": (100, 2000), "c": (300, 360), "vo": (0, 60), "vs": (0, 60)},
        500,
        "Frequency heard by an observer moving at vo towards a source moving at vs towards it.",
    ),
    SuiteEntry(
        "thin_lens_image",
        "di = f*do/(do - f)",
        {"f": (0.05, 0.2), "do": (0.5, 2)},
        {"f": (0.02, 0.3), "do": (0.35, 5)},
        500,
        "Image distance of an object at do [m] before a thin lens of focal length f [m].",
    ),
    SuiteEntry(
        "magnification",
        "m = di/(di - f)",
        {"di": (0.5, 2), "f": (0.05, 0.3)},
        {"di": (0.4, 5), "f": (0.02, 0.35)},
        500,
        "Magnification of a thin lens (as a ratio) for image distance di and focal length f.",
    ),
    SuiteEntry(
        "reduced_mass",
        "mu = m1*m2/(m1 + m2)",
        {"m1": (1, 10), "m2": (1, 10)},
        {"m1": (0.1, 50), "m2": (0.1, 50)},
        500,
        "Reduced mass of a two-body system [kg].",
    ),
    SuiteEntry(
        "langmuir_coverage",
        "theta = K*P/(1 + K*P)",
        {"K": (0.5, 2), "P": (0.5, 5)},
        {"K": (0.1, 5), "P": (0.05, 20)},
        500,
        "Fraction of an adsorbing surface covered at pressure P, equilibrium constant K.",
    ),
    SuiteEntry(
        "gravitational_energy_change",
        "dU = M*m*(1/r1 - 1/r2)",
        {"M": (1, 5), "m": (1, 5), "r1": (1, 2), "r2": (3, 6)},
        {"M": (0.5, 10), "m": (0.5, 10), "r1": (0.5, 2.5), "r2": (2.6, 12)},
        500,
        "Work to lift m from r1 to r2 around a mass M (units where G = 1).",
    ),
    SuiteEntry(
        "coulomb_force",
        "F = 0.07957747154594767*q1*q2/(eps*r**2)",
        {"q1": (1, 5), "q2": (1, 5), "eps": (1, 3), "r": (1, 3)},
        {"q1": (0.5, 10), "q2": (0.5, 10), "eps": (0.5, 6), "r": (0.5, 6)},
        500,
        "Force between charges q1, q2 at distance r in a medium of permittivity eps: the "
        "constant is 1/(4*pi), written as a float (in a formula, pi is a name like any other).",
    ),
    SuiteEntry(
        "wire_field",
        "H = 0.15915494309189535*I/r",
        {"I": (1, 10), "r": (0.01, 0.1)},
        {"I": (0.1, 50), "r": (0.002, 0.5)},
        500,
        "Magnetic field strength [A/m] at distance r [m] from a long wire carrying I [A]; "
        "the constant is 1/(2*pi).",
    ),
    SuiteEntry(
        "pendulum_period_squared",
        "T2 = 39.47841760435743*L/g",
        {"L": (0.2, 2), "g": (9, 10)},
        {"L": (0.05, 10), "g": (1, 25)},
        500,
        "Square of the small-angle period of a pendulum of length L [m] in gravity g; the "
        "constant is 4*pi**2.",
    ),
    SuiteEntry(
        "cylinder_density",
        "rho = 0.3183098861837907*m/(r**2*h)",
        {"m": (1, 10), "r": (0.5, 2), "h": (1, 5)},
        {"m": (0.1, 50), "r": (0.1, 5), "h": (0.2, 20)},
        500,
        "Density of a solid cylinder of mass m, radius r and height h; the constant is 1/pi.",
    ),
    SuiteEntry(
        "sphere_inertia",
        "I = 2/5*m*r**2",
        {"m": (1, 10), "r": (0.1, 1)},
        {"m": (0.1, 50), "r": (0.01, 3)},
        500,
        "Moment of inertia of a solid sphere of mass m and radius r about a diameter.",
    ),
    SuiteEntry(
        "velocity_addition",
        "w = (u + v)/(1 + u*v)",
        {"u": (0.1, 0.6), "v": (0.1, 0.6)},
        {"u": (0.01, 0.95), "v": (0.01, 0.95)},
        500,
        "Relativistic addition of velocities (in units of c). A product inside the "
        "denominator's sum is beyond the search: it must be reported as not exact.",
    ),
    SuiteEntry(
        "stefan_boltzmann",
        "P = 5.670e-8*A*T**4",
        {"A": (0.5, 2), "T": (300, 600)},
        {"A": (0.1, 5), "T": (100, 1500)},
        500,
        "Power radiated by a black body of area A [m^2] at T [K]: a fourth power.",
    ),
    SuiteEntry(
        "centre_of_mass",
        "xc = (m1*x1 + m2*x2)/(m1 + m2)",
        {"m1": (1, 5), "x1": (0, 2), "m2": (1, 5), "x2": (3, 5)},
        {"m1": (0.5, 10), "x1": (-2, 2.5), "m2": (0.5, 10), "x2": (2.8, 8)},
        500,
        "Centre of mass of two point masses. A sum of products over a sum is beyond the "
        "search: it must be reported as not exact.",
    ),
    SuiteEntry(
        "hydrogen_transition",
        "E = 13.6*(1/n1**2 - 1/n2**2)",
        {"n1": (1, 2), "n2": (3, 5)},
        {"n1": (0.8, 2.5), "n2": (2.6, 8)},
        500,
        "Energy [eV] of a hydrogen transition (Bohr model, levels as real numbers). Squared "
        "reciprocals inside a sum are beyond the search: it must be reported as not exact.",
    ),
    SuiteEntry(
        "lensmaker_focal_length",
        "f = 1/((n - 1)*(1/R1 - 1/R2))",
        {"n": (1.4, 1.7), "R1": (0.1, 0.3), "R2": (0.5, 1)},
        {"n": (1.3, 2.4), "R1": (0.05, 0.45), "R2": (0.46, 3)},
        500,
        "Focal length of a thin lens of refractive index n with surface radii R1, R2 [m].",
    ),
    SuiteEntry(
        "mole_fraction",
        "x1 = n1/(n1 + n2 + n3)",
        {"n1": (0.5, 2), "n2": (0.5, 2), "n3": (0.5, 2)},
        {"n1": (0.1, 10), "n2": (0.1, 10), "n3": (0.1, 10)},
        500,
        "Mole fraction of the first of three components of a mixture.",
    ),
    SuiteEntry(
        "thermal_expansion",
        "L = L0*(1 + a*dT)",
        {"L0": (1, 10), "a": (0.01, 0.05), "dT": (10, 50)},
        {"L0": (0.5, 50), "a": (0.001, 0.1), "dT": (1, 150)},
        500,
        "Length of a rod of length L0 warmed by dT with expansion coefficient a.",
    ),
    SuiteEntry(
        "orbital_period_squared",
        "T2 = 39.47841760435743*a**3/M",
        {"a": (1, 5), "M": (1, 10)},
        {"a": (0.2, 20), "M": (0.1, 50)},
        500,
        "Kepler's third law with G = 1: the square of the period of an orbit of semi-major "
        "axis a around a mass M; the constant is 4*pi**2.",
    ),
    SuiteEntry(
        "bohr_energy",
        "E = m*q**4/(8*eps**2*h**2*n**2)",
        {"m": (1, 3), "q": (1, 2), "eps": (1, 2), "h": (1, 2), "n": (1, 4)},
        {"m": (0.5, 6), "q": (0.5, 3), "eps": (0.5, 3), "h": (0.5, 3), "n": (0.5, 8)},
        500,
        "Binding energy of level n of a hydrogen-like atom in the Bohr model (electron mass "
        "m, charge q, permittivity eps, Planck constant h as inputs).",
    ),
    SuiteEntry(
        "separation_force",
        "F = m/((x1 - x2)**2 + (y1 - y2)**2)",
        {"m": (1, 5), "x1": (0, 1), "x2": (2, 3), "y1": (0, 1), "y2": (2, 3)},
        {"m": (0.5, 10), "x1": (-1, 1.2), "x2": (1.8, 5), "y1": (-1, 1.2), "y2": (1.8, 5)},
        500,
        "Inverse-square attraction between points (x1, y1) and (x2, y2). A sum of squared "
        "differences in the denominator is beyond the search: it must be reported as not exact.",
    ),
    SuiteEntry(
        "heat_conduction",
        "Q = k*A*(T1 - T2)/L",
        {"k": (0.5, 2), "A": (1, 3), "T1": (350, 400), "T2": (280, 320), "L": (0.1, 0.5)},
        {"k": (0.1, 5), "A": (0.5, 8), "T1": (330, 600), "T2": (250, 325), "L": (0.02, 2)},
        500,
        "Heat flow through a slab of conductivity k, area A and thickness L between T1 and T2.",
    ),
    SuiteEntry(
        "series_parallel_resistance",
        "R = R1 + R2*R3/(R2 + R3)",
        {"R1": (10, 100), "R2": (10, 100), "R3": (10, 100)},
        {"R1": (1, 500), "R2": (1, 500), "R3": (1, 500)},
        500,
        "A resistor in series with two in parallel. A sum with a ratio in it is beyond the "
        "search: it must be reported as not exact.",
    ),
    SuiteEntry(
        "simple_interest",
        "A = P*(1 + r*t)",
        {"P": (100, 1000), "r": (0.01, 0.1), "t": (1, 10)},
        {"P": (10, 5000), "r": (0.001, 0.3), "t": (0.1, 40)},
        500,
        "Amount owed on a principal P at simple interest rate r after t years.",
    ),
    SuiteEntry(
        "present_value",
        "PV = F/(1 + r)",
        {"F": (100, 1000), "r": (0.01, 0.2)},
        {"F": (10, 5000), "r": (0.001, 0.6)},
        500,
        "Present value of a payment F due in one period at interest rate r.",
    ),
    SuiteEntry(
        "cantilever_deflection",
        "d = F*L**3/(3*E*I)",
        {"F": (10, 100), "L": (1, 3), "E": (100, 300), "I": (0.5, 2)},
        {"F": (1, 500), "L": (0.3, 8), "E": (20, 1000), "I": (0.1, 6)},
        500,
        "Tip deflection of a cantilever of length L, modulus E and second moment I under a "
        "load F at its tip.",
    ),
    SuiteEntry(
        "rc_cutoff_frequency",
        "f = 0.15915494309189535/(R*C)",
        {"R": (100, 1000), "C": (0.001, 0.01)},
        {"R": (10, 5000), "C": (0.0001, 0.05)},
        500,
        "Cut-off frequency [Hz] of an RC filter; the constant is 1/(2*pi).",
    ),
    SuiteEntry(
        "poiseuille_flow",
        "Q = 0.39269908169872414*r**4*dP/(mu*L)",
        {"r": (0.5, 2), "dP": (10, 100), "mu": (1, 5), "L": (1, 10)},
        {"r": (0.1, 5), "dP": (1, 500), "mu": (0.2, 20), "L": (0.2, 50)},
        500,
        "Flow through a pipe of radius r and length L under a pressure drop dP, fluid "
        "viscosity mu; the constant is pi/8.",
    ),
    SuiteEntry(
        "mixing_temperature",
        "T = (m1*T1 + m2*T2)/(m1 + m2)",
        {"m1": (1, 5), "T1": (280, 300), "m2": (1, 5), "T2": (330, 370)},
        {"m1": (0.2, 20), "T1": (250, 305), "m2": (0.2, 20), "T2": (320, 450)},
        500,
        "Final temperature of two masses of the same liquid mixed at T1 and T2.",
    ),
    # Beyond arithmetic: roots, real powers, exponentials, logarithms, sines and cosines.
    SuiteEntry(
        "speed_from_components",
        "v = sqrt(vx**2 + vy**2)",
        {"vx": (1, 5), "vy": (1, 5)},
        {"vx": (0.2, 12), "vy": (0.2, 12)},
        500,
        "Speed of a body moving with velocity components vx and vy (Pythagoras).",
    ),
    SuiteEntry(
        "free_fall_speed",
        "v = sqrt(2*g*h)",
        {"g": (1, 10), "h": (1, 20)},
        {"g": (0.5, 25), "h": (0.2, 100)},
        500,
        "Speed after falling from rest through a height h in a uniform field g.",
    ),
    SuiteEntry(
        "pendulum_period",
        "T = 6.283185307179586*sqrt(L/g)",
        {"L": (0.2, 2), "g": (1, 10)},
        {"L": (0.05, 10), "g": (0.5, 25)},
        500,
        "Small-angle period of a simple pendulum of length L: the constant is 2*pi.",
    ),
    SuiteEntry(
        "kepler_third_law",
        "T = a**(3/2)/sqrt(M)",
        {"a": (1, 5), "M": (1, 10)},
        {"a": (0.3, 20), "M": (0.3, 40)},
        500,
        "Orbital period against semi-major axis a and central mass M, in units where 2*pi "
        "and the gravitational constant are 1: a real power.",
    ),
    SuiteEntry(
        "relativistic_mass",
        "m = m0/sqrt(1 - v**2/c**2)",
        {"m0": (1, 5), "v": (0.1, 0.6), "c": (1, 1.5)},
        {"m0": (0.5, 10), "v": (0.02, 0.9), "c": (0.95, 3)},
        500,
        "Mass of a body of rest mass m0 moving at speed v, with c the speed of light.",
    ),
    SuiteEntry(
        "radioactive_decay",
        "N = N0*exp(-t/tau)",
        {"N0": (100, 1000), "t": (0, 5), "tau": (1, 3)},
        {"N0": (20, 5000), "t": (0, 10), "tau": (0.5, 6)},
        500,
        "Nuclei left after a time t from N0, for a mean lifetime tau.",
    ),
    SuiteEntry(
        "boltzmann_factor",
        "p = exp(-E/T)",
        {"E": (1, 5), "T": (1, 5)},
        {"E": (0.2, 10), "T": (0.5, 12)},
        500,
        "Relative occupation of a level of energy E at temperature T (energies in units of k).",
    ),
    SuiteEntry(
        "normal_density",
        "p = 0.3989422804014327*exp(-x**2/2)",
        {"x": (-2, 2)},
        {"x": (-4, 4)},
        500,
        "Standard normal density: the constant is 1/sqrt(2*pi).",
    ),
    SuiteEntry(
        "isothermal_work",
        "W = 8.314*n*T*log(V2/V1)",
        {"n": (1, 3), "T": (250, 350), "V1": (1, 2), "V2": (3, 6)},
        {"n": (0.2, 8), "T": (200, 500), "V1": (0.5, 2.5), "V2": (2.6, 15)},
        500,
        "Work done by n moles of ideal gas expanding at temperature T from V1 to V2.",
    ),
    SuiteEntry(
        "pendulum_height",
        "h = L*(1 - cos(theta))",
        {"L": (0.5, 2), "theta": (0.1, 1.2)},
        {"L": (0.1, 6), "theta": (0.02, 1.5)},
        500,
        "Height gained by a pendulum bob of length L swung out by an angle theta.",
    ),
    SuiteEntry(
        "incline_force",
        "F = 9.81*m*sin(theta)",
        {"m": (1, 10), "theta": (0.1, 1)},
        {"m": (0.2, 40), "theta": (0.02, 1.5)},
        500,
        "Component of the weight of a mass m along a slope inclined at theta.",
    ),
    SuiteEntry(
        "malus_law",
        "I = I0*cos(theta)**2",
        {"I0": (1, 10), "theta": (0, 1.2)},
        {"I0": (0.2, 40), "theta": (-0.3, 1.5)},
        500,
        "Intensity of polarised light of intensity I0 behind a polariser at an angle theta.",
    ),
    SuiteEntry(
        "projectile_range",
        "R = 2*v**2*sin(theta)*cos(theta)/g",
        {"v": (5, 20), "theta": (0.2, 1.2), "g": (5, 10)},
        {"v": (1, 50), "theta": (0.05, 1.5), "g": (1, 25)},
        500,
        "Range of a projectile launched at speed v and angle theta on flat ground (sin(2*theta) "
        "written as 2*sin(theta)*cos(theta)).",
    ),
    SuiteEntry(
        "phase_difference",
        "c = cos(a - b)",
        {"a": (0, 2), "b": (0, 2)},
        {"a": (-1, 3), "b": (-1, 3)},
        500,
        "Cosine of the phase difference of two waves with phases a and b.",
    ),
    SuiteEntry(
        "law_of_cosines",
        "c = sqrt(a**2 + b**2 - 2*a*b*cos(C))",
        {"a": (1, 5), "b": (1, 5), "C": (0.3, 2.5)},
        {"a": (0.2, 12), "b": (0.2, 12), "C": (0.1, 3)},
        500,
        "Third side of a triangle with sides a, b and the angle C between them. A root of a "
        "sum with a cosine in it is beyond the search: it must be reported as not exact.",
    ),
    SuiteEntry(
        "gumbel_survival",
        "S = exp(-exp(x))",
        {"x": (-2, 1)},
        {"x": (-3, 2)},
        500,
        "Survival function of the Gumbel distribution of minima. A nested exponential is "
        "beyond the search: it must be reported as not exact.",
    ),
    SuiteEntry(
        "sine",
        "y = sin(x)",
        {"x": (-3, 3)},
        {"x": (-10, 10)},
        500,
        "Not arithmetic: a sine of the input, within reach of the stacks that read functions of "
        "single inputs.",
    ),
    SuiteEntry(
        "capacitor_charge",
        "V = V0*(1 - exp(-t/(R*C)))",
        {"V0": (1, 10), "t": (0.1, 3), "R": (1, 3), "C": (0.5, 2)},
        {"V0": (0.2, 40), "t": (0.02, 8), "R": (0.5, 5), "C": (0.2, 4)},
        500,
        "Voltage across a capacitor C charged through a resistor R from a source V0, a time t "
        "after the switch closes.",
    ),
    SuiteEntry(
        "inductor_current",
        "I = V*(1 - exp(-R*t/L))/R",
        {"V": (1, 10), "R": (1, 5), "t": (0.05, 2), "L": (0.5, 3)},
        {"V": (0.2, 40), "R": (0.5, 8), "t": (0.01, 5), "L": (0.2, 6)},
        500,
        "Current through an inductor L and a resistor R in series, a time t after a voltage V "
        "is applied.",
    ),
    SuiteEntry(
        "newton_cooling",
        "T = Ta + (T0 - Ta)*exp(-k*t)",
        {"Ta": (280, 300), "T0": (320, 370), "k": (0.1, 1), "t": (0, 5)},
        {"Ta": (260, 310), "T0": (310, 400), "k": (0.05, 2), "t": (0, 10)},
        500,
        "Temperature of a body at T0 cooling towards its surroundings at Ta with rate constant k.",
    ),
    SuiteEntry(
        "oscillator_position",
        "x = A*cos(w*t)",
        {"A": (0.5, 2), "w": (1, 3), "t": (0, 2)},
        {"A": (0.1, 5), "w": (0.5, 4), "t": (0, 3)},
        500,
        "Position of a harmonic oscillator of amplitude A and angular frequency w released "
        "at rest.",
    ),
    SuiteEntry(
        "ac_voltage",
        "v = V0*sin(6.283185307179586*f*t)",
        {"V0": (1, 10), "f": (0.5, 2), "t": (0, 0.5)},
        {"V0": (0.2, 40), "f": (0.2, 3), "t": (0, 1)},
        500,
        "Instantaneous voltage of an alternating source of peak V0 and frequency f.",
    ),
    SuiteEntry(
        "cyclotron_position",
        "x = r*cos(q*B*t/m)",
        {"r": (1, 3), "q": (1, 2), "B": (0.5, 1.5), "t": (0, 2), "m": (1, 3)},
        {"r": (0.2, 8), "q": (0.5, 3), "B": (0.2, 2), "t": (0, 3), "m": (0.5, 4)},
        500,
        "Coordinate of a charge q of mass m circling in a magnetic field B on a circle of "
        "radius r.",
    ),
    SuiteEntry(
        "beer_lambert",
        "I = I0*exp(-eps*c*l)",
        {"I0": (10, 100), "eps": (0.1, 1), "c": (0.1, 2), "l": (0.5, 2)},
        {"I0": (2, 400), "eps": (0.05, 2), "c": (0.02, 3), "l": (0.2, 3)},
        500,
        "Light of intensity I0 left after a path l through a solution of concentration c and "
        "molar absorptivity eps.",
    ),
    SuiteEntry(
        "decay_activity",
        "A = N0*exp(-t/tau)/tau",
        {"N0": (100, 1000), "t": (0, 5), "tau": (1, 3)},
        {"N0": (20, 5000), "t": (0, 10), "tau": (0.5, 6)},
        500,
        "Decays per unit time of a sample of N0 nuclei of mean lifetime tau, a time t later.",
    ),
    SuiteEntry(
        "arrhenius_rate",
        "k = A*exp(-Ea/(8.314*T))",
        {"A": (1, 10), "Ea": (2000, 8000), "T": (250, 400)},
        {"A": (0.2, 40), "Ea": (1000, 12000), "T": (200, 600)},
        500,
        "Rate constant of a reaction of activation energy Ea (J/mol) at temperature T, with "
        "the gas constant 8.314 J/(mol K).",
    ),
    SuiteEntry(
        "logistic_growth",
        "N = K/(1 + exp(-r*t))",
        {"K": (500, 1000), "r": (0.2, 1), "t": (-3, 3)},
        {"K": (100, 5000), "r": (0.1, 1.5), "t": (-6, 6)},
        500,
        "Population of a logistic growth with carrying capacity K and rate r, a time t after "
        "it reached K/2.",
    ),
    SuiteEntry(
        "photon_occupation",
        "n = 1/(exp(E/T) - 1)",
        {"E": (1, 3), "T": (1, 3)},
        {"E": (0.5, 6), "T": (0.5, 6)},
        500,
        "Mean number of photons in a mode of energy E at temperature T (energies in units of k).",
    ),
    SuiteEntry(
        "wave_intensity_profile",
        "I = I0*cos(k*x)**2",
        {"I0": (1, 10), "k": (0.5, 1.5), "x": (0, 1)},
        {"I0": (0.2, 40), "k": (0.2, 2), "x": (0, 1.5)},
        500,
        "Intensity of a standing wave of wavenumber k at position x: a square of a cosine of "
        "a product, I0*(1 + cos(2*k*x))/2 to the stacks of functions of products.",
    ),
    SuiteEntry(
        "damped_oscillation",
        "x = A*exp(-b*t)*cos(w*t)",
        {"A": (0.5, 2), "b": (0.1, 0.5), "w": (1, 3), "t": (0, 3)},
        {"A": (0.1, 5), "b": (0.05, 1), "w": (0.5, 4), "t": (0, 5)},
        500,
        "Position of a damped oscillator: two functions of products in one term, a product "
        "the screen on log|y| reaches.",
    ),
    SuiteEntry(
        "travelling_wave",
        "y = A*sin(k*x - w*t)",
        {"A": (0.5, 2), "k": (0.5, 1.5), "x": (0, 2), "w": (0.5, 1.5), "t": (0, 2)},
        {"A": (0.1, 5), "k": (0.2, 2), "x": (0, 3), "w": (0.2, 2), "t": (0, 3)},
        500,
        "Displacement of a travelling wave: a function of a difference of two products, an "
        "argument the listed library holds on up to five inputs.",
    ),
    SuiteEntry(
        "ac_quadrature_voltage",
        "v = Vc*cos(w*t) + Vs*sin(w*t)",
        {"Vc": (1, 3), "Vs": (1, 3), "w": (1, 2), "t": (0, 3)},
        {"Vc": (0.2, 6), "Vs": (0.2, 6), "w": (0.5, 3), "t": (0, 5)},
        500,
        "Instantaneous voltage of a source written by its in-phase and quadrature amplitudes "
        "Vc and Vs at angular frequency w: a sine and a cosine of one argument in two terms.",
    ),
    SuiteEntry(
        "two_isotope_activity",
        "N = N1*exp(-t/tau1) + N2*exp(-t/tau2)",
        {"N1": (1, 3), "N2": (1, 3), "t": (0, 5), "tau1": (0.5, 1), "tau2": (2, 4)},
        {"N1": (0.2, 6), "N2": (0.2, 6), "t": (0, 8), "tau1": (0.3, 1.5), "tau2": (1.5, 6)},
        500,
        "Nuclei left in a mixture of two isotopes of mean lives tau1 and tau2, N1 and N2 at "
        "t = 0: two exponentials of groups that differ by one input.",
    ),
    SuiteEntry(
        "acoustic_beats",
        "p = A*(cos(w1*t) + cos(w2*t))",
        {"A": (1, 3), "w1": (1, 2), "w2": (2.5, 3.5), "t": (0, 3)},
        {"A": (0.2, 6), "w1": (0.5, 2.5), "w2": (2, 4), "t": (0, 4)},
        500,
        "Pressure of two tones of equal amplitude A and angular frequencies w1 and w2, heard "
        "together as beats.",
    ),
    SuiteEntry(
        "oscillator_from_initial_state",
        "x = x0*cos(w*t) + v0*sin(w*t)/w",
        {"x0": (0.1, 1), "v0": (0.1, 2), "w": (1, 3), "t": (0, 3)},
        {"x0": (0.05, 2), "v0": (0.05, 4), "w": (0.5, 4), "t": (0, 4)},
        500,
        "Position of an undamped oscillator of angular frequency w from its position x0 and "
        "velocity v0 at t = 0: a sine and a cosine of one argument, the sine times a ratio of "
        "two inputs.",
    ),
    SuiteEntry(
        "rocket_equation",
        "dv = ve*log(m0/m1)",
        {"ve": (1, 4), "m0": (5, 10), "m1": (1, 4)},
        {"ve": (0.5, 8), "m0": (4.5, 20), "m1": (0.5, 4.4)},
        500,
        "Speed a rocket of exhaust speed ve gains while its mass falls from m0 to m1 "
        "(Tsiolkovsky): a logarithm of a ratio times an input.",
    ),
    SuiteEntry(
        "nernst_potential",
        "E = 8.617e-5*T*log(c_out/c_in)",
        {"T": (280, 320), "c_out": (1, 10), "c_in": (1, 10)},
        {"T": (250, 400), "c_out": (0.5, 20), "c_in": (0.5, 20)},
        500,
        "Equilibrium potential in volts across a membrane for a singly charged ion at "
        "temperature T, with concentrations c_out and c_in outside and inside (k/e in V/K).",
    ),
    SuiteEntry(
        "maxwell_speed_density",
        "f = 0.7978845608028654*v**2*exp(-v**2/2)",
        {"v": (0.2, 3)},
        {"v": (0.05, 4.5)},
        500,
        "Maxwell-Boltzmann density of molecular speeds v, in units of sqrt(k*T/m): its "
        "constant is sqrt(2/pi).",
    ),
    SuiteEntry(
        "spectral_efficiency",
        "eta = log(1 + S/N)",
        {"S": (1, 10), "N": (0.5, 2)},
        {"S": (0.2, 30), "N": (0.3, 4)},
        500,
        "Largest information rate per unit bandwidth, in nats per second per hertz, of a "
        "channel with signal power S and noise power N (Shannon): a logarithm of a sum.",
    ),
    SuiteEntry(
        "channel_capacity",
        "C = B*log(1 + S/N)",
        {"B": (1, 5), "S": (1, 10), "N": (0.5, 2)},
        {"B": (0.2, 10), "S": (0.2, 30), "N": (0.3, 4)},
        500,
        "Capacity in nats per second of a channel of bandwidth B with signal power S and noise "
        "power N (Shannon). A logarithm of a sum times an input is beyond the stacks: it must "
        "be reported as not exact.",
    ),
]

#: The suite, by name.
SUITE: dict[str, SuiteEntry] = {entry.name: entry for entry in _ENTRIES}


def list_suite() -> list[str]:
    """Names of the suite's entries, in registry order.

    Returns
    -------
    list of str

    Examples
    --------
    >>> from nalu_sr.datasets import list_suite
    >>> "ohms_law" in list_suite()
    True
    """
    return list(SUITE)


def _entry(name: str) -> SuiteEntry:
    if name in SUITE:
        return SUITE[name]
    close = difflib.get_close_matches(str(name), list(SUITE), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"unknown suite entry {name!r}.{hint} Valid names: {', '.join(list_suite())}.")


@functools.cache
def truth(name: str) -> sympy.Eq:
    """The ground-truth equation of a suite entry.

    Parameters
    ----------
    name : str
        Entry name (see :func:`list_suite`).

    Returns
    -------
    sympy.Eq
        ``target = expression`` with real symbols.

    Raises
    ------
    ValueError
        If ``name`` is not in the suite; the message suggests the closest name.

    Examples
    --------
    >>> from nalu_sr.datasets.suite import truth
    >>> truth("ohms_law")
    Eq(V, I*R)
    """
    return parse_formula(_entry(name).formula)


def _streams(name: str, seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Independent generators for an entry's training and wide tables.

    The entry name enters the seed (via CRC-32, stable across runs) so that entries sharing
    a seed do not share their draws.
    """
    children = np.random.SeedSequence([seed, zlib.crc32(name.encode())]).spawn(2)
    return np.random.default_rng(children[0]), np.random.default_rng(children[1])


def _generate(entry: SuiteEntry, wide: bool, noise: float, seed: int) -> pd.DataFrame:
    train_rng, wide_rng = _streams(entry.name, seed)
    if wide:
        return make_formula_dataset(
            entry.formula, entry.wide_ranges, entry.n_wide_samples, random_state=wide_rng
        )
    return make_formula_dataset(
        entry.formula, entry.ranges, entry.n_samples, noise=noise, random_state=train_rng
    )


# pandas < 3 parses floats up to one ulp off unless asked for round_trip; pandas 3 is exact
# by default and deprecates the option.
_EXACT_FLOATS = {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {}


def _read_csv(path: Path | io.StringIO) -> pd.DataFrame:
    return pd.read_csv(path, **_EXACT_FLOATS)


def load_suite_entry(
    name: str, wide: bool = False, directory: str | os.PathLike | None = None
) -> pd.DataFrame:
    """Load a suite entry's training or extrapolation table.

    Parameters
    ----------
    name : str
        Entry name (see :func:`list_suite`).
    wide : bool, default=False
        Load the extrapolation table (``<name>_wide.csv``, drawn from the wide ranges) instead
        of the training table.
    directory : path-like or None, default=None
        Folder holding the CSV files. ``None`` uses the repository's ``datasets/`` folder and,
        when the file is not there (an installed package), generates the table with the
        shipped seed, which gives the same numbers.

    Returns
    -------
    pandas.DataFrame
        Input columns, then the target column.

    Raises
    ------
    ValueError
        If ``name`` is unknown, or the file's columns are not the entry's.
    FileNotFoundError
        If an explicit ``directory`` lacks the file.

    Examples
    --------
    >>> from nalu_sr.datasets import load_suite_entry
    >>> list(load_suite_entry("ohms_law").columns)
    ['I', 'R', 'V']
    """
    entry = _entry(name)
    folder = DATA_DIR if directory is None else Path(directory)
    path = folder / f"{name}{'_wide' if wide else ''}.csv"
    if not path.is_file():
        if directory is not None:
            raise FileNotFoundError(
                f"{path} does not exist; write it with write_suite_entry({name!r}, {str(folder)!r})"
                " or pass directory=None to use the shipped tables."
            )
        return _generate(entry, wide, noise=0.0, seed=DEFAULT_SEED)
    frame = _read_csv(path)
    expected = [*entry.inputs, entry.target]
    if list(frame.columns) != expected:
        raise ValueError(
            f"{path} has columns {list(frame.columns)}, but entry {name!r} expects {expected}; "
            "regenerate it with write_suite_entry(..., overwrite=True)."
        )
    return frame


def _csv_text(frame: pd.DataFrame) -> str:
    text = frame.to_csv(index=False, float_format=_FLOAT_FORMAT, lineterminator="\n")
    back = _read_csv(io.StringIO(text))
    if not np.array_equal(back.to_numpy(), frame.to_numpy()):
        raise RuntimeError("a table did not survive a CSV round trip; no file was written.")
    return text


def _intervals_json(ranges: Mapping[str, object]) -> dict[str, list[list[float]]]:
    return {k: [list(iv) for iv in v] for k, v in check_ranges(ranges).items()}


def _manifest(entry: SuiteEntry, noise: float, seed: int) -> dict[str, object]:
    equation = parse_formula(entry.formula)
    used = {s.name for s in equation.rhs.free_symbols}
    return {
        "name": entry.name,
        "description": entry.description,
        "formula": entry.formula,
        "latex": sympy.latex(equation),
        "target": entry.target,
        "inputs": list(entry.inputs),
        "relevant_inputs": [name for name in entry.inputs if name in used],
        "arithmetic": entry.is_arithmetic,
        "ranges": _intervals_json(entry.ranges),
        "wide_ranges": _intervals_json(entry.wide_ranges),
        "n_samples": entry.n_samples,
        "n_wide_samples": entry.n_wide_samples,
        "noise": noise,
        "noise_applies_to": "training table only; relative to the target's RMS",
        "seed": seed,
        "streams": "numpy SeedSequence([seed, crc32(name)]).spawn(2): training, wide",
        "files": {"train": f"{entry.name}.csv", "wide": f"{entry.name}_wide.csv"},
    }


def _refuse_existing(paths: Sequence[Path]) -> None:
    existing = [str(p) for p in paths if p.exists()]
    if existing:
        shown = ", ".join(existing[:3]) + (
            f" and {len(existing) - 3} more" if len(existing) > 3 else ""
        )
        raise FileExistsError(
            f"refusing to overwrite {shown}; pass overwrite=True "
            "(--overwrite on the command line) to replace them."
        )


def write_suite_entry(
    name: str,
    out_dir: str | os.PathLike,
    noise: float = 0.0,
    random_state: int = DEFAULT_SEED,
    overwrite: bool = False,
) -> list[Path]:
    """Write a suite entry's training table, extrapolation table and manifest.

    Parameters
    ----------
    name : str
        Entry name (see :func:`list_suite`).
    out_dir : path-like
        Destination folder, created if missing.
    noise : float, default=0.0
        Gaussian noise on the training target, as a fraction of its RMS (see
        :func:`~.formulas.make_formula_dataset`). The extrapolation table is always exact.
    random_state : int, default=0
        Non-negative seed; recorded in the manifest.
    overwrite : bool, default=False
        Replace existing files. When false and any of the three files exists, nothing is
        written.

    Returns
    -------
    list of pathlib.Path
        ``<name>.csv``, ``<name>_wide.csv`` and ``<name>.json``.

    Raises
    ------
    ValueError
        If ``name`` is unknown or ``random_state`` is not a non-negative int.
    FileExistsError
        If a file exists and ``overwrite`` is false.
    """
    entry = _entry(name)
    if isinstance(random_state, bool) or not isinstance(random_state, (int, np.integer)):
        raise ValueError(f"random_state must be a non-negative int seed, got {random_state!r}.")
    if random_state < 0:
        raise ValueError(f"random_state must be a non-negative int seed, got {random_state}.")
    folder = Path(out_dir)
    paths = [folder / f"{name}.csv", folder / f"{name}_wide.csv", folder / f"{name}.json"]
    if not overwrite:
        _refuse_existing(paths)
    train_text = _csv_text(_generate(entry, False, noise, int(random_state)))
    wide_text = _csv_text(_generate(entry, True, noise, int(random_state)))
    manifest = json.dumps(_manifest(entry, noise, int(random_state)), indent=2) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    for path, text in zip(paths, (train_text, wide_text, manifest)):
        write_text_atomic(path, text, overwrite=True, mode=_READABLE)
    return paths


def _format_union(intervals: Sequence[tuple[float, float]]) -> str:
    return " ∪ ".join(f"[{low:g}, {high:g}]" for low, high in intervals)


def _format_ranges(ranges: Mapping[str, object]) -> str:
    """Ranges for a table cell, inputs sharing a range grouped: ``x0, …, x99 ∈ [1, 2]``."""
    groups: dict[str, list[str]] = {}
    for var, intervals in check_ranges(ranges).items():
        groups.setdefault(_format_union(intervals), []).append(var)
    cells = []
    for union, names in groups.items():
        listed = ", ".join(names) if len(names) <= 4 else f"{names[0]}, …, {names[-1]}"
        cells.append(f"{listed} ∈ {union}")
    return "; ".join(cells)


_README_HEAD = """\
# The formula suite

Ground-truth formulas with tables to fit and tables to extrapolate to. Generated by
`nalu_sr.datasets.suite`; do not edit by hand. Regenerate everything, byte for byte, with

    python -m nalu_sr.datasets.suite datasets/ --overwrite

(add `--noise 0.01 --seed 1` for a noisy variant in another folder) or, from Python,
`nalu_sr.datasets.suite.write_suite("datasets/", overwrite=True)`.

For each entry `<name>`:

- `<name>.csv`: training table, inputs drawn uniformly from the training ranges;
- `<name>_wide.csv`: extrapolation table, inputs drawn uniformly from the wide ranges,
  which contain the training ranges and reach beyond them;
- `<name>.json`: manifest with the formula, target, ranges, row counts, noise and seed.

Columns are the inputs, then the target. Floats carry 17 significant digits, so the numbers
read back are exactly the generated ones (with pandas 3, or `float_precision="round_trip"` on
pandas 2, or `nalu_sr.datasets.load_suite_entry`) and the target is exactly the formula
evaluated on the stored inputs. Shipped tables are noise-free, seed {seed}. A union of
intervals (`∪`) is sampled uniformly over its total length. `rows` is training / wide.

| name | formula | training ranges | wide ranges | rows |
|---|---|---|---|---|
"""


def _readme(seed: int) -> str:
    rows = []
    for entry in SUITE.values():
        formula = f"`{entry.formula}`" if len(entry.formula) <= 60 else entry.description
        rows.append(
            f"| `{entry.name}` | {formula} | {_format_ranges(entry.ranges)} | "
            f"{_format_ranges(entry.wide_ranges)} | {entry.n_samples} / {entry.n_wide_samples} |"
        )
    return _README_HEAD.format(seed=seed) + "\n".join(rows) + "\n"


def write_suite(
    out_dir: str | os.PathLike,
    noise: float = 0.0,
    random_state: int = DEFAULT_SEED,
    overwrite: bool = False,
) -> list[Path]:
    """Write every suite entry (see :func:`write_suite_entry`) and a ``README.md`` table.

    Parameters
    ----------
    out_dir : path-like
        Destination folder, created if missing.
    noise : float, default=0.0
        Relative noise on the training targets.
    random_state : int, default=0
        Seed shared by all entries (each entry mixes in its name).
    overwrite : bool, default=False
        Replace existing files; when false and any file exists, nothing is written.

    Returns
    -------
    list of pathlib.Path
        Every file written, the README last.
    """
    folder = Path(out_dir)
    if not overwrite:
        _refuse_existing(
            [folder / "README.md"]
            + [folder / f"{n}{s}" for n in SUITE for s in (".csv", "_wide.csv", ".json")]
        )
    written = []
    for name in SUITE:
        written += write_suite_entry(name, folder, noise, random_state, overwrite=True)
    readme = folder / "README.md"
    write_text_atomic(readme, _readme(random_state), overwrite=True, mode=_READABLE)
    return [*written, readme]


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: ``python -m nalu_sr.datasets.suite OUT_DIR [--overwrite]``."""
    parser = argparse.ArgumentParser(
        prog="python -m nalu_sr.datasets.suite",
        description="Write the formula suite's tables, manifests and README to a folder.",
    )
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--noise", type=float, default=0.0, help="relative noise on targets")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--overwrite", action="store_true", help="replace existing files")
    args = parser.parse_args(argv)
    try:
        paths = write_suite(args.out_dir, args.noise, args.seed, args.overwrite)
    except (FileExistsError, ValueError) as exc:
        parser.exit(1, f"error: {exc}\n")
    print(f"wrote {len(paths)} files to {args.out_dir}")


if __name__ == "__main__":
    main()
