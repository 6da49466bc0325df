"""Streamlit entry point: `streamlit run workbench/app.py` (or `medvision serve`)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from workbench.access import current_role, render_account_sidebar
from workbench.navigation import PAGES

PAGES_DIR = Path(__file__).parent / "pages"

st.set_page_config(page_title="Med-Vision Workbench", page_icon=":material/biotech:", layout="wide")

role = current_role()
# Log-in and invite pages are "public" only: a logged-in user does not see them.
visible = [spec for spec in PAGES if role in spec.roles]
navigation = st.navigation(
    [
        st.Page(
            str(PAGES_DIR / spec.file),
            title=spec.title,
            icon=spec.icon,
            default=spec.default,
            url_path=spec.file.removesuffix(".py"),
        )
        for spec in visible
    ]
)
render_account_sidebar()
st.sidebar.caption("Research software, not a medical device.")
navigation.run()
