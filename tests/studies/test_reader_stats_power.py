"""Power and sample size of an MRMC study: pilot parameters, the OR power formula checked
against the DBM route with OR-DBM MRMC's printed DBM components, and against simulation.

Van Dyke data and OR-DBM MRMC 2.5 output as in test_reader_stats_mrmc.py (RJafroc commit
44b0e39e: tests/testthat/goodValues361/DfSaveDataFile/dataset02.imrmc and
inst/obumrm2/VanDyke-traparea-jackknife-obuch-anova.txt).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scipy import stats as sps
from typer.testing import CliRunner

from studies.reader_stats.mrmc import MRMCError, mrmc, read_imrmc
from studies.reader_stats.power import (
    ORParameters,
    power,
    power_grid,
    ranged_parameters,
    simulate_power,
    smallest_designs,
)
from workbench.cli import app

VAN_DYKE = Path(__file__).parent / "data" / "vandyke_dataset02.imrmc"


@pytest.fixture(scope="module")
def pilot() -> ORParameters:
    return ORParameters.from_result(mrmc(read_imrmc(VAN_DYKE), "auc"))


def test_pilot_parameters_are_the_published_or_components(pilot: ORParameters) -> None:
    # OBUMRM: Var(T*R) 0.00020040, Var(Error) 0.00080229, correlations 0.43203138,
    # 0.42886683, 0.29793328 (on 114 cases)
    assert round(pilot.var_tr, 8) == 0.00020040
    assert round(pilot.var_error, 8) == 0.00080229
    assert round(pilot.corr1, 8) == 0.43203138
    assert round(pilot.corr2, 8) == 0.42886683
    assert round(pilot.corr3, 8) == 0.29793328
    assert pilot.cases == 114


def test_or_power_equals_the_dbm_route_with_the_printed_dbm_components(
    pilot: ORParameters,
) -> None:
    """Hillis & Berbaum (2004) DBM power (as RJafroc's SsPowerGivenJKDbmVarCom computes it)
    from OBUMRM's DBM components: Var(T*R) 0.00020040, Var(T*C) 0.01197530,
    Var(T*R*C)+Var(Error) 0.03997160."""
    var_tr, var_tc, var_err = 0.00020040, 0.01197530, 0.03997160
    for readers, cases in ((6, 251), (4, 100), (10, 60)):
        den = var_tr + (var_err + readers * var_tc) / cases
        ncp = 0.05**2 * readers / 2 / den
        df2 = den**2 * (readers - 1) / (var_tr + var_err / cases) ** 2
        dbm = sps.ncf.sf(sps.f.ppf(0.95, 1, df2), 1, df2, ncp)
        assert power(pilot, 0.05, readers, cases) == pytest.approx(dbm, abs=2e-4)


def test_power_grows_with_readers_and_cases_and_is_alpha_without_effect(
    pilot: ORParameters,
) -> None:
    grid = power_grid(pilot, 0.05, [3, 5, 8], [50, 100, 200, 400])
    assert (grid.diff(axis=0).iloc[1:] > 0).all().all()
    assert (grid.diff(axis=1).iloc[:, 1:] > 0).all().all()
    assert power(pilot, 0.0, 5, 100) == pytest.approx(0.05)
    found = smallest_designs(grid, 0.8)
    assert all(grid.loc[j, k] >= 0.8 for j, k, _ in found)
    for readers, cases, _ in found:
        fewer = [k for k in grid.columns if k < cases]
        assert all(grid.loc[readers, k] < 0.8 for k in fewer)
    # fixed readers ignore reader variability: never less power than RRRC
    assert power(pilot, 0.05, 5, 100, analysis="frrc") > power(pilot, 0.05, 5, 100)


def test_predicted_power_matches_simulated_studies() -> None:
    params = ORParameters(
        var_tr=0.0002, var_error=0.0008, corr1=0.45, corr2=0.3, corr3=0.2, cases=100
    )
    predicted = power(params, 0.04, 5, 100)
    simulated = simulate_power(params, 0.04, 5, 100, n_studies=250, seed=3)
    # 250 studies: Monte Carlo SE about 0.032 at this power (bench/coverage_mrmc.py checks
    # within 3 points on more studies)
    assert simulated == pytest.approx(predicted, abs=0.09), (simulated, predicted)


def test_fewer_readers_per_case_cost_power(pilot: ORParameters) -> None:
    full = power(pilot, 0.05, 6, 200)
    assert power(pilot, 0.05, 6, 200, readers_per_case=6) == pytest.approx(full)
    assert power(pilot, 0.05, 6, 200, readers_per_case=3) < full
    with pytest.raises(MRMCError, match="readers per case"):
        power(pilot, 0.05, 6, 200, readers_per_case=7)


def test_a_split_plot_pilot_gives_its_per_case_correlations() -> None:
    readings = read_imrmc(VAN_DYKE)
    within_reader = readings.assign(case=readings["reader"] + "." + readings["case"])
    params = ORParameters.from_result(mrmc(within_reader, "auc"))
    # readers share no cases: nothing to say about Cov2/Cov3 beyond "no shared cases"
    assert params.corr2 == 0 and params.corr3 == 0
    assert params.corr1 == pytest.approx(0.4320314, abs=1e-6)  # MRMCaov: Cov1 correlation


def test_stated_ranges_give_a_pessimistic_and_an_optimistic_end() -> None:
    low, high = ranged_parameters(
        {
            "var_tr": (0.0001, 0.0004),
            "var_error": (0.0008, 0.0008),
            "corr1": (0.3, 0.5),
            "corr2": (0.3, 0.4),
            "corr3": (0.2, 0.2),
        },
        cases=100,
    )
    assert power(low, 0.05, 5, 200) < power(high, 0.05, 5, 200)
    with pytest.raises(MRMCError, match="corr2 must be between -1 and 1"):
        ORParameters(0.0, 0.001, 0.1, 1.5, 0.0, 100).check()


def test_stats_power_command(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["stats", "power", "--pilot", str(VAN_DYKE), "--effect", "0.05", "--readers", "4,6,8"]
        + ["--cases", "100,200,300"],
    )
    assert result.exit_code == 0, result.output
    assert "To detect a 0.05 difference with 80% power: 6 readers x 200 cases" in result.output
    done = runner.invoke(
        app,
        ["stats", "power", "--effect", "0.05", "--var-tr", "0.0002:0.0004", "--var-error", "0.0008"]
        + ["--corr1", "0.4", "--corr2", "0.3", "--corr3", "0.25", "--pilot-cases", "114"]
        + ["--readers", "5,10", "--cases", "100,300", "--format", "json"],
    )
    assert done.exit_code == 0, done.output
    document = json.loads(done.stdout)
    cell = document["power"][0]
    assert cell["power"] < cell["power_optimistic"] and len(document["parameters"]) == 2
    missing = runner.invoke(app, ["stats", "power", "--effect", "0.05", "--var-tr", "0.0002"])
    assert missing.exit_code == 2
    assert (
        "without --pilot, give --var-error, --corr1, --corr2, --corr3, --pilot-cases"
        in missing.output
    )


def test_power_of_a_win_rate_against_no_preference_matches_simulation() -> None:
    """One modality's FOM against a fixed value (a win rate against 0.5): the predicted
    power of Hillis's single-modality test and the share of simulated studies rejecting."""
    import numpy as np

    from studies.reader_stats.mrmc import Cell, analyse_cells

    readers, cases, s_case, s_noise, s_reader = 6, 60, 0.02, 0.2, 0.004
    params = ORParameters(
        var_tr=0.0,
        var_error=(s_case + s_noise) / cases,
        corr1=0.0,
        corr2=s_case / (s_case + s_noise),
        corr3=0.0,
        cases=cases,
        var_reader=s_reader,
    )
    effect = 0.08
    predicted = power(params, effect, readers, cases, against_value=True)
    rng = np.random.default_rng(11)
    rejected = 0
    for _ in range(300):
        case = rng.normal(0, np.sqrt(s_case), cases)
        cells = {
            (0, j): Cell(
                cases=np.arange(cases),
                values=0.5
                + effect
                + rng.normal(0, np.sqrt(s_reader))
                + case
                + rng.normal(0, np.sqrt(s_noise), cases),
            )
            for j in range(readers)
        }
        result = analyse_cells(cells, "winrate", ["X"], [f"r{j}" for j in range(readers)], cases)
        rejected += result.modalities["p"].iloc[0] < 0.05
    assert 0.2 < predicted < 0.9
    assert rejected / 300 == pytest.approx(predicted, abs=0.085), (rejected / 300, predicted)
    assert power(params, 0.0, readers, cases, against_value=True) == pytest.approx(0.05)


def test_design_page_power_panel(tmp_home: Path) -> None:
    from streamlit.testing.v1 import AppTest
    from test_reader_stats_mrmc import _rated_study

    from studies.readers import accounts
    from studies.store.db import get_store
    from workbench.access import SESSION_KEY

    views = Path(__file__).resolve().parents[2] / "workbench" / "views"
    store = get_store()
    _rated_study(store, tmp_home / "bench", "pilot-study")
    admin = accounts.create_account(store, "planner", "admin", "Planner-admin-pass-1")
    page = AppTest.from_file(str(views.parent / "app.py"), default_timeout=120)
    page.session_state[SESSION_KEY] = accounts.open_session(store, admin.id)
    page.run()
    page.switch_page(str(views / "studies_admin.py")).run()
    assert not page.exception, page.exception
    page.button(key="power_run").click().run()
    assert not page.exception, page.exception
    said = " ".join(m.value for m in page.markdown)
    assert "To detect a 0.05 win-rate difference with 80% power" in said
    assert any("assumed values" in c.value for c in page.caption)
    page.selectbox(key="power_pilot").set_value("pilot-study")
    page.text_input(key="power_comparator").set_value("sys-gamma")
    page.button(key="power_run").click().run()
    assert not page.exception and not page.error, page.error
    assert any("pilot: 3 readers" in c.value for c in page.caption)
    page.text_input(key="power_comparator").set_value("nobody")
    page.button(key="power_run").click().run()
    assert any("no judgment compares the baseline 'nobody'" in e.value for e in page.error)
