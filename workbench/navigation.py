"""The app's pages, in menu order: file under workbench/views, title, icon, roles, section.

The folder is not called `pages/`: Streamlit would then serve each file on its own (without
app.py's log-in and role checks) on the first request after a restart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from studies.readers.accounts import AccountInfo


@dataclass(frozen=True)
class PageSpec:
    file: str
    title: str
    icon: str
    # Who may open the page; "public" pages need no log-in.
    roles: tuple[str, ...] = ("admin",)
    default: bool = False
    section: str = ""
    # Shown only to the accounts of `roles` for which this holds (None: to all of them).
    shown_to: Callable[[AccountInfo], bool] | None = None


def _on_annotation_panel(account: AccountInfo) -> bool:
    """The account annotates or adjudicates in a started annotation study."""
    from studies.readers.annotation import annotation_studies
    from workbench.access import app_store

    return bool(annotation_studies(app_store(), account.id))


PAGES: list[PageSpec] = [
    PageSpec("home.py", "Home", ":material/home:", ("public", "admin", "rater"), default=True),
    PageSpec(
        "rate.py",
        "Rate reports",
        ":material/rate_review:",
        ("rater", "admin"),
        section="Reader studies",
    ),
    PageSpec(
        "annotate.py",
        "Annotate cases",
        ":material/edit_note:",
        ("rater", "admin"),
        section="Reader studies",
        shown_to=_on_annotation_panel,
    ),
    PageSpec(
        "studies_admin.py",
        "Reader studies",
        ":material/groups:",
        ("admin",),
        section="Reader studies",
    ),
    PageSpec(
        "annotation_results.py",
        "Annotation results",
        ":material/fact_check:",
        ("admin",),
        section="Reader studies",
    ),
    PageSpec("login.py", "Log in", ":material/login:", ("public",)),
    PageSpec("invite.py", "Accept invite", ":material/mail:", ("public",)),
    PageSpec(
        "benchmarks.py",
        "Benchmarks",
        ":material/dataset:",
        ("admin",),
        section="Benchmarks and runs",
    ),
    PageSpec("run.py", "Run", ":material/play_circle:", ("admin",), section="Benchmarks and runs"),
    PageSpec("case.py", "Case", ":material/compare:", ("admin",), section="Benchmarks and runs"),
    PageSpec(
        "report.py",
        "Single-case report",
        ":material/description:",
        ("admin",),
        section="Benchmarks and runs",
    ),
    PageSpec("analysis.py", "Analysis", ":material/query_stats:", ("admin",), section="Results"),
    PageSpec(
        "leaderboard.py", "Leaderboard", ":material/leaderboard:", ("admin",), section="Results"
    ),
    PageSpec(
        "preferences.py", "Preferences", ":material/thumbs_up_down:", ("admin",), section="Training"
    ),
    PageSpec(
        "training.py", "Training", ":material/model_training:", ("admin",), section="Training"
    ),
]


def visible_pages(account: AccountInfo | None) -> list[PageSpec]:
    """The pages the menu offers `account` (None: logged out), in menu order."""
    role = account.role if account else "public"
    return [
        spec
        for spec in PAGES
        if role in spec.roles
        and (spec.shown_to is None or (account is not None and spec.shown_to(account)))
    ]


def landing_page(account: AccountInfo) -> str:
    """Where a rater lands after logging in: the annotation page when every started study
    of theirs is an annotation study, else the rating page."""
    from studies.readers.annotation import annotation_studies
    from studies.readers.rating import rater_studies
    from workbench.access import app_store

    store = app_store()
    annotating = set(annotation_studies(store, account.id))
    rating = {s.id for s in rater_studies(store, account.id) if s.status != "draft"}
    return "annotate.py" if annotating and rating <= annotating else "rate.py"
