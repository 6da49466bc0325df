"""The workbench's pages through Streamlit's AppTest: a page opened as a logged-in account
(or logged out), and the rendered element tree as text, which the blinding and escaping tests
search (labels, help texts, widget ids, media URLs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from streamlit.testing.v1 import AppTest

from workbench.access import SESSION_KEY

VIEWS = Path(__file__).resolve().parents[2] / "workbench" / "views"
APP = str(VIEWS.parent / "app.py")


def open_page(page: str, token: str | None, state: dict[str, Any] | None = None) -> AppTest:
    """The app run once with `token`'s session (none: logged out), then switched to `page`
    (a file of workbench/views) with `state` set in the session as another page would set
    it (e.g. Home's study to open); a page that raised fails the test here."""
    app = AppTest.from_file(APP, default_timeout=60)
    if token:
        app.session_state[SESSION_KEY] = token
    app.run()
    for key, value in (state or {}).items():
        app.session_state[key] = value
    app.switch_page(str(VIEWS / page)).run()
    assert not app.exception, app.exception
    return app


def page_elements(app: AppTest) -> list[tuple[str, str]]:
    """(element type, its proto as text) of every rendered element, in page order."""
    found: list[tuple[str, str]] = []

    def walk(node: Any) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None:
            found.append((getattr(node, "type", "?"), str(proto)))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(app._tree)
    return found


def tree_text(app: AppTest) -> str:
    """Every proto of the rendered page as text: labels, help, ids, keys, media URLs."""
    return "\n".join(text for _, text in page_elements(app))
