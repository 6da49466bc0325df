"""The app's pages, in menu order: (file under workbench/pages, title, icon, roles)."""

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


PAGES: list[PageSpec] = [
    PageSpec("home.py", "Home", ":material/home:", ("public", "admin", "rater"), default=True),
    PageSpec("rate.py", "Rate reports", ":material/rate_review:", ("rater", "admin")),
    PageSpec("studies_admin.py", "Reader studies", ":material/groups:", ("admin",)),
    PageSpec("login.py", "Log in", ":material/login:", ("public",)),
    PageSpec("invite.py", "Accept invite", ":material/mail:", ("public",)),
    PageSpec("benchmarks.py", "Benchmarks", ":material/dataset:", ("admin",)),
    PageSpec("run.py", "Run", ":material/play_circle:", ("admin",)),
    PageSpec("case.py", "Case", ":material/compare:", ("admin",)),
    PageSpec("report.py", "Single-case report", ":material/description:", ("admin",)),
    PageSpec("analysis.py", "Analysis", ":material/query_stats:", ("admin",)),
    PageSpec("leaderboard.py", "Leaderboard", ":material/leaderboard:", ("admin",)),
    PageSpec("preferences.py", "Preferences", ":material/thumbs_up_down:", ("admin",)),
    PageSpec("training.py", "Training", ":material/model_training:", ("admin",)),
]
