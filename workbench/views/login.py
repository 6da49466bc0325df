"""Log-in: username and password (or single sign-on when configured)."""

from __future__ import annotations

import streamlit as st

from model.notice import RESEARCH_NOTICE
from studies.readers.accounts import AuthError
from workbench import access

st.title("Log in")
st.caption(RESEARCH_NOTICE)

account = access.current_account()
if account is not None:
    st.success(f"You are logged in as {account.label} ({account.role}).")
    if st.button("Go to rating", key="login_go_rate", icon=":material/rate_review:"):
        st.switch_page("views/rate.py")
    st.stop()

if st.session_state.pop(access.EXPIRED_KEY, False):
    st.warning("Your session has expired. Please log in again.")

with st.form("login_form"):
    username = st.text_input("Username", key="login_username", autocomplete="username")
    password = st.text_input(
        "Password", type="password", key="login_password", autocomplete="current-password"
    )
    submitted = st.form_submit_button("Log in", type="primary")

if submitted:
    try:
        with st.spinner("Checking..."):
            access.log_in(username, password)
    except AuthError as exc:
        st.error(str(exc))
    else:
        st.session_state["medvision_just_logged_in"] = True
        st.rerun()

if access.sso_configured():
    st.divider()
    if st.button("Log in with single sign-on", key="login_sso", icon=":material/key:"):
        st.login()
    problem = st.session_state.pop(access.SSO_PROBLEM_KEY, None)
    if problem:
        st.warning(problem)
    elif getattr(st.user, "is_logged_in", False) and not st.user.get("email_verified"):
        st.warning(
            "Your identity provider did not confirm your e-mail address, so it cannot be "
            "matched to an account here; ask the study admin for an invite."
        )
    elif getattr(st.user, "is_logged_in", False):
        st.warning(
            "Your single sign-on address has no account here yet; ask the study admin for "
            "an invite."
        )
