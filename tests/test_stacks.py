"""The registry of stack kinds: what it offers on the data, the stage order its fields give, and
a new kind plugged in through the registry alone."""

import numpy as np
import pytest
import sympy
from torch import nn

from nalu_sr.search import find_formula
from nalu_sr.search.engine import TrainingSettings
from nalu_sr.search.runner import plan_stages
from nalu_sr.search.space import build_feature_table
from nalu_sr.search.stacks import (
    STACK_KINDS,
    Family,
    Place,
    Single,
    Space,
    StackKind,
    StageKey,
    architectures,
)
from nalu_sr.snapping import SnapEach, selected
from nalu_sr.structure import make_factor, make_term
from nalu_sr.symbolic import feature_symbols
from nalu_sr.units import NMU


def _space(X: np.ndarray, y: np.ndarray) -> Space:
    rows = np.arange(len(X))
    table = build_feature_table(X, feature_symbols([f"x{j}" for j in range(X.shape[1])]), rows)
    return Space(table, rows, y)


def test_every_kind_of_the_default_search_is_offered_on_positive_inputs():
    X = np.random.default_rng(0).uniform(1, 3, size=(60, 3))
    offered = [a.name for a in architectures(_space(X, X.sum(axis=1)))]
    assert offered == [
        "NAU",
        "NMU",
        "NPU",
        "NAU[1/x]",
        "NAU->NMU[2]",
        "NAU->NMU[3]",
        "NAU[x, 1/x]->NMU[2]",
        "NAU[x, 1/x]->NMU[3]",
        "NMU->NAU[2] single powers",
        "NMU->NAU[3] single powers",
        "NMU->NAU[2]",
        "NMU->NAU[3]",
        "NAU->NDU[2]",
        "NAU->NDU[3]",
        "(NMU->NAU)/NAU[2]",
        "(NMU->NAU)/NAU[3]",
        "P/Q",
        *(f"P/Q[x, sin({x}), cos({x})]" for x in ("x0", "x1", "x2")),
        "P/Q[x, sin, cos]",
        *(f"P/Q[x, exp({x})]" for x in ("x0", "x1", "x2")),
        "P/Q[x, exp]",
        *(f"P/Q[x, log({x})]" for x in ("x0", "x1", "x2")),
        "P/Q[x, log]",
        "f(u) listed",
        "m*f(u)*exp(v) listed",
        "f(u) + g(v) listed",
        "NAU[x, f(x)]",
        "NMU[x, sin, cos]",
        "NMU[x, exp]",
        "NMU[x, log]",
        "NMU[x, sin, cos]->NAU[2]",
        "NMU[x, sin, cos]->NAU[3]",
        "NMU[x, log]->NAU[2]",
        "NMU[x, log]->NAU[3]",
        "NAU[x, sin, cos]->NMU[2]",
        "NAU[x, sin, cos]->NMU[3]",
        "NAU[x, log]->NMU[2]",
        "NAU[x, log]->NMU[3]",
        "NMU*sin(NMU)",
        "NMU*cos(NMU)",
        "NMU*exp(NMU)",
        "NMU*log(NMU)",
        "NMU*sin(NAU->NMU[2])",
        "NMU*cos(NAU->NMU[2])",
        "NMU*exp(NAU->NMU[2])",
        "NALU",
        "NALU->NALU[2]",
    ]
    single = {a.name: a for a in architectures(_space(X, X.sum(axis=1)))}
    assert single["NMU->NAU[2] single powers"].columns == tuple(
        dict.fromkeys(single["NMU->NAU[2]"].columns)
    )


def test_inputs_that_cross_zero_get_no_reciprocals_and_no_nalu():
    X = np.random.default_rng(0).uniform(-1, 1, size=(60, 2))
    offered = [a.name for a in architectures(_space(X, X.sum(axis=1)))]
    assert "NAU[1/x]" not in offered and not any(n.startswith("NALU") for n in offered)


def test_stage_keys_order_sizes_then_variants_then_the_reciprocal_side_then_nalus():
    X = np.random.default_rng(0).uniform(1, 3, size=(60, 2))
    offered = {a.name: a for a in architectures(_space(X, X.sum(axis=1)))}
    assert offered["NAU"].stage_key("y") == StageKey(Family.ARITHMETIC, 0, Place.WITH, False)
    assert offered["NAU"].stage_key("1/y") == offered["NAU[1/x]"].stage_key("y")
    assert offered["NAU[1/x]"].stage_key("y").reciprocal
    assert offered["NAU->NMU[2]"].stage_key("y") > offered["NAU"].stage_key("1/y")
    assert offered["NALU"].stage_key("y") > offered["NAU->NMU[2]"].stage_key("1/y")
    # Solved in closed form, ratios of polynomials wait for no stage on any transform.
    assert offered["P/Q"].stage_key("log(y)") == offered["NAU"].stage_key("1/y")
    stages = plan_stages(list(offered.values()), ["y", "1/y"])
    jobs = [[f"{a.name} on {t}" for a, t in stage] for stage in stages]
    assert jobs[0] == ["NAU on y", "NMU on y", "P/Q on y"]
    assert jobs[1] == ["NAU[1/x] on y", "NAU on 1/y", "NAU[1/x] on 1/y", "P/Q on 1/y"]
    # The listed functions of groups of inputs, screened in closed form, join the single
    # units' last stages on y and 1/y; then the ratios over the functions of one input, also
    # solved in closed form; on 1/y (and y**2) in one of their own.
    assert jobs[2] == [
        "NPU on y",
        "f(u) listed on y",
        "m*f(u)*exp(v) listed on y",
        "f(u) + g(v) listed on y",
    ]
    assert jobs[3] == ["f(u) listed on 1/y", "f(u) + g(v) listed on 1/y"]
    assert set(jobs[4]) == {
        f"P/Q[x, {f}] on y"
        for x in ("x0", "x1")
        for f in (f"sin({x}), cos({x})", f"exp({x})", f"log({x})", "sin, cos", "exp", "log")
    }
    assert all(job.startswith("P/Q[x, ") and job.endswith(" on 1/y") for job in jobs[5])
    # The division units come after every other stack of their width.
    width_two = [
        job
        for stage in jobs
        for job in stage
        if "[2]" in job and "NALU" not in job and "[x, " not in job and "*" not in job
    ]
    assert width_two[-3:] == [
        "NAU->NDU[2] on y",
        "(NMU->NAU)/NAU[2] on y",
        "(NMU->NAU)/NAU[2] on 1/y",
    ]
    assert not any("NMU on 1/y" in job for stage in jobs for job in stage)
    # NALUs close the arithmetic stages; the stacks over functions of the inputs follow, and
    # functions of products after the single-unit ones.
    nalu = max(i for i, stage in enumerate(jobs) if any("NALU" in job for job in stage))
    assert jobs[nalu] == ["NALU->NALU[2] on 1/y"]
    beyond = jobs[nalu + 1 :]
    assert all("[x, " in job or "(N" in job for stage in beyond for job in stage)
    assert beyond[1] == [
        "NMU*sin(NMU) on y",
        "NMU*cos(NMU) on y",
        "NMU*exp(NMU) on y",
        "NMU*log(NMU) on y",
    ]


def _cube_columns(space: Space) -> tuple[int, ...]:
    return tuple(c for c in space.table.inputs for _ in range(3))


def _product_of_selected(weights, inputs):
    columns = inputs.columns
    return [make_term(make_factor([(columns[i], 1)]) for i in selected(weights[0][0]))]


def _one_nmu(n_in: int, hidden: int) -> list[nn.Module]:
    return [NMU(n_in, 1)]


def test_a_kind_added_to_the_registry_alone_is_trained_snapped_and_scored(monkeypatch):
    # Cubes are beyond the default products (powers up to 2): only the new kind can write
    # x0**3*x1, so finding it exactly shows the kind went through every stage of the search.
    toy = StackKind(
        "CUBES",
        _one_nmu,
        Single(_cube_columns),
        SnapEach(_product_of_selected),
        transforms=("y",),
        common_scale=False,
    )
    monkeypatch.setitem(STACK_KINDS, "cubes", toy)
    X = np.random.default_rng(0).uniform(1, 2, size=(200, 2))
    y = X[:, 0] ** 3 * X[:, 1]
    result = find_formula(
        X,
        y,
        architectures=["CUBES"],
        settings=TrainingSettings(restarts=2, scale_steps=2, steps=1500),
        random_state=0,
    )
    x0, x1 = result.symbols
    assert result.jobs == ["CUBES on y"]
    assert result.exact, result.message
    assert sympy.simplify(result.formula - x0**3 * x1) == 0
    assert result.candidates.loc[result.chosen, "architecture"] == "CUBES"


def test_an_unknown_architecture_name_lists_the_ones_offered():
    X = np.random.default_rng(0).uniform(1, 2, size=(40, 2))
    with pytest.raises(ValueError, match="unknown architectures \\['CUBES'\\]; choose from NAU"):
        find_formula(X, X.sum(axis=1), architectures=["CUBES"])
