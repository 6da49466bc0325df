"""`medvision prefs export|preview|automatic`: preference pairs from reader-study judgments,
and on-policy pairs from an annotation study's corrections of the model's reports."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from model.options import Option, given, options
from studies.preferences.policy import HarvestPolicy, PreferenceError
from workbench.options import typer_parameters, with_parameters
from workbench.study_names import study_option

prefs_app = typer.Typer()
console = Console(stderr=True)


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(code)


def _policy_options(names: tuple[str, ...] = ()) -> list[Option]:
    """The HarvestPolicy fields as options, in declaration order (only `names` if given);
    a field that declares `parse` (a list of criterion keys) is one comma-separated text."""
    return [option for option in options(HarvestPolicy) if not names or option.name in names]


def policy_options(*names: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a command the HarvestPolicy options (declared once, on the dataclass fields)
    and call it with `policy=HarvestPolicy(...)` built from them by name."""
    found = _policy_options(names)

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        def run(**values: Any) -> Any:
            chosen = {option.name: values.pop(option.name, None) for option in found}
            return command(**values, policy=HarvestPolicy(**given(chosen, found)))

        own = [p for p in inspect.signature(command, eval_str=True).parameters.values()]
        run.__doc__ = command.__doc__
        run.__name__ = command.__name__
        run.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [p for p in own if p.name != "policy"]
            + [inspect.Parameter("values", inspect.Parameter.VAR_KEYWORD)]
        )
        return with_parameters(run, typer_parameters(found))

    return decorate


def _print_counts(result: Any) -> None:  # a studies.preferences.harvest.HarvestResult
    counts = result.counts
    typer.echo(
        f"study {result.study}: {counts['pairs']} pairs ({counts['train']} train / "
        f"{counts['validation']} validation), human {counts['human_pairs']}, automatic "
        f"{counts['automatic_pairs']}; judged items {counts['items_judged']}/{counts['items']}"
    )
    if counts["dropped"]:
        typer.echo("dropped: " + ", ".join(f"{k} {v}" for k, v in counts["dropped"].items()))
    if result.synthetic:
        typer.echo("SYNTHETIC data.")


def _overwrite_option() -> Any:
    return typer.Option(
        False, "--overwrite/--no-overwrite", help="Replace an existing export in --out."
    )


def _check_out(out: Path, overwrite: bool) -> None:
    """Refuse a taken --out before any work, naming the flags that fix it."""
    from studies.preferences.harvest import out_dir_taken

    if out_dir_taken(out) and not overwrite:
        _fail(
            f"{out} exists and is not empty: choose another --out folder, or pass --overwrite "
            "to replace it"
        )


def _harvest(study: str, policy: HarvestPolicy) -> Any:  # a HarvestResult
    """A comparison study's judgments, or an annotation study's corrections (on-policy pairs:
    the clinician's correction chosen, the model's report rejected)."""
    from studies.preferences.harvest import harvest_preferences
    from studies.readers.annotation import is_annotation_study
    from studies.readers.annotation_results import on_policy_harvest
    from studies.readers.design import StudyError
    from studies.store.db import get_store

    store = get_store()
    try:
        annotation = is_annotation_study(store, study)
    except StudyError:
        annotation = False  # the harvest names the studies there are
    if annotation:
        try:
            return on_policy_harvest(store, study, policy)
        except StudyError as exc:
            raise PreferenceError(str(exc)) from None
    return harvest_preferences(store, study, policy)


def _export(result: Any, out: Path, overwrite: bool) -> Any:  # an ExportSummary
    import datasets  # noqa: F401 - loaded first so quiet_libraries() quietens its bars

    from model.quiet import quiet_libraries
    from studies.preferences.harvest import export_preferences

    # datasets prints "Casting / Saving the dataset" bars: not the workbench's to show.
    with quiet_libraries():
        return export_preferences(result, out, overwrite=overwrite)


@prefs_app.command("export")
@policy_options()
def prefs_export(
    study: str = study_option(required=True),
    out: Path = typer.Option(..., help="Output folder (must be new or empty)."),
    overwrite: bool = _overwrite_option(),
    *,
    policy: HarvestPolicy,
) -> None:
    """Harvest a study's judgments into TRL vision preference pairs (datasets + JSONL); an
    annotation study gives on-policy pairs (each correction chosen, the model's report
    rejected)."""
    _check_out(out, overwrite)
    try:
        result = _harvest(study, policy)
        summary = _export(result, out, overwrite)
    except PreferenceError as exc:
        _fail(str(exc))
    _print_counts(result)
    typer.echo(
        f"wrote {summary.out_dir} ({summary.n_train} train, {summary.n_validation} validation, "
        f"{summary.n_images} images; data sha256 {summary.data_hash[:16]})"
    )


@prefs_app.command("preview")
@policy_options()
def prefs_preview(
    study: str = study_option(required=True),
    limit: int = typer.Option(5, help="Pairs to print."),
    *,
    policy: HarvestPolicy,
) -> None:
    """Counts and the first pairs a policy gives, without writing anything."""
    try:
        result = _harvest(study, policy)
    except PreferenceError as exc:
        _fail(str(exc))
    _print_counts(result)
    for row in result.preview(limit):
        typer.echo(json.dumps(row, ensure_ascii=False))


@prefs_app.command("automatic")
@policy_options("validation_fraction", "seed", "prompt")
def prefs_automatic(
    benchmark: str = typer.Option(..., help="Benchmark name."),
    system: list[str] = typer.Option(..., help="System whose reports are checked (repeat)."),
    out: Path = typer.Option(..., help="Output folder (must be new or empty)."),
    split: str = typer.Option("train", help="Split (train keeps the test cases unseen)."),
    overwrite: bool = _overwrite_option(),
    *,
    policy: HarvestPolicy,
) -> None:
    """Cold-start pairs without a study: reference vs reports with a significant clinical error."""
    policy.automatic = True
    _check_out(out, overwrite)
    try:
        from studies.preferences.harvest import harvest_automatic
        from studies.store.db import get_store

        result = harvest_automatic(get_store(), benchmark, list(system), split, policy)
        summary = _export(result, out, overwrite)
    except PreferenceError as exc:
        _fail(str(exc))
    _print_counts(result)
    typer.echo(
        f"wrote {summary.out_dir} ({summary.n_train} train, {summary.n_validation} validation "
        "automatic pairs)"
    )


# --- train ----------------------------------------------------------------------------
