"""`medvision studies list|create|start|invite|enrol|panel|pause|resume|close|export|progress|
adjudicate|agreement|references`."""

from __future__ import annotations

from pathlib import Path

import typer

from workbench.study_names import legacy_study_argument, study_name, study_option

studies_app = typer.Typer(no_args_is_help=True)


def _fail(message: str) -> None:
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(1)


@studies_app.command("list")
def list_command() -> None:
    """Every study with its status and progress."""
    from studies.readers.progress import list_studies
    from studies.store.db import get_store

    rows = list_studies(get_store())
    if not rows:
        typer.echo("No reader study yet.")
    for row in rows:
        digest = (row.config_hash or "-")[:12]
        typer.echo(
            f"{row.name}\t{row.status}\traters {row.n_raters}\t"
            f"done {row.n_done}/{row.n_assignments}\tconfig {digest}"
        )


@studies_app.command("create")
def create_command(
    name: str = typer.Option(..., help="Study name (raters see it; do not name systems)."),
    benchmark: str = typer.Option(..., help="Benchmark name."),
    system: list[str] = typer.Option(
        ..., "--system", "-s", help="A system (two or more; an annotation study: its one model)."
    ),
    kind: str = typer.Option(
        "comparison",
        help="comparison (raters judge pairs of reports) or annotation (clinicians correct "
        "the model's report and findings).",
    ),
    annotation_source: str = typer.Option(
        "corrected",
        help="Annotation study: corrected (the model's report is the draft) or written "
        "(from scratch; the model's report is not shown).",
    ),
    split: str = typer.Option("test", help="Benchmark split."),
    comparator: str | None = typer.Option(
        None, help="Compare each system against this one instead of all pairs."
    ),
    overlap: int = typer.Option(2, help="Raters per pair (annotation: annotators per case)."),
    seed: int = typer.Option(0, help="Randomisation seed (stored with the study)."),
    sample: int | None = typer.Option(None, help="Sample this many cases (default: all)."),
    no_stratify: bool = typer.Option(False, "--no-stratify", help="Sample without strata."),
    duplicates: float = typer.Option(0.1, help="Fraction of items shown again, sides swapped."),
    washout_cases: int | None = typer.Option(
        None, help="A duplicate comes at least this many tasks after its case."
    ),
    washout_days: float = typer.Option(
        0.0, help="A duplicate is shown no sooner than this many days after its case."
    ),
    gold_file: Path | None = typer.Option(
        None, help="Gold items, lines 'case_key, better system, worse system'."
    ),
    calibration_file: Path | None = typer.Option(
        None, help="Training cases judged first, lines 'case_key, better system, worse system'."
    ),
    calibration_threshold: float = typer.Option(
        0.0, help="Share of training answers matching the reference to open the main cases."
    ),
    flag_policy: str = typer.Option(
        "reassign",
        help="A case a rater cannot assess: reassign (to another rater, the overlap kept) or "
        "exclude (that copy left out, counted).",
    ),
    guidelines_file: Path | None = typer.Option(None, help="Guidelines text (Markdown)."),
    form_file: Path | None = typer.Option(
        None,
        "--form",
        help="Rating form (.toml or .json): criteria with key, label, question, anchors 1-5, "
        "harm = true on the harm criterion (default: accuracy, completeness, safety).",
    ),
    rater: list[str] = typer.Option([], "--rater", "-r", help="Enrol this rater account."),
) -> None:
    """Create a draft study (and enrol raters); start it with `studies start`."""
    from studies.readers.design import StudyDesign, StudyError, create_study, parse_gold_lines
    from studies.readers.enrolment import enrol_rater
    from studies.readers.form import FormError, default_form, default_guidelines, load_form_file
    from studies.store.db import get_store

    try:
        # The form is checked first: a bad form file creates nothing.
        form = load_form_file(form_file) if form_file else default_form()
        gold = parse_gold_lines(gold_file.read_text(encoding="utf-8")) if gold_file else []
        calibration = (
            parse_gold_lines(calibration_file.read_text(encoding="utf-8"))
            if calibration_file
            else []
        )
        guidelines = (
            guidelines_file.read_text(encoding="utf-8")
            if guidelines_file
            else default_guidelines(form)
        )
        design = StudyDesign(
            name=name,
            benchmark=benchmark,
            systems=list(system),
            split=split,
            comparisons="comparator" if comparator else "all_pairs",
            comparator=comparator,
            overlap=overlap,
            seed=seed,
            sample_size=sample,
            stratify=not no_stratify,
            gold=gold,
            duplicate_fraction=duplicates,
            washout_cases=washout_cases,
            washout_days=washout_days,
            calibration=calibration,
            calibration_threshold=calibration_threshold,
            guidelines=guidelines,
            form=form,
            flag_policy=flag_policy,
            kind=kind,
            annotation_source=annotation_source,
        )
        store = get_store()
        study_id = create_study(store, design)
        for username in rater:
            enrol_rater(store, study_id, username)
    except (StudyError, FormError, OSError) as exc:
        _fail(str(exc))
    typer.echo(f"Created draft study {name!r} with {len(rater)} raters enrolled.")


@studies_app.command("enrol")
def enrol_command(
    usernames: list[str] = typer.Argument(..., help="Rater accounts to enrol."),
    study: str | None = study_option(),
) -> None:
    """Enrol rater accounts in a study: `studies enrol --study NAME USER...`. A running study
    takes each through a panel amendment (gold items and a fair share of unjudged tasks)."""
    from studies.readers.design import StudyError
    from studies.readers.enrolment import enrol_rater
    from studies.readers.panel import add_rater
    from studies.readers.progress import list_studies
    from studies.store.db import get_store

    if study is None and len(usernames) > 1:
        # The old spelling: `studies enrol STUDY USER...`.
        study = study_name(None, usernames[0], "studies enrol")
        usernames = usernames[1:]
    study = study_name(study, None, "studies enrol")
    store = get_store()
    status = next((s.status for s in list_studies(store) if s.name == study), None)
    try:
        for username in usernames:
            if status in ("active", "paused"):
                change = add_rater(store, study, username)
                typer.echo(change.summary() if change else f"{username} is already on the panel.")
            else:
                enrol_rater(store, study, username)
    except StudyError as exc:
        _fail(str(exc))
    typer.echo(f"Enrolled {', '.join(usernames)} in {study!r}.")


@studies_app.command("panel")
def panel_command(
    study: str | None = study_option(),
    remove: list[str] = typer.Option([], help="Deactivate this rater (repeatable)."),
    replace: list[str] = typer.Option([], help="OLD:NEW, NEW takes over OLD's tasks."),
    reclaim_days: float | None = typer.Option(
        None, help="Hand on the tasks of raters who submitted nothing for this many days."
    ),
) -> None:
    """Change the panel of a running study (each change is a recorded, hashed amendment)."""
    from datetime import timedelta

    from studies.readers.design import StudyError
    from studies.readers.panel import deactivate_rater, reclaim_overdue, replace_rater
    from studies.store.db import get_store

    study = study_name(study, None, "studies panel")
    pairs = [value.split(":", 1) for value in replace]
    if any(len(p) != 2 or not all(p) for p in pairs):
        _fail("--replace: write OLD:NEW, e.g. --replace rater2:rater7")
    if not (remove or pairs or reclaim_days is not None):
        _fail("nothing to change: give --remove USER, --replace OLD:NEW or --reclaim-days N")
    store = get_store()
    try:
        for username in remove:
            typer.echo(deactivate_rater(store, study, username).summary())
        for old, new in pairs:
            typer.echo(replace_rater(store, study, old, new).summary())
        if reclaim_days is not None:
            typer.echo(reclaim_overdue(store, study, timedelta(days=reclaim_days)).summary())
    except StudyError as exc:
        _fail(str(exc))


@studies_app.command("start")
def start_command(
    study: str | None = study_option(), positional: str | None = legacy_study_argument()
) -> None:
    """Freeze and hash the configuration, build the items and assign them."""
    from studies.readers.design import StudyError
    from studies.readers.lifecycle import start_study
    from studies.store.db import get_store

    study = study_name(study, positional, "studies start")
    try:
        report = start_study(get_store(), study)
    except StudyError as exc:
        _fail(str(exc))
    typer.echo(report.summary())


def _status(study: str, action: str) -> None:
    from studies.readers.design import StudyError
    from studies.readers.lifecycle import set_study_status
    from studies.store.db import get_store

    try:
        status = set_study_status(get_store(), study, action)
    except StudyError as exc:
        _fail(str(exc))
    typer.echo(f"Study {study!r} is now {status}.")


@studies_app.command("pause")
def pause_command(
    study: str | None = study_option(), positional: str | None = legacy_study_argument()
) -> None:
    """Pause a study: raters cannot submit until it resumes."""
    _status(study_name(study, positional, "studies pause"), "pause")


@studies_app.command("resume")
def resume_command(
    study: str | None = study_option(), positional: str | None = legacy_study_argument()
) -> None:
    """Resume a paused study."""
    _status(study_name(study, positional, "studies resume"), "resume")


@studies_app.command("close")
def close_command(
    study: str | None = study_option(), positional: str | None = legacy_study_argument()
) -> None:
    """Close a study for good."""
    _status(study_name(study, positional, "studies close"), "close")


@studies_app.command("progress")
def progress_command(
    study: str | None = study_option(), positional: str | None = legacy_study_argument()
) -> None:
    """Done / assigned per rater and judged / needed per pair."""
    from studies.readers.design import StudyError
    from studies.readers.progress import study_progress
    from studies.store.db import get_store

    study = study_name(study, positional, "studies progress")
    try:
        progress = study_progress(get_store(), study)
    except StudyError as exc:
        _fail(str(exc))
    typer.echo(f"{progress.study} ({progress.status}): {progress.done}/{progress.assigned}")
    for rater in progress.raters:
        typer.echo(f"  rater {rater.username}\t{rater.done}/{rater.assigned}")
    for pair in progress.pairs:
        typer.echo(f"  pair {pair.system_a} vs {pair.system_b}\t{pair.done}/{pair.needed}")


@studies_app.command("invite")
def invite_command(
    study: str | None = study_option(
        "Enrol the invitee in this study (a running one through a panel amendment)."
    ),
    role: str = typer.Option("rater", help="rater or admin."),
    username: str | None = typer.Option(None, help="Fix the invitee's username."),
    hours: float = typer.Option(72.0, help="Hours the link stays valid."),
    base_url: str = typer.Option("http://127.0.0.1:8501", help="Where the app is served."),
) -> None:
    """Print a single-use invite link (shown once)."""
    from studies.readers import accounts
    from studies.readers.progress import list_studies
    from studies.store.db import get_store

    store = get_store()
    study_id = None
    if study:
        study_id = next((s.id for s in list_studies(store) if s.name == study), None)
        if study_id is None:
            _fail(f"no study named {study!r}")
    try:
        token = accounts.create_invite(
            store, role=role, username=username, study_id=study_id, hours=hours
        )
    except (accounts.AccountError, accounts.AuthError) as exc:
        _fail(str(exc))
    typer.echo(f"{base_url.rstrip('/')}/invite?token={token}")


EXPORT_FORMATS = ("csv", "jsonl", "imrmc")


@studies_app.command("export")
def export_command(
    study: str | None = study_option(),
    positional: str | None = legacy_study_argument(),
    out: Path = typer.Option(..., "--out", "-o", help="Output file (.csv, .jsonl or .imrmc)."),
    fmt: str | None = typer.Option(None, "--format", help="csv, jsonl or imrmc (default: suffix)."),
    criterion: str | None = typer.Option(
        None, "--criterion", help="imrmc: the Likert criterion scored (default: the first)."
    ),
) -> None:
    """Write every judgment (one row each, corrections included) to CSV or JSONL, or the
    study in iMRMC's input format (truth rows from the cases' ground-truth findings). An
    annotation study: every annotation, with what an adjudicated one settles."""
    from studies.readers.design import StudyError
    from studies.readers.rating import export_judgments
    from studies.store.db import get_store

    study = study_name(study, positional, "studies export")
    chosen = (fmt or out.suffix.lstrip(".")).lower()
    if chosen not in EXPORT_FORMATS:
        given = f"--format {fmt!r}" if fmt else f"the --out file's suffix ({out.name!r})"
        _fail(
            f"{given} names no export format: pass --format {' / '.join(EXPORT_FORMATS)}, "
            "or end the --out file in .csv, .jsonl or .imrmc"
        )
    from studies.readers.annotation import is_annotation_study
    from studies.readers.annotation_results import export_annotations

    try:
        annotation = is_annotation_study(get_store(), study)
    except StudyError as exc:
        _fail(str(exc))
    if chosen == "imrmc":
        if annotation:
            _fail(f"study {study!r} is an annotation study: export it as csv or jsonl")
        from workbench.commands.mrmc import export_imrmc

        export_imrmc(get_store(), study, out, criterion)
        return
    try:
        export = export_annotations if annotation else export_judgments
        text = export(get_store(), study, chosen)
    except StudyError as exc:
        _fail(str(exc))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    rows = text.count("\n") - (1 if chosen == "csv" else 0)
    typer.echo(f"Wrote {rows} {'annotations' if annotation else 'judgments'} to {out}.")


@studies_app.command("adjudicate")
def adjudicate_command(
    study: str | None = study_option(),
    adjudicator: str = typer.Option(..., help="The senior rater (not on the study's panel)."),
    harm_spread: int | None = typer.Option(
        2, help="Comparison: a harm-criterion spread that needs adjudication (0: not checked)."
    ),
    preference_split: bool = typer.Option(
        True, "--preference-split/--no-preference-split", help="Comparison: a split outcome."
    ),
    fields: str | None = typer.Option(
        None, help="Annotation: comma-separated findings fields that must agree (default all)."
    ),
    report: bool = typer.Option(
        False, "--report/--no-report", help="Annotation: the report texts must agree too."
    ),
) -> None:
    """Send the items (comparison) or cases (annotation) whose raters disagree to a senior
    rater's queue: one recorded, hashed amendment."""
    from studies.readers.adjudication import AdjudicationRule, queue_adjudication
    from studies.readers.annotation import is_annotation_study
    from studies.readers.annotation_results import (
        COMPARED_FIELDS,
        AnnotationRule,
        queue_annotation_adjudication,
    )
    from studies.readers.design import StudyError
    from studies.store.db import get_store

    study = study_name(study, None, "studies adjudicate")
    store = get_store()
    try:
        if is_annotation_study(store, study):
            chosen = tuple(f.strip() for f in fields.split(",") if f.strip()) if fields else None
            rule = AnnotationRule(fields=chosen or COMPARED_FIELDS, report=report)
            change = queue_annotation_adjudication(store, study, adjudicator, rule)
        else:
            rule = AdjudicationRule(
                preference_split=preference_split, harm_spread=harm_spread or None
            )
            change = queue_adjudication(store, study, adjudicator, rule)
    except StudyError as exc:
        _fail(str(exc))
    typer.echo(change.summary())


REPORT_FORMATS = ("text", "json", "csv")


def _format(fmt: str, allowed: tuple[str, ...] = REPORT_FORMATS) -> str:
    chosen = fmt.lower()
    if chosen not in allowed:
        typer.echo(f"Error: --format {fmt!r}: use {', '.join(allowed)}", err=True)
        raise typer.Exit(2)
    return chosen


@studies_app.command("agreement")
def agreement_command(
    study: str | None = study_option(),
    fmt: str = typer.Option("text", "--format", help="text, json or csv."),
    resamples: int = typer.Option(1000, help="Bootstrap resamples of Cohen's kappa."),
    seed: int = typer.Option(0, help="Bootstrap seed."),
) -> None:
    """An annotation study: agreement per findings field between the two annotators of each
    case (percent, Cohen, Fleiss, Gwet AC1 with 95% intervals)."""
    import json

    from model.notice import RESEARCH_NOTICE
    from studies.readers.annotation import is_annotation_study
    from studies.readers.annotation_results import annotation_agreement
    from studies.readers.design import StudyError
    from studies.readers.study_export import export_text
    from studies.store.db import get_store

    study = study_name(study, None, "studies agreement")
    chosen = _format(fmt)
    store = get_store()
    try:
        if not is_annotation_study(store, study):
            _fail(
                f"study {study!r} is a comparison study: `medvision stats study` has its agreement"
            )
        rows = [
            a.to_dict()
            for a in annotation_agreement(store, study, seed=seed, n_resamples=resamples)
        ]
    except StudyError as exc:
        _fail(str(exc))
    footer = (
        f"Study {study}: first two annotators of each case; lesions paired as the clinical score "
        f"pairs them; an empty value is a value of its own. Cohen: bootstrap over units "
        f"({resamples} resamples, seed {seed}); Fleiss and Gwet AC1: linearised intervals; "
        f"percent: Wilson. {RESEARCH_NOTICE}"
    )
    if chosen == "json":
        typer.echo(json.dumps({"fields": rows, "footer": footer}, indent=2, default=str))
        return
    if chosen == "csv":
        with_footer = [{**row, "footer": footer} for row in rows]
        typer.echo(export_text(with_footer, [*rows[0], "footer"], "csv"), nl=False)
        return

    def cell(value: float, low: float, high: float) -> str:
        if value != value:
            return "-"
        return f"{value:.2f} [{low:.2f}, {high:.2f}]" if low == low else f"{value:.2f}"

    typer.echo(
        f"{'field':<20} {'level':<7} {'n':>4}  {'agreement':<20} {'Cohen':<20} "
        f"{'Fleiss':<20} Gwet AC1"
    )
    for row in rows:
        typer.echo(
            f"{row['field']:<20} {row['level']:<7} {row['n']:>4}  "
            f"{cell(row['agreement'], row['agreement_low'], row['agreement_high']):<20} "
            f"{cell(row['cohen_kappa'], row['cohen_low'], row['cohen_high']):<20} "
            f"{cell(row['fleiss_kappa'], row['fleiss_low'], row['fleiss_high']):<20} "
            f"{cell(row['gwet_ac1'], row['gwet_low'], row['gwet_high'])}"
        )
    typer.echo("")
    typer.echo(footer)


@studies_app.command("references")
def references_command(
    study: str | None = study_option(),
    to: str | None = typer.Option(
        None,
        "--to",
        help="Write the settled references into this benchmark (BENCH or BENCH/SPLIT).",
    ),
    fmt: str = typer.Option("text", "--format", help="text or json (the list of cases)."),
) -> None:
    """An annotation study's expert references per case (adjudicated, agreed, or still in
    disagreement); with --to, copy the settled ones into a benchmark of their own."""
    import json

    from studies.readers.annotation_results import expert_references, write_expert_references
    from studies.readers.design import StudyError
    from studies.store.db import get_store

    study = study_name(study, None, "studies references")
    chosen = _format(fmt, ("text", "json"))
    store = get_store()
    try:
        if to is not None:
            benchmark, _, split = to.partition("/")
            typer.echo(write_expert_references(store, study, benchmark, split or "test").summary())
            return
        references = expert_references(store, study)
    except StudyError as exc:
        _fail(str(exc))
    if chosen == "json":
        rows = [
            {
                "case": r.case_key,
                "status": r.status,
                "report": r.report,
                "findings": r.findings,
                "provenance": r.provenance,
                "reasons": r.reasons,
            }
            for r in references
        ]
        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    for reference in references:
        detail = "; ".join(reference.reasons) if reference.reasons else (reference.report or "")
        typer.echo(f"{reference.case_key}\t{reference.status}\t{detail[:100]}")
