"""Streamlit entry point: `streamlit run workbench/app.py` (or `medvision serve`)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from model.notice import RESEARCH_NOTICE
from studies.store.db import SchemaError
from workbench.access import current_account, render_account_sidebar
from workbench.navigation import landing_page, visible_pages
from workbench.ui import error_boundary, plain_text_style

PAGES_DIR = Path(__file__).parent / "views"

st.set_page_config(page_title="Med-Vision Workbench", page_icon=":material/biotech:", layout="wide")

plain_text_style()
account = None
with error_boundary("app"):
    try:
        account = current_account()
    except SchemaError as exc:
        # A database at an older schema revision is never migrated by the app itself.
        st.error(str(exc))
        st.stop()
role = account.role if account else "public"
# Log-in and invite pages are "public" only: a logged-in user does not see them.
visible = visible_pages(account)
# Pages grouped by section ("" is the ungrouped top of the menu), in PAGES order.
sections: dict[str, list] = {}
for spec in visible:
    sections.setdefault(spec.section, []).append(
        st.Page(
            str(PAGES_DIR / spec.file),
            title=spec.title,
            icon=spec.icon,
            default=spec.default,
            url_path=spec.file.removesuffix(".py"),
        )
    )
navigation = st.navigation(sections, expanded=True)
if st.session_state.pop("medvision_just_logged_in", False) and role == "rater":
    # The log-in page left the menu with the log-in; land raters straight on their next case.
    st.switch_page(str(PAGES_DIR / landing_page(account)))
with error_boundary("sidebar", account.id if account else None):
    render_account_sidebar()
st.sidebar.caption(RESEARCH_NOTICE)
# Every page runs inside the boundary: an error is a message and a reference, never a
# traceback, and the rest of the app (menu, log-out) keeps working.
with error_boundary(navigation.title, account.id if account else None):
    navigation.run()
