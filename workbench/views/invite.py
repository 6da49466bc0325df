"""Accept an invite: the link carries a single-use token; choose a username and password."""

from __future__ import annotations

import streamlit as st

from model.notice import RESEARCH_NOTICE
from studies.readers.accounts import AccountError, AuthError, accept_invite, inspect_invite
from studies.readers.design import StudyError
from studies.store.settings import get_settings
from workbench import access
from workbench.ui import plain_text

st.title("Accept your invitation")
st.caption(RESEARCH_NOTICE)

token = st.query_params.get("token") or st.session_state.get("invite_token", "")
if st.query_params.get("token"):
    # Keep the token out of the address bar once read.
    st.session_state["invite_token"] = st.query_params["token"]
    del st.query_params["token"]
if not token:
    token = st.text_input("Invite code", key="invite_code_input")
if not token:
    st.info("Open the invite link you received, or paste its code above.")
    st.stop()

try:
    invite = inspect_invite(access.app_store(), token)
except AuthError as exc:
    st.error(str(exc))
    st.stop()

st.markdown(
    f"You are invited as a **{invite.role}**. The link expires "
    f"{invite.expires_at:%Y-%m-%d %H:%M} UTC."
)
if invite.study_name:
    plain_text(invite.study_name, label="Study", key="invite-study")

with st.form("invite_form"):
    username = st.text_input(
        "Username", value=invite.username or "", disabled=bool(invite.username), key="inv_user"
    )
    display_name = st.text_input("Your name (shown to the study admin)", key="inv_name")
    email = st.text_input("E-mail (optional, for single sign-on)", key="inv_email")
    password = st.text_input("Password (at least 10 characters)", type="password", key="inv_pw")
    repeat = st.text_input("Repeat the password", type="password", key="inv_pw2")
    submitted = st.form_submit_button("Create my account", type="primary")

if submitted:
    if password != repeat:
        st.error("The two passwords differ; type them again.")
        st.stop()
    try:
        info, session = accept_invite(
            access.app_store(),
            token,
            invite.username or username,
            password,
            display_name=display_name,
            email=email or None,
            session_hours=get_settings().session_hours,
        )
    except (AccountError, AuthError, StudyError) as exc:
        st.error(str(exc))
        st.stop()
    st.session_state.pop("invite_token", None)
    access.adopt_session(session)
    st.session_state["medvision_just_logged_in"] = True
    st.switch_page("views/login.py")
