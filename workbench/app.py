"""Streamlit entry point: `streamlit run workbench/app.py` (or `medvision serve`)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from model.notice import RESEARCH_NOTICE
from studies.store.db import SchemaError
from workbench.access import current_role, render_account_sidebar
from workbench.navigation import PAGES

PAGES_DIR = Path(__file__).parent / "views"

st.set_page_config(page_title="Med-Vision Workbench", page_icon=":material/biotech:", layout="wide")

try:
    role = current_role()
except SchemaError as exc:
    # A database at an older schema revision is never migrated by the app itself.
    st.error(str(exc))
    st.stop()
# Log-in and invite pages are "public" only: a logged-in user does not see them.
visible = [spec for spec in PAGES if role in spec.roles]
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
    st.switch_page(str(PAGES_DIR / "rate.py"))
render_account_sidebar()
st.sidebar.caption(RESEARCH_NOTICE)
navigation.run()
