"""The picture of a fit: ``NaluRegressor.plot``, ``nalu_sr.plot`` and ``nalu-sr fit --plot``."""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import nalu_sr.estimator as estimator_module
import nalu_sr.plot as plot_module
from nalu_sr import NaluRegressor
from nalu_sr.cli import app
from nalu_sr.errors import InputError, MissingDependencyError
from nalu_sr.files import write_bytes_atomic

REPO = Path(__file__).resolve().parents[1]
OHMS = REPO / "datasets" / "ohms_law.csv"
CELSIUS = REPO / "datasets" / "celsius_to_fahrenheit.csv"
CELSIUS_WIDE = REPO / "datasets" / "celsius_to_fahrenheit_wide.csv"
SMALL = {"architectures": ["NAU", "NMU"], "restarts": 1, "steps": 300, "max_time": 10}
PRODUCT = ["--restarts", "1", "--steps", "300", "--architectures", "NAU,NMU", "--max-time", "10"]
PNG = b"\x89PNG\r\n\x1a\n"
INSTALL_LINE = "error: plotting needs matplotlib; install it with pip install 'nalu-sr[plot]'"

runner = CliRunner()


@pytest.fixture(scope="module")
def agg():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    return matplotlib


@pytest.fixture(scope="module")
def ohms():
    frame = pd.read_csv(OHMS)
    X, y = frame[["I", "R"]], frame["V"]
    return NaluRegressor(**SMALL).fit(X, y), X, y


@pytest.fixture(scope="module")
def celsius():
    train, wide = pd.read_csv(CELSIUS), pd.read_csv(CELSIUS_WIDE)
    data = (train[["C"]], train["F"], wide[["C"]], wide["F"])
    model = NaluRegressor(architectures=["NAU"], restarts=1, steps=100, max_time=5).fit(*data)
    return model, data


def by_gid(axes, gid):
    found = [c for c in axes.collections if c.get_gid() == gid]
    assert len(found) == 1, [c.get_gid() for c in axes.collections]
    return found[0]


def without_matplotlib(monkeypatch):
    for name in ("matplotlib", "matplotlib.figure"):
        monkeypatch.setitem(sys.modules, name, None)  # importing it now fails


def test_plot_has_the_three_panels_with_each_row_group_in_its_own_colour(agg, ohms):
    model, X, y = ohms
    figure = model.plot(X, y)
    assert isinstance(figure, agg.figure.Figure)
    fit, residuals, candidates = figure.axes
    assert fit.get_title().startswith("(a) Prediction against truth")
    assert residuals.get_title() == "(b) Residuals, relative"
    assert residuals.get_ylabel() == "relative residual: (predicted − V) / RMS(V)"
    assert candidates.get_xlabel() == "complexity (size of the formula)"
    assert candidates.get_yscale() == "log"
    counts = model.result_.split.counts()
    assert counts == {"train": 320, "validation": 80, "extrapolation": 100}
    for axes in (fit, residuals):
        colours = set()
        for name, count in counts.items():
            points = by_gid(axes, name)
            assert len(points.get_offsets()) == count
            colours.add(tuple(points.get_facecolor()[0]))
        assert len(colours) == 3
    legend = [text.get_text() for text in fit.get_legend().get_texts()]
    assert legend == [
        "train (320 rows)",
        "validation (80 rows)",
        "extrapolation (100 rows)",
        "prediction = truth",
    ]
    # Panel (a) shows truth against the formula's values: on an exact fit, a line y = x.
    offsets = by_gid(fit, "extrapolation").get_offsets()
    np.testing.assert_allclose(offsets[:, 1], offsets[:, 0], rtol=1e-12)


def test_plot_marks_and_labels_the_chosen_candidate_with_zero_loss_below_the_others(agg, ohms):
    model, X, y = ohms
    candidates = model.plot(X, y).axes[2]
    chosen = by_gid(candidates, "chosen").get_offsets()
    others = by_gid(candidates, "candidates").get_offsets()
    assert model.candidates_.loc[model.chosen_, "loss_validation"] == 0
    assert chosen[0, 0] == model.candidates_.loc[model.chosen_, "complexity"]
    assert len(others) == len(model.candidates_) - 1
    assert chosen[0, 1] < others[:, 1].min()  # a log axis has no 0: it is drawn lowest
    labels = [text.get_text() for text in candidates.texts]
    assert labels == ["chosen: $I R$"]


def test_plot_title_gives_the_formula_and_whether_it_is_exact(agg, ohms):
    model, X, y = ohms
    title = model.plot(X, y).get_suptitle()
    assert title == "$V = I R$: exact (holds on the 100 extrapolation rows within 1e-06)"


def test_plot_title_falls_back_to_plain_text_where_mathtext_cannot_read_the_latex(
    agg, ohms, monkeypatch, tmp_path
):
    import nalu_sr.export

    model, X, y = ohms
    monkeypatch.setattr(nalu_sr.export, "to_latex", lambda expr: r"\frac{")
    figure = model.plot(X, y)
    assert figure.get_suptitle().startswith("V = I*R: exact")
    assert [text.get_text() for text in figure.axes[2].texts] == ["chosen: I*R"]
    figure.savefig(tmp_path / "fit.png")


def test_plot_saves_to_png_with_savefig_and_save_figure(agg, ohms, tmp_path):
    model, X, y = ohms
    figure = model.plot(X, y)
    figure.savefig(tmp_path / "savefig.png")
    plot_module.save_figure(figure, tmp_path / "saved.png")
    for name in ("savefig.png", "saved.png"):
        assert (tmp_path / name).read_bytes().startswith(PNG)
    with pytest.raises(FileExistsError, match="already exists"):
        plot_module.save_figure(figure, tmp_path / "saved.png")
    plot_module.save_figure(figure, tmp_path / "saved.svg")
    assert b"<svg" in (tmp_path / "saved.svg").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["saved.png", "saved.svg", "savefig.png"]


def test_plot_of_an_explicit_extrapolation_set_shows_its_rows_as_the_extrapolation_rows(
    agg, celsius
):
    model, data = celsius
    fit = model.plot(*data).axes[0]
    assert len(by_gid(fit, "extrapolation").get_offsets()) == len(data[2]) == 500
    assert len(by_gid(fit, "train").get_offsets()) + len(
        by_gid(fit, "validation").get_offsets()
    ) == len(data[0])
    with pytest.raises(InputError, match="pass it too, as X_extrapolation and y_extrapolation"):
        model.plot(data[0], data[1])
    with pytest.raises(InputError, match="X_extrapolation has 499 rows but the model was checked"):
        model.plot(data[0], data[1], data[2][1:], data[3][1:])


def test_plot_without_data_draws_the_rows_the_fit_kept_the_same_as_with_them(agg, ohms, celsius):
    model, X, y = ohms
    given, kept = model.plot(X, y).axes[0], model.plot().axes[0]
    for name in ("train", "validation", "extrapolation"):
        np.testing.assert_array_equal(
            by_gid(kept, name).get_offsets(), by_gid(given, name).get_offsets()
        )
    legend = [text.get_text() for text in kept.get_legend().get_texts()]
    assert legend[:3] == ["train (320 rows)", "validation (80 rows)", "extrapolation (100 rows)"]
    explicit, data = celsius
    fit = explicit.plot().axes[0]
    assert len(by_gid(fit, "extrapolation").get_offsets()) == len(data[2]) == 500


def test_plot_of_a_large_fit_keeps_a_sample_of_each_group_with_its_full_count(agg, monkeypatch):
    monkeypatch.setattr(plot_module, "MAX_POINTS", 40)
    X = pd.DataFrame({"a": np.linspace(1, 2, 300)})
    model = NaluRegressor(architectures=["NAU"], restarts=1, steps=100).fit(X, 3 * X.a + 1)
    assert len(model._kept_rows_.y) == 120
    fit = model.plot().axes[0]
    assert len(by_gid(fit, "train").get_offsets()) == 40
    train_rows = model.result_.split.counts()["train"]
    assert fit.get_legend().get_texts()[0].get_text() == f"train ({train_rows} rows, 40 shown)"


def test_plot_of_a_model_loaded_from_a_file_needs_the_data(agg, ohms, tmp_path):
    model, X, y = ohms
    model.save(tmp_path / "model.json")
    loaded = NaluRegressor.load(tmp_path / "model.json")
    with pytest.raises(InputError, match="keeps no rows to draw"):
        loaded.plot()
    assert len(by_gid(loaded.plot(X, y).axes[0], "train").get_offsets()) == 320
    with pytest.raises(InputError, match="pass both X and y"):
        model.plot(X)


def test_plot_refuses_data_other_than_those_fitted_on(agg, ohms):
    model, X, y = ohms
    with pytest.raises(InputError, match="X has 499 rows but the model was fitted on 500"):
        model.plot(X[1:], y[1:])
    with pytest.raises(InputError, match="X is not the data the model was fitted on"):
        model.plot(X * 2, y)
    with pytest.raises(InputError, match="only when fit had one"):
        model.plot(X, y, X, y)
    with pytest.raises(InputError, match="X has 500 rows but y has 499"):
        model.plot(X, y[1:])


def test_plot_draws_a_sample_of_a_large_row_group_and_says_so(agg, ohms, monkeypatch):
    model, X, y = ohms
    monkeypatch.setattr(plot_module, "MAX_POINTS", 50)
    fit = model.plot(X, y).axes[0]
    assert len(by_gid(fit, "train").get_offsets()) == 50
    assert fit.get_legend().get_texts()[0].get_text() == "train (320 rows, 50 shown)"


def test_plot_without_validation_rows_says_there_is_no_loss_to_compare(agg, celsius):
    _, (X, y, _, _) = celsius
    model = NaluRegressor(
        architectures=["NAU"], restarts=1, steps=100, max_time=5, validation_fraction=0
    ).fit(X, y)
    candidates = model.plot(X, y).axes[2]
    assert [text.get_text() for text in candidates.texts] == [
        "no validation rows: no validation loss to compare"
    ]


def test_plot_before_fit_raises_not_fitted(agg):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        NaluRegressor().plot(np.ones((10, 1)), np.ones(10))


def test_plot_without_matplotlib_raises_missing_dependency_naming_the_extra(ohms, monkeypatch):
    model, X, y = ohms
    without_matplotlib(monkeypatch)
    with pytest.raises(MissingDependencyError, match=r"pip install 'nalu-sr\[plot\]'"):
        model.plot(X, y)
    with pytest.raises(MissingDependencyError):
        plot_module.require_matplotlib()


def test_figure_format_follows_the_ending_and_refuses_unknown_ones(agg):
    assert plot_module.figure_format("fit.PNG") == "png"
    assert plot_module.figure_format(Path("a.b/fit.svg")) == "svg"
    assert plot_module.figure_format("fit.pdf") == "pdf"
    for name in ("fit", "fit.xyz"):
        with pytest.raises(InputError, match="cannot tell the image format; end the name with"):
            plot_module.figure_format(name)


def test_write_bytes_atomic_writes_the_bytes_whole_and_keeps_existing_files(tmp_path):
    path = tmp_path / "image.png"
    write_bytes_atomic(path, PNG + bytes(range(256)))
    assert path.read_bytes() == PNG + bytes(range(256))
    with pytest.raises(FileExistsError):
        write_bytes_atomic(path, b"other")
    write_bytes_atomic(path, b"other", overwrite=True)
    assert path.read_bytes() == b"other"
    assert [p.name for p in tmp_path.iterdir()] == ["image.png"]


# --- the command line ------------------------------------------------------------------------


def run(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def searches(monkeypatch):
    """Records every search the command line starts."""
    calls = []
    real_fit = estimator_module.NaluRegressor.fit

    def fit(self, *args, **kwargs):
        calls.append(args)
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr(estimator_module.NaluRegressor, "fit", fit)
    return calls


def test_cli_plot_writes_a_png_and_refuses_to_overwrite_it_without_force(agg, tmp_path, searches):
    image = tmp_path / "fit.png"
    result = run("fit", OHMS, "--target", "V", *PRODUCT, "--plot", image)
    assert result.exit_code == 0, result.output
    assert f"Wrote {image}" in result.stdout.replace("\n", "")
    written = image.read_bytes()
    assert written.startswith(PNG)
    assert len(searches) == 1
    result = run("fit", OHMS, "--target", "V", *PRODUCT, "--plot", image)
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {image} already exists; pass --force to overwrite it."
    assert len(searches) == 1  # refused before searching
    assert image.read_bytes() == written
    assert [p.name for p in tmp_path.iterdir()] == ["fit.png"]


def test_cli_plot_with_an_unknown_ending_is_refused_before_the_search(agg, tmp_path, searches):
    result = run("fit", OHMS, "--target", "V", "--plot", tmp_path / "fit.txt")
    assert result.exit_code == 2
    assert "cannot tell the image format; end the name with one of" in result.stderr
    assert searches == []


def test_cli_plot_and_output_must_be_different_files(agg, tmp_path, searches):
    path = tmp_path / "fit.png"
    result = run("fit", OHMS, "--target", "V", "--plot", path, "--output", path)
    assert result.exit_code == 2
    assert "--plot and --output name the same file" in result.stderr
    assert searches == []


def test_cli_plot_without_matplotlib_is_one_line_and_exit_2_before_the_search(
    monkeypatch, tmp_path, searches
):
    without_matplotlib(monkeypatch)
    result = run("fit", OHMS, "--target", "V", "--plot", tmp_path / "fit.png")
    assert result.exit_code == 2
    assert result.stderr.strip() == INSTALL_LINE
    assert searches == []
    assert list(tmp_path.iterdir()) == []
