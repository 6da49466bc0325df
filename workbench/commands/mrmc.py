"""`medvision stats mrmc|power`: multi-reader multi-case inference and a study's size.

Registered on the `stats` group by `register(stats_app)`; pandas, scipy and the analysis
are imported inside the commands so that `medvision stats --help` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from studies.exports.render import FORMATS

JUDGMENT_COLUMNS = ("system_a", "system_b", "winner")


def _fail(message: str) -> None:
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(2)


def _emit(text: str, out: Path | None) -> None:
    if out is None:
        typer.echo(text, nl=not text.endswith("\n"))
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    typer.echo(f"Wrote {out}", err=True)


def _readings(input: Path, fom: str, baseline: str | None, criterion: str | None) -> Any:
    """Long-format readings from a readings file, an iMRMC file or a judgments file.

    A judgments file (system_a, system_b, winner) gives win readings against the baseline
    (--fom winrate) or one Likert criterion's scores per system (--fom mean --criterion).
    """

    from studies.reader_stats.mrmc import (
        MRMCError,
        likert_readings_from_judgments,
        load_readings_file,
        readings_from_judgments,
    )

    frame = load_readings_file(input)
    if not all(c in frame.columns for c in JUDGMENT_COLUMNS):
        return frame
    from studies.reader_stats.data import JudgmentsError, load_judgments_file

    try:
        judgments = load_judgments_file(input)
    except JudgmentsError as exc:
        raise MRMCError(str(exc)) from exc
    if fom == "winrate":
        if not baseline:
            raise MRMCError(
                "the win rate needs --baseline: the system every other is compared with"
            )
        return readings_from_judgments(judgments, baseline)
    if fom == "mean" and criterion:
        return likert_readings_from_judgments(judgments, criterion)
    raise MRMCError(
        f"{input.name} holds pairwise judgments: use --fom winrate --baseline SYSTEM, or "
        "--fom mean --criterion KEY for a Likert criterion"
    )


def mrmc_command(
    input: Path = typer.Option(
        ...,
        "--input",
        "-i",
        help="Readings (.csv/.jsonl: reader, case, modality, score[, truth]),"
        " an iMRMC file (.imrmc) or pairwise judgments.",
    ),
    fom: str = typer.Option(
        "auc", "--fom", help="Figure of merit: auc, mean, proportion or winrate."
    ),
    baseline: str | None = typer.Option(
        None, "--baseline", help="The modality (system) win rates are against (--fom winrate)."
    ),
    criterion: str | None = typer.Option(
        None, "--criterion", help="Likert criterion of a judgments file (--fom mean)."
    ),
    analysis: str = typer.Option("rrrc", "--analysis", help="rrrc, frrc or rrfc."),
    covariance: str | None = typer.Option(
        None,
        "--covariance",
        help="jackknife, bootstrap or ustat (default: jackknife; ustat for incomplete designs "
        "of mean-type figures of merit).",
    ),
    bootstrap: int = typer.Option(
        400, "--bootstrap", "-b", help="Resamples for --covariance bootstrap."
    ),
    seed: int = typer.Option(0, "--seed", help="Random seed of the bootstrap."),
    level: float = typer.Option(0.95, "--level", help="Interval level."),
    fmt: str = typer.Option("json", "--format", "-f", help="json, csv, latex or markdown."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write to this file."),
) -> None:
    """Obuchowski-Rockette MRMC analysis (Hillis df) of a reader study, for any figure of merit.

    Reader-averaged figure of merit per modality with CIs, differences with CIs, the F (or
    chi-square) test, the variance components and warnings. Nothing is written when the
    input is refused.
    """
    if fmt not in FORMATS:
        _fail(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    from studies.exports.render import render
    from studies.reader_stats.mrmc import FOMS, MRMCError, mrmc, result_tables

    if fom not in FOMS:
        _fail(f"--fom must be one of {', '.join(FOMS)}, not {fom!r}")
    try:
        readings = _readings(input, fom, baseline, criterion)
        result = mrmc(
            readings,
            fom,
            analysis=analysis,
            covariance=covariance,
            baseline=baseline,
            level=level,
            n_resamples=bootstrap,
            seed=seed,
            source=input.name,
        )
    except (MRMCError, ValueError) as exc:
        _fail(str(exc))
    if fmt == "json":
        text = json.dumps(result.to_json(), indent=2, default=str) + "\n"
    else:
        text = "\n".join(render(table, fmt) for table in result_tables(result))
    _emit(text, out)


def _parse_range(text: str, name: str) -> tuple[float, float]:
    parts = text.split(":")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        _fail(f"--{name.replace('_', '-')} must be a number or LOW:HIGH, not {text!r}")
    if len(values) not in (1, 2):
        _fail(f"--{name.replace('_', '-')} must be a number or LOW:HIGH, not {text!r}")
    return (values[0], values[-1])


def _int_list(text: str, name: str) -> list[int]:
    try:
        values = sorted({int(v) for v in text.split(",") if v.strip()})
    except ValueError:
        _fail(f"--{name} must be whole numbers separated by commas, not {text!r}")
    if not values or values[0] < 2:
        _fail(f"--{name} needs numbers of at least 2, not {text!r}")
    return values


def power_command(
    effect: float = typer.Option(
        ..., "--effect", help="Difference of the figure of merit to detect."
    ),
    pilot: Path | None = typer.Option(
        None, "--pilot", help="Pilot readings (as for `stats mrmc`): its variance components."
    ),
    fom: str = typer.Option(
        "auc", "--fom", help="Pilot's figure of merit: auc, mean, proportion, winrate."
    ),
    baseline: str | None = typer.Option(
        None, "--baseline", help="Pilot's baseline (--fom winrate)."
    ),
    criterion: str | None = typer.Option(None, "--criterion", help="Pilot's Likert criterion."),
    var_tr: str | None = typer.Option(
        None, "--var-tr", help="Without a pilot: reader x modality variance (or LOW:HIGH)."
    ),
    var_error: str | None = typer.Option(
        None,
        "--var-error",
        help="Without a pilot: FOM error variance at --pilot-cases (or LOW:HIGH).",
    ),
    corr1: str | None = typer.Option(
        None, "--corr1", help="Without a pilot: error correlation, same reader (or LOW:HIGH)."
    ),
    corr2: str | None = typer.Option(
        None, "--corr2", help="Without a pilot: error correlation, same modality (or LOW:HIGH)."
    ),
    corr3: str | None = typer.Option(
        None, "--corr3", help="Without a pilot: error correlation, neither (or LOW:HIGH)."
    ),
    pilot_cases: int | None = typer.Option(
        None, "--pilot-cases", help="Cases --var-error refers to."
    ),
    readers: str = typer.Option(
        "3,4,5,6,8,10,12", "--readers", help="Numbers of readers (comma-separated)."
    ),
    cases: str = typer.Option(
        "25,50,100,150,200,300,400", "--cases", help="Numbers of cases (comma-separated)."
    ),
    readers_per_case: int | None = typer.Option(
        None, "--readers-per-case", help="Each case read by this many readers (default: all)."
    ),
    analysis: str = typer.Option("rrrc", "--analysis", help="rrrc, frrc or rrfc."),
    against_value: bool = typer.Option(
        False,
        "--against-value",
        help="Test one modality against a fixed value (a win rate against 0.5) instead of "
        "a difference of two modalities.",
    ),
    alpha: float = typer.Option(0.05, "--alpha", help="Significance level of the test."),
    target: float = typer.Option(0.8, "--target", help="Power the design sentence aims at."),
    fmt: str = typer.Option("markdown", "--format", "-f", help="json, csv, latex or markdown."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write to this file."),
) -> None:
    """Power and sample size: a readers x cases grid of power for an effect (OR, Hillis df).

    The OR parameters come from a pilot study (--pilot) or are stated, as values or
    LOW:HIGH ranges; the first footer line names the smallest designs reaching --target.
    """
    if fmt not in FORMATS:
        _fail(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    reader_list, case_list = _int_list(readers, "readers"), _int_list(cases, "cases")
    from studies.exports.render import render
    from studies.reader_stats.mrmc import MRMCError, mrmc
    from studies.reader_stats.power import (
        ORParameters,
        power_grid,
        power_table,
        ranged_parameters,
        smallest_designs,
    )

    stated = {
        "var_tr": var_tr,
        "var_error": var_error,
        "corr1": corr1,
        "corr2": corr2,
        "corr3": corr3,
    }
    try:
        if pilot is not None:
            if any(v is not None for v in stated.values()):
                _fail("give either --pilot or the stated parameters (--var-tr ...), not both")
            result = mrmc(
                _readings(pilot, fom, baseline, criterion),
                fom,
                baseline=baseline,
                source=pilot.name,
            )
            params: Any = ORParameters.from_result(result)
        else:
            missing = [k for k, v in stated.items() if v is None]
            if missing or pilot_cases is None:
                names = [f"--{k.replace('_', '-')}" for k in missing]
                names += ["--pilot-cases"] if pilot_cases is None else []
                _fail(f"without --pilot, give {', '.join(names)}")
            ranges = {k: _parse_range(str(v), k) for k, v in stated.items()}
            pair = ranged_parameters(ranges, int(pilot_cases))  # type: ignore[arg-type]
            params = pair if any(lo != hi for lo, hi in ranges.values()) else pair[0]
        options = {"analysis": analysis, "alpha": alpha, "readers_per_case": readers_per_case}
        grid = power_grid(
            params, effect, reader_list, case_list, against_value=against_value, **options
        )
    except (MRMCError, ValueError) as exc:
        _fail(str(exc))
    table = power_table(grid, params, effect, target=target, against_value=against_value, **options)
    if fmt == "json":
        document = {
            "effect": effect,
            "target": target,
            "analysis": analysis,
            "alpha": alpha,
            "readers_per_case": readers_per_case,
            "power": [
                {"readers": int(j), "cases": int(k), "power": float(grid.loc[j, k])}
                for j in grid.index
                for k in grid.columns
            ],
            "smallest": [
                {"readers": j, "cases": k, "power": p} for j, k, p in smallest_designs(grid, target)
            ],
            "sentence": table.footer[0],
            "parameters": [vars(p) for p in (params if isinstance(params, tuple) else (params,))],
        }
        if grid.attrs.get("ranged"):
            optimistic = grid.attrs["optimistic"]
            for row in document["power"]:
                row["power_optimistic"] = float(optimistic.loc[row["readers"], row["cases"]])
        text = json.dumps(document, indent=2, default=str) + "\n"
    else:
        text = render(table, fmt)
    _emit(text, out)


def register(stats_app: typer.Typer) -> None:
    """Add `mrmc` and `power` to the `stats` group."""
    stats_app.command("mrmc")(mrmc_command)
    stats_app.command("power")(power_command)


def imrmc_study_text(store: Any, study: str, criterion: str | None = None) -> str:
    """Study `study` in iMRMC's input format: raters as readers, systems as modalities, one
    Likert criterion's score of each report (a report scored in several pairs: its mean),
    and the truth rows: 1 when the case's ground-truth findings have a polyp, 0 when they
    say no polyps. Raises MRMCError naming the cases without ground truth.
    """
    import pandas as pd
    from sqlalchemy import select

    from studies.reader_stats.data import criteria_of
    from studies.reader_stats.mrmc import MRMCError, imrmc_text, likert_readings_from_judgments
    from studies.readers.judgments import study_judgments
    from studies.store.schema import Case, Study, StudyItem

    judgments = study_judgments(store, study)
    keys = criteria_of(judgments)
    if not keys:
        raise MRMCError(f"study {study!r} has no Likert criteria: iMRMC needs a score per report")
    chosen = criterion or keys[0]
    long = likert_readings_from_judgments(judgments, chosen)
    with store.session() as session:
        # The cases by id: PostgreSQL cannot compare JSON values for a DISTINCT.
        in_study = (
            select(StudyItem.case_id)
            .join(Study, Study.id == StudyItem.study_id)
            .where(Study.name == study)
        )
        rows = session.execute(
            select(Case.case_key, Case.findings).where(Case.id.in_(in_study))
        ).all()
    truth: dict[str, int] = {}
    for key, findings in rows:
        if isinstance(findings, dict) and findings.get("no_polyps") is not None:
            truth[key] = 0 if findings["no_polyps"] else 1
    lacking = sorted(set(long["case"]) - set(truth))
    if lacking:
        shown = ", ".join(lacking[:8]) + (
            f" and {len(lacking) - 8} more" if len(lacking) > 8 else ""
        )
        raise MRMCError(
            f"study {study!r}: case{'s' if len(lacking) > 1 else ''} {shown} "
            f"ha{'ve' if len(lacking) > 1 else 's'} no ground-truth findings (polyps or none), "
            "so iMRMC's truth rows cannot be written; import the benchmark with its findings"
        )
    named = pd.concat([long["reader"], long["case"], long["modality"]])
    commas = sorted({str(v) for v in named if "," in str(v)})
    if commas:
        raise MRMCError(f"iMRMC fields are comma-separated; rename {', '.join(commas[:5])}")
    long["truth"] = long["case"].map(truth)
    label = " SYNTHETIC" if judgments.attrs.get("synthetic") else ""
    description = (
        f"Med-Vision Workbench study {study}{label}: Likert '{chosen}' per report; truth 1 = "
        "polyp in the ground-truth findings. Research software, not a medical device."
    )
    return imrmc_text(long, description)


def export_imrmc(store: Any, study: str, out: Path, criterion: str | None) -> None:
    """`medvision studies export STUDY --format imrmc`: write the file, or only a message."""
    from studies.reader_stats.data import JudgmentsError
    from studies.reader_stats.mrmc import MRMCError

    try:
        text = imrmc_study_text(store, study, criterion)
    except (MRMCError, JudgmentsError) as exc:
        _fail(str(exc))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    data = text.split("BEGIN DATA:\n", 1)[1].splitlines()
    readings = sum(1 for line in data if not line.startswith("-1,"))
    typer.echo(f"Wrote {readings} readings and the truth rows to {out} (iMRMC format).")
