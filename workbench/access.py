"""Who is using the app. Until accounts exist, the embedded single-user mode is admin."""

from __future__ import annotations


def current_role() -> str:
    return "admin"


def render_account_sidebar() -> None:
    return None
