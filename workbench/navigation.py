"""The app's pages, in menu order: file under workbench/views, title, icon, roles, section.

The folder is not called `pages/`: Streamlit would then serve each file on its own (without
app.py's log-in and role checks) on the first request after a restart.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PageSpec:
    file: str
    title: str
    icon: str
    # Who may open the page; "public" pages need no log-in.
    roles: tuple[str, ...] = ("admin",)
    default: bool = False
    section: str = ""


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
        "studies_admin.py",
        "Reader studies",
        ":material/groups:",
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
