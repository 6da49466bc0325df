"""MRMC (Obuchowski-Rockette) analysis: the Van Dyke study reproduced, incomplete designs,
every figure of merit, and bad input named by row.

The Van Dyke et al. (1993) data (5 radiologists, CINE vs spin-echo MRI, 114 cases, 45 with
aortic dissection) are RJafroc's `dataset02` as RJafroc writes it in iMRMC format
(github.com/dpc10ster/RJafroc, commit 44b0e39e,
tests/testthat/goodValues361/DfSaveDataFile/dataset02.imrmc); modality 0 is the one
OR-DBM MRMC and MRMCaov call treatment 1. The published numbers are from

- OBUMRM: OR-DBM MRMC 2.5 output "VanDyke trap area jackknife", shipped with RJafroc
  (inst/obumrm2/VanDyke-traparea-jackknife-obuch-anova.txt, same commit), and
- MRMC: MRMCaov's JSS manuscript (github.com/brian-j-smith/MRMCaov, commit d79e49b,
  docs/jss/MRMCaov.tex: `mrmc(empirical_auc(truth, rating), treatment, fixed(reader),
  case)` and the nested designs `case2` (cases within reader), `case3` (cases within
  treatment)).

Each number is compared to the precision it is printed with.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from studies.reader_stats.mrmc import (
    MRMCError,
    _cells,
    analyse_cells,
    imrmc_text,
    mrmc,
    prepare_readings,
    read_imrmc,
    readings_from_judgments,
)

DATA = Path(__file__).parent / "data"
VAN_DYKE = DATA / "vandyke_dataset02.imrmc"


def _close(value: float, printed: str) -> None:
    """`value` rounds to `printed` (a number as the source prints it)."""
    mantissa, _, exponent = printed.partition("e")
    decimals = (len(mantissa.split(".")[1]) if "." in mantissa else 0) - int(exponent or 0)
    assert round(value, decimals) == pytest.approx(float(printed), abs=0.51 * 10**-decimals), (
        value,
        printed,
    )


@pytest.fixture(scope="module")
def van_dyke() -> pd.DataFrame:
    return read_imrmc(VAN_DYKE)


def test_van_dyke_reader_aucs_and_means_match_obumrm(van_dyke: pd.DataFrame) -> None:
    result = mrmc(van_dyke, "auc")
    published = {  # OBUMRM "TREATMENT x READER AUC ESTIMATES"
        "0": ["0.91964573", "0.85877617", "0.90386473", "0.97310789", "0.82979066"],
        "1": ["0.94782609", "0.90531401", "0.92173913", "0.99935588", "0.92995169"],
    }
    for modality, values in published.items():
        for reader, printed in zip(result.readers, values, strict=True):
            _close(result.fom_table.loc[reader, modality], printed)
    means = result.modalities.set_index("modality")["estimate"]
    _close(means["0"], "0.89703704")
    _close(means["1"], "0.94083736")
    assert result.design == "factorial" and result.covariance == "jackknife"


def test_van_dyke_rrrc_reproduces_f_hillis_df_and_p(van_dyke: pd.DataFrame) -> None:
    result = mrmc(van_dyke, "auc", analysis="rrrc")
    # OBUMRM Analysis 1 (a): F 4.46, error term 0.00107626 on 15.26 df, p 0.0517
    _close(result.test["value"], "4.46")
    _close(result.test["df2"], "15.26")
    _close(result.test["p"], "0.0517")
    assert result.test["df1"] == 1
    _close(
        result.components["ms_tr"] + 5 * (result.components["cov2"] - result.components["cov3"]),
        "0.00107626",
    )
    # (b): -0.04380, SE 0.02075, t -2.11, CI (-0.08796, 0.00036)
    diff = result.differences.iloc[0]
    _close(diff["estimate"], "-0.04380")
    _close(diff["se"], "0.02075")
    _close(diff["statistic"], "-2.11")
    _close(diff["ci_low"], "-0.08796")
    _close(diff["ci_high"], "0.00036")
    # (c): single-treatment SE, df and CI
    single = result.modalities.set_index("modality")
    for modality, se, df, low, high in (
        ("0", "0.03317360", "12.74", "0.82522360", "0.96885048"),
        ("1", "0.02156637", "12.71", "0.89413783", "0.98753689"),
    ):
        _close(single.loc[modality, "se"], se)
        _close(single.loc[modality, "df"], df)
        _close(single.loc[modality, "ci_low"], low)
        _close(single.loc[modality, "ci_high"], high)
    # the OR variance components "for sample size estimation for future studies"
    components = result.components
    for key, printed in (
        ("var_reader", "0.00153500"),
        ("var_treatment_reader", "0.00020040"),
        ("cov1", "0.00034661"),
        ("cov2", "0.00034407"),
        ("cov3", "0.00023903"),
        ("var_error", "0.00080229"),
        ("ms_t", "0.00479617"),
        ("ms_r", "0.00383620"),
        ("ms_tr", "0.00055103"),
    ):
        _close(components[key], printed)
    assert result.warnings == []


def test_van_dyke_fixed_readers_and_fixed_cases(van_dyke: pd.DataFrame) -> None:
    frrc = mrmc(van_dyke, "auc", analysis="frrc")
    # MRMCaov, fixed(reader): X2 5.475953, p 0.01927984; SE 0.01871748,
    # CI (-0.08048591, -0.00711473)
    _close(frrc.test["value"], "5.475953")
    _close(frrc.test["p"], "0.01927984")
    diff = frrc.differences.iloc[0]
    _close(diff["se"], "0.01871748")
    _close(diff["ci_low"], "-0.08048591")
    _close(diff["ci_high"], "-0.00711473")
    _close(diff["statistic"], "-2.340075")
    _close(frrc.modalities.iloc[0]["se"], "0.02428971")
    _close(frrc.modalities.iloc[1]["ci_high"], "0.9737183")
    rrfc = mrmc(van_dyke, "auc", analysis="rrfc")
    # OBUMRM Analysis 3: F(1,4) 8.70, p 0.0420; SE 0.01485, CI (-0.08502, -0.00258)
    _close(rrfc.test["value"], "8.70")
    assert rrfc.test["df2"] == 4
    _close(rrfc.test["p"], "0.0420")
    _close(rrfc.differences.iloc[0]["se"], "0.01485")
    _close(rrfc.differences.iloc[0]["ci_low"], "-0.08502")
    _close(rrfc.differences.iloc[0]["ci_high"], "-0.00258")


def test_van_dyke_nested_designs_match_mrmcaov(van_dyke: pd.DataFrame) -> None:
    # Cases nested within readers (MRMCaov's case2): every reader reads their own cases.
    within_reader = van_dyke.assign(case=van_dyke["reader"] + "." + van_dyke["case"])
    result = mrmc(within_reader, "auc")
    assert result.design == "incomplete" and result.covariance == "jackknife"
    _close(result.components["var_error"], "8.079682e-04")
    _close(result.components["cov1"], "3.490676e-04")
    assert abs(result.components["cov2"]) < 1e-12 and abs(result.components["cov3"]) < 1e-12
    _close(result.test["value"], "8.704")
    _close(result.test["p"], "0.04195875")
    assert result.test["df2"] == pytest.approx(4)
    # Cases nested within modalities (case3): each modality has its own cases.
    within_modality = van_dyke.assign(case=van_dyke["modality"] + "." + van_dyke["case"])
    result = mrmc(within_modality, "auc")
    _close(result.components["cov2"], "3.455973e-04")
    _close(result.components["var_error"], "8.058382e-04")
    _close(result.components["var_reader"], "1.642585e-03")
    _close(result.test["value"], "2.104491")
    _close(result.test["df2"], "68.42325")
    _close(result.test["p"], "0.1514363")
    _close(result.modalities.iloc[0]["df"], "12.79430")


def test_bootstrap_covariance_agrees_with_the_jackknife(van_dyke: pd.DataFrame) -> None:
    jack = mrmc(van_dyke, "auc").components
    boot = mrmc(van_dyke, "auc", covariance="bootstrap", n_resamples=3000, seed=1).components
    for key in ("var_error", "cov1", "cov2", "cov3"):
        # Monte Carlo error of 3000 resamples is a few percent; the jackknife is slightly larger.
        assert boot[key] == pytest.approx(jack[key], rel=0.15), key


def _split_plot(seed: int, blocks: int = 3, readers_per_block: int = 2, cases_per_block: int = 15):
    """A split-plot study of Likert-like scores: each block of readers reads its own cases.

    The readers (their leniency) are the same in every study; only the cases are drawn
    anew, so the covariance of the FOMs over studies is the case-sampling covariance
    that the OR error terms describe.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for b in range(blocks):
        case_effect = rng.normal(0, 0.8, cases_per_block)
        case_mod = rng.normal(0, 0.4, (2, cases_per_block))
        for j in range(readers_per_block):
            reader = f"r{b}{j}"
            leniency = 0.2 * (b - j)
            reader_case = rng.normal(0, 0.5, cases_per_block)
            for m, shift in enumerate((0.0, 0.3)):
                noise = rng.normal(0, 0.6, cases_per_block)
                for k in range(cases_per_block):
                    score = 3 + shift + leniency + case_effect[k] + case_mod[m, k]
                    score += reader_case[k] + noise[k]
                    rows.append((reader, f"c{b}_{k}", f"M{m}", score))
    return pd.DataFrame(rows, columns=["reader", "case", "modality", "score"])


def test_ustat_covariances_are_unbiased_in_a_split_plot_design() -> None:
    """The mean U-statistic estimates over simulated studies equal the covariances of the FOMs."""
    first = _split_plot(0)
    checked = mrmc(first, "mean")
    assert checked.design == "incomplete" and checked.covariance == "ustat"
    modalities, readers = checked.modalities_order, checked.readers
    cases = sorted(set(first["case"]))
    foms, estimates = [], []
    for seed in range(150):
        # the analysis `mrmc` runs, without checking each simulated table again
        cells = _cells(_split_plot(seed), "mean", modalities, readers, cases)
        result = analyse_cells(cells, "mean", modalities, readers, len(cases), covariance="ustat")
        if seed == 0:
            assert result.components == checked.components
        foms.append(result.fom_table.to_numpy().T.ravel())  # cell index = modality * 6 + reader
        estimates.append([result.components[k] for k in ("var_error", "cov1", "cov2", "cov3")])
    cov = np.cov(np.array(foms).T)
    cell = [(m, j) for m in range(2) for j in range(6)]
    kinds: dict[str, list[float]] = {"var": [], "cov1": [], "cov2": [], "cov3": []}
    for a, (m, j) in enumerate(cell):
        for b, (m2, j2) in enumerate(cell):
            if a == b:
                kinds["var"].append(cov[a, b])
            elif a < b:
                kind = "cov1" if j == j2 else "cov2" if m == m2 else "cov3"
                kinds[kind].append(cov[a, b])
    expected = np.array([np.mean(kinds[k]) for k in ("var", "cov1", "cov2", "cov3")])
    observed = np.mean(estimates, axis=0)
    # Monte Carlo error of 150 studies: a few percent of the variance
    assert observed == pytest.approx(expected, abs=0.12 * expected[0]), (observed, expected)
    assert expected[2] > 0.05 * expected[0]  # block partners share cases: Cov2 is real


def test_ustat_equals_the_jackknife_on_a_factorial_design() -> None:
    rng = np.random.default_rng(3)
    rows = [
        (f"r{j}", f"c{k}", m, float(rng.integers(1, 6)))
        for j in range(4)
        for k in range(25)
        for m in ("A", "B", "C")
    ]
    readings = pd.DataFrame(rows, columns=["reader", "case", "modality", "score"])
    jack = mrmc(readings, "mean", covariance="jackknife")
    ustat = mrmc(readings, "mean", covariance="ustat")
    for key in ("var_error", "cov1", "cov2", "cov3"):
        assert ustat.components[key] == pytest.approx(jack.components[key], rel=1e-12)
    assert len(jack.differences) == 3 and jack.test["df1"] == 2


def test_proportion_and_the_df_floor_warning() -> None:
    rng = np.random.default_rng(5)
    rows = [
        (f"r{j}", f"c{k}", m, int(rng.random() < (0.2 if m == "A" else 0.3)))
        for j in range(3)
        for k in range(30)
        for m in ("A", "B")
    ]
    readings = pd.DataFrame(rows, columns=["reader", "case", "modality", "score"])
    result = mrmc(readings, "proportion")
    by = result.modalities.set_index("modality")["estimate"]
    assert by["A"] == pytest.approx(readings[readings.modality == "A"]["score"].mean())
    # independent cases and readers: Cov2 - Cov3 is noise around 0; when not positive the
    # analysis says so, and with 3 readers it says the reader df is small
    assert any("only 3 readers" in w for w in result.warnings)
    if result.components["cov2"] <= result.components["cov3"]:
        assert any("floor" in w for w in result.warnings)
        assert result.test["df2"] == pytest.approx(2)


def test_win_rate_from_judgments_against_a_baseline() -> None:
    judgments = pd.DataFrame(
        {
            "rater": ["u", "u", "u", "u", "v", "v", "v", "v", "u", "v"],
            "case": ["1", "2", "1", "2", "1", "2", "1", "2", "3", "3"],
            "system_a": ["base", "X", "base", "Y", "base", "base", "Y", "Y", "X", "X"],
            "system_b": ["X", "base", "Y", "base", "X", "X", "base", "base", "Y", "Y"],
            "winner": ["b", "a", "tie", "b", "a", "both_bad", "a", "a", "a", "b"],
        }
    )
    long = readings_from_judgments(judgments, "base")
    assert set(long["modality"]) == {"X", "Y"}  # X vs Y (case 3) does not involve the baseline
    x = long[long.modality == "X"].set_index(["reader", "case"])["score"]
    assert x[("u", "1")] == 1.0 and x[("u", "2")] == 1.0 and x[("v", "1")] == 0.0
    assert x[("v", "2")] == 0.5  # both unacceptable counts as a tie
    result = mrmc(long, "winrate", baseline="base", covariance="ustat")
    row = result.modalities.set_index("modality").loc["X"]
    assert row["estimate"] == pytest.approx(np.mean([(1 + 1) / 2, (0 + 0.5) / 2]))
    assert "p" in result.modalities.columns and result.baseline == "base"


def test_win_rate_from_scores_of_the_baseline_modality() -> None:
    rows = [("r1", "c1", "base", 3), ("r1", "c1", "M", 4), ("r1", "c2", "base", 4)]
    rows += [("r1", "c2", "M", 4), ("r2", "c1", "base", 2), ("r2", "c1", "M", 1)]
    rows += [("r2", "c2", "base", 2), ("r2", "c2", "M", 5)]
    readings = prepare_readings(
        pd.DataFrame(rows, columns=["reader", "case", "modality", "score"]),
        "winrate",
        baseline="base",
    )
    assert sorted(readings["score"]) == [0.0, 0.5, 1.0, 1.0]
    result = mrmc(readings, "winrate", baseline="base")
    assert result.modalities.iloc[0]["estimate"] == pytest.approx(0.625)


# --- bad input: a message naming the rows ----------------------------------------------------


def _tiny(**changes) -> pd.DataFrame:
    rows = [
        (r, c, m, s, t)
        for r in ("r1", "r2")
        for m in ("A", "B")
        for c, s, t in (("c1", 1, 0), ("c2", 2, 0), ("c3", 4, 1), ("c4", 5, 1))
    ]
    return pd.DataFrame(rows, columns=["reader", "case", "modality", "score", "truth"])


def test_a_modality_read_by_one_reader_is_named_with_its_rows() -> None:
    readings = _tiny()
    readings = readings.drop(readings.index[(readings.reader == "r2") & (readings.modality == "B")])
    readings = pd.concat(
        [
            readings,
            pd.DataFrame(
                [("r1", "c1", "C", 3, 0), ("r1", "c3", "C", 4, 1)], columns=readings.columns
            ),
        ]
    )
    with pytest.raises(MRMCError) as info:
        mrmc(readings, "auc")
    message = str(info.value)
    assert "modality 'C' is read by one reader only ('r1', rows 13, 14)" in message
    assert "reader 'r2' has no cases in modalities 'B', 'C'" in message


def test_a_case_without_truth_is_named() -> None:
    readings = _tiny()
    readings["truth"] = readings["truth"].astype(object)
    readings.loc[readings.case == "c2", "truth"] = None
    with pytest.raises(MRMCError, match=r"'truth' is empty .* rows 2, 6, 10, 14 \(case c2\)"):
        mrmc(readings, "auc")


def test_a_reader_with_no_cases_in_one_modality_is_named() -> None:
    readings = _tiny()
    readings = pd.concat(
        [
            readings,
            pd.DataFrame(
                [("r3", "c1", "A", 1, 0), ("r3", "c3", "A", 5, 1)], columns=readings.columns
            ),
        ]
    ).reset_index(drop=True)
    with pytest.raises(
        MRMCError, match=r"reader 'r3' has no cases in modality 'B' \(their readings: rows 17, 18\)"
    ):
        mrmc(readings, "auc")


def test_other_bad_readings_are_named_together() -> None:
    readings = _tiny().astype({"score": object})
    readings.loc[3, "score"] = "high"
    readings.loc[5, "reader"] = ""
    with pytest.raises(MRMCError) as info:
        prepare_readings(readings, "auc")
    assert "'reader' is empty in row 6" in str(info.value)
    assert "'score' in row 4: not a number" in str(info.value)
    twice = pd.concat([_tiny(), _tiny().iloc[[0]]])
    with pytest.raises(MRMCError, match="more than once in rows 1, 17"):
        prepare_readings(twice, "auc")
    with pytest.raises(MRMCError, match="needs 0 or 1"):
        prepare_readings(_tiny(), "proportion")
    with pytest.raises(MRMCError, match="--baseline"):
        prepare_readings(_tiny(), "winrate")


def test_imrmc_round_trip(van_dyke: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "study.imrmc"
    path.write_text(imrmc_text(van_dyke, "Van Dyke (RJafroc dataset02)"), encoding="utf-8")
    again = read_imrmc(path)
    assert again.shape == van_dyke.shape
    assert mrmc(again, "auc").test["value"] == pytest.approx(mrmc(van_dyke, "auc").test["value"])
    text = path.read_text()
    assert "N0:69" in text and "N1:45" in text and "-1,1,truth,0" in text


# --- the commands ----------------------------------------------------------------------------


def test_stats_mrmc_command_reproduces_van_dyke_in_every_format(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from workbench.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["stats", "mrmc", "--input", str(VAN_DYKE), "--fom", "auc"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert (
        round(document["test"]["value"], 2) == 4.46 and round(document["test"]["df2"], 2) == 15.26
    )
    assert [round(m["estimate"], 8) for m in document["modalities"]] == [0.89703704, 0.94083736]
    for fmt, marker in (
        ("markdown", "| 0 - 1 | -0.0438 |"),
        ("latex", r"\toprule"),
        ("csv", "comparison,"),
    ):
        out = tmp_path / f"vd.{fmt}"
        done = runner.invoke(
            app, ["stats", "mrmc", "-i", str(VAN_DYKE), "--format", fmt, "--out", str(out)]
        )
        assert done.exit_code == 0, done.output
        text = out.read_text()
        assert marker in text and "F(1, 15.26) = 4.4563, p = 0.0517" in text
        assert "Research software, not a medical device." in text
    frrc = runner.invoke(app, ["stats", "mrmc", "-i", str(VAN_DYKE), "--analysis", "frrc"])
    assert round(json.loads(frrc.stdout)["test"]["p"], 4) == 0.0193


def test_stats_mrmc_refuses_bad_input_and_writes_nothing(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from workbench.cli import app

    readings = _tiny()
    readings = readings[~((readings.reader == "r2") & (readings.modality == "B"))]
    path = tmp_path / "bad.csv"
    readings.to_csv(path, index=False)
    out = tmp_path / "out.json"
    result = CliRunner().invoke(app, ["stats", "mrmc", "-i", str(path), "--out", str(out)])
    assert result.exit_code == 2
    assert "modality 'B' is read by one reader only ('r1', rows 5, 6, 7, 8)" in result.output
    assert not out.exists()


def test_stats_mrmc_win_rate_from_a_judgments_file(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from studies.reader_stats.simulation import simulate_judgments
    from workbench.cli import app

    judgments = simulate_judgments({"base": 0.0, "X": 0.8, "Y": 0.0}, n_cases=30, raters=4, seed=4)
    path = tmp_path / "judgments.csv"
    judgments.to_csv(path, index=False)
    runner = CliRunner()
    result = runner.invoke(
        app, ["stats", "mrmc", "-i", str(path), "--fom", "winrate", "--baseline", "base"]
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    by = {m["modality"]: m for m in document["modalities"]}
    assert set(by) == {"X", "Y"} and by["X"]["estimate"] > by["Y"]["estimate"]
    assert document["design"] == "incomplete" and document["covariance"] == "ustat"
    likert = runner.invoke(
        app, ["stats", "mrmc", "-i", str(path), "--fom", "mean", "--criterion", "accuracy"]
    )
    assert likert.exit_code == 0, likert.output
    assert {m["modality"] for m in json.loads(likert.stdout)["modalities"]} == {"base", "X", "Y"}
    refused = runner.invoke(app, ["stats", "mrmc", "-i", str(path), "--fom", "winrate"])
    assert refused.exit_code == 2 and "--baseline" in refused.output


def _rated_study(store, root: Path, name: str, *, no_truth: str | None = None) -> None:
    """A started SYNTHETIC study (8 cases, 3 systems, 3 raters, 2 per item), every task
    judged with Likert scores; case `no_truth` loses its ground-truth findings."""
    import random

    from sqlalchemy import select
    from support.reader_world import build_world

    from studies.readers import accounts
    from studies.readers.design import StudyDesign, create_study
    from studies.readers.enrolment import enrol_rater
    from studies.readers.lifecycle import start_study
    from studies.readers.rating import next_assignment, submit_judgment
    from studies.store.schema import Case

    world = build_world(store, root, n_cases=8, benchmark=f"bench-{name}")
    study_id = create_study(
        store,
        StudyDesign(name=name, benchmark=world.benchmark, systems=world.systems, overlap=2, seed=3),
    )
    raters = [
        accounts.create_account(store, f"{name}-r{i}", "rater", "rater-password-1")
        for i in range(3)
    ]
    for rater in raters:
        enrol_rater(store, study_id, rater.username)
    start_study(store, study_id)
    rng = random.Random(5)
    for rater in raters:
        while (task := next_assignment(store, rater.id, study_id)) is not None:
            scores = {
                side: {c: rng.randint(1, 5) for c in ("accuracy", "completeness", "safety")}
                for side in ("left", "right")
            }
            choice = rng.choice(["left", "right", "tie"])
            submit_judgment(
                store, rater.id, task.token, f"k{rng.random()}", choice, scores, "", 3.0
            )
    if no_truth:
        with store.session() as session:
            case = session.scalar(select(Case).where(Case.case_key == no_truth))
            case.findings = None


def test_studies_export_imrmc_writes_scores_and_truth_rows(store, tmp_path: Path) -> None:
    from studies.readers.judgments import study_judgments
    from workbench.commands.mrmc import imrmc_study_text

    _rated_study(store, tmp_path / "bench", "imrmc-study")
    text = imrmc_study_text(store, "imrmc-study", "accuracy")
    assert text.startswith("Med-Vision Workbench study imrmc-study SYNTHETIC")
    readings = read_imrmc_text(text)
    truth = readings.drop_duplicates("case").set_index("case")["truth"]
    # build_world: every fourth case has no polyps
    assert {c: int(t) for c, t in truth.items()} == {
        f"case-{i:04d}": int(i % 4 != 3) for i in range(8)
    }
    judgments = study_judgments(store, "imrmc-study")
    current = judgments[~judgments["is_gold"] & ~judgments["is_duplicate"]]
    assert set(readings["reader"]) == set(current["rater"])
    assert set(readings["modality"]) == set(current["system_a"]) | set(current["system_b"])
    # a rater's score of a report is the mean over the pairs it was scored in
    first = current.iloc[0]
    same = (current.rater == first.rater) & (current.case == first.case)
    own = pd.concat(
        [
            current.loc[same & (current[f"system_{s}"] == first.system_a), f"likert_{s}_accuracy"]
            for s in ("a", "b")
        ]
    )
    row = readings[
        (readings.reader == first.rater)
        & (readings.case == first.case)
        & (readings.modality == first.system_a)
    ]
    assert float(row["score"].iloc[0]) == pytest.approx(own.mean())


def test_studies_export_imrmc_names_a_case_without_truth(tmp_home: Path) -> None:
    from typer.testing import CliRunner

    from studies.store.db import get_store
    from workbench.cli import app

    _rated_study(get_store(), tmp_home / "bench", "no-truth", no_truth="case-0002")
    out = tmp_home / "study.imrmc"
    runner = CliRunner()
    result = runner.invoke(app, ["studies", "export", "no-truth", "--out", str(out)])
    assert result.exit_code == 2
    assert "case case-0002 has no ground-truth findings" in result.output
    assert not out.exists()
    with get_store().session() as session:
        from studies.store.schema import Case

        session.query(Case).filter(Case.case_key == "case-0002").update(
            {"findings": {"no_polyps": True, "polyp_count": 0, "lesions": []}}
        )
    done = runner.invoke(app, ["studies", "export", "no-truth", "--out", str(out)])
    assert done.exit_code == 0, done.output
    assert "truth rows" in done.output and "-1,case-0002,truth,0" in out.read_text()


def read_imrmc_text(text: str) -> pd.DataFrame:
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".imrmc", delete=False) as handle:
        handle.write(text)
    return read_imrmc(handle.name)


def test_analysis_page_shows_the_mrmc_tables(tmp_home: Path) -> None:
    from streamlit.testing.v1 import AppTest

    from studies.readers import accounts
    from studies.store.db import get_store
    from workbench.access import SESSION_KEY

    views = Path(__file__).resolve().parents[2] / "workbench" / "views"
    store = get_store()
    _rated_study(store, tmp_home / "bench", "page-study")
    admin = accounts.create_account(store, "analyst", "admin", "Analysis-admin-pass-1")
    page = AppTest.from_file(str(views.parent / "app.py"), default_timeout=120)
    page.session_state[SESSION_KEY] = accounts.open_session(store, admin.id)
    page.run()
    page.switch_page(str(views / "analysis.py")).run()
    page.number_input(key="analysis_resamples").set_value(50)
    page.text_input(key="analysis_comparator").set_value("sys-gamma")
    page.button(key="analysis_run").click().run()
    assert not page.exception, page.exception
    expander = next(e for e in page.expander if e.label.startswith("MRMC"))
    titles = [m.value for m in expander.markdown]
    assert (
        "**Win rate against sys-gamma**" in titles and "**Likert accuracy: mean score**" in titles
    )
    frames = [d.value for d in expander.dataframe]
    win = frames[0]
    assert set(win["Modality"]) == {"sys-alpha", "sys-beta"}
    captions = " ".join(c.value for c in expander.caption)
    assert "Obuchowski-Rockette analysis" in captions and "SYNTHETIC" in captions


@pytest.mark.parametrize("analysis", ["rrrc", "frrc", "rrfc"])
def test_readers_who_all_agree_give_no_test_instead_of_a_division_by_zero(analysis: str) -> None:
    # Every reader scores every case the same in each modality: nothing varies beyond the
    # modality means (the Analysis page raised ZeroDivisionError on such a tiny study).
    rows = [
        {"reader": f"r{j}", "case": f"c{i}", "modality": m, "score": 3.0 + (m == "B")}
        for j in range(3)
        for i in range(4)
        for m in ("A", "B")
    ]
    result = mrmc(pd.DataFrame(rows), "mean", analysis=analysis)
    assert np.isnan(result.test["p"])
    assert result.differences["se"].isna().all()
    assert any("denominator is 0" in w for w in result.warnings)
