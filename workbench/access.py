"""Who is using the app: log-in state, roles and the account box in the sidebar.

`st.session_state` holds only an opaque session token; the account behind it is looked up
(and its expiry checked) on every run. Roles: "public" when logged out, "rater", "admin".
When `.streamlit/secrets.toml` has an [auth] section, single sign-on through `st.login`
(OIDC) is offered too; an SSO user is matched to the one account with their e-mail, and
only when the identity provider says the address is verified (`email_verified`).
"""

from __future__ import annotations

import streamlit as st

from studies.readers import accounts
from studies.readers.accounts import AccountInfo
from studies.store.db import Store, get_store
from studies.store.settings import get_settings

SESSION_KEY = "medvision_session"
EXPIRED_KEY = "medvision_session_expired"
# Said wherever the browser lands when its log-in session has ended (expired or revoked):
# the rating page keeps an unsent answer as a draft, so nothing typed is lost.
EXPIRED_MESSAGE = "Your session expired; log in again - your answer is kept."
# The same opaque token in a browser cookie, so a reload keeps the rater logged in (the
# server still checks expiry and revocation on every run).
COOKIE = "medvision_session"
_COOKIE_PENDING = "medvision_cookie_pending"
# Why a single sign-on user matched no account (shown on the log-in page).
SSO_PROBLEM_KEY = "medvision_sso_problem"


def app_store() -> Store:
    return get_store()


@st.cache_resource(show_spinner=False)
def _first_start(url: str) -> bool:
    # The first admin: from MEDVISION_ADMIN_PASSWORD or printed once on the server console.
    try:
        accounts.ensure_admin(get_store(url), get_settings())
    except accounts.AccountError as exc:
        # A bad MEDVISION_ADMIN_NAME/PASSWORD: said on the console; the app runs without it.
        print(f"The first admin account was not created: {exc}", flush=True)  # noqa: T201
        return False
    return True


def sso_configured() -> bool:
    try:
        return "auth" in st.secrets
    except Exception:  # noqa: BLE001 - no secrets file at all means no SSO
        return False


def session_token() -> str | None:
    return st.session_state.get(SESSION_KEY)


def current_account() -> AccountInfo | None:
    """The logged-in account, or None (an expired session is dropped here)."""
    store = app_store()
    _first_start(store.url)
    token = session_token()
    from_cookie = False
    if not token:
        token = _cookie_token()
        from_cookie = bool(token)
    if token:
        info = accounts.resolve_session(store, token)
        if info is not None and from_cookie:
            st.session_state[SESSION_KEY] = token
        if info is not None:
            return info
        st.session_state.pop(SESSION_KEY, None)
        if from_cookie:
            # A reload with the cookie of a session that ended: said too, then the cookie
            # is cleared (it would be refused on every run).
            st.session_state[_COOKIE_PENDING] = ""
        st.session_state[EXPIRED_KEY] = True
    if sso_configured() and getattr(st.user, "is_logged_in", False):
        try:
            info = accounts.account_for_email(
                store, st.user.get("email"), verified=st.user.get("email_verified") is True
            )
        except accounts.AuthError as exc:
            st.session_state[SSO_PROBLEM_KEY] = str(exc)
            return None
        if info is not None:
            st.session_state[SESSION_KEY] = accounts.open_session(
                store, info.id, session_hours=get_settings().session_hours
            )
            return info
    return None


def _cookie_token() -> str | None:
    if st.session_state.get(_COOKIE_PENDING) == "":
        return None  # logged out in this browser session; the cookie is being cleared
    try:
        value = st.context.cookies.get(COOKIE)
    except Exception:  # noqa: BLE001 - no browser context (tests, bare mode)
        return None
    return value if isinstance(value, str) and value else None


def _write_cookie(token: str) -> None:
    """Set (or with "" clear) the session cookie in the browser via a tiny script."""
    import streamlit.components.v1 as components

    max_age = int(get_settings().session_hours * 3600) if token else 0
    script = (
        "<script>const d = window.parent.document;"
        f"d.cookie = '{COOKIE}={token}; Max-Age={max_age}; Path=/; SameSite=Strict'"
        " + (window.parent.location.protocol === 'https:' ? '; Secure' : '');</script>"
    )
    components.html(script, height=0)


def current_role() -> str:
    account = current_account()
    return account.role if account else "public"


def require_role(*roles: str) -> AccountInfo:
    """The account when its role is one of `roles`; otherwise a message and stop."""
    account = current_account()
    if account is None:
        if st.session_state.pop(EXPIRED_KEY, False):
            st.warning(EXPIRED_MESSAGE, icon=":material/timer_off:")
        else:
            st.info("Please log in to open this page.")
        st.stop()
    if account.role not in roles:
        st.error("Your account may not open this page.")
        st.stop()
    return account


def client_address() -> str | None:
    """The browser's address for the per-client log-in delay, or None when it cannot be told.

    A request from a trusted reverse proxy (MEDVISION_TRUSTED_PROXIES) is the address that
    proxy appended to X-Forwarded-For. A request from the loopback address with no trusted
    proxy configured, or with no address at all, is None: behind an untrusted local proxy
    every browser would share one address, and one guesser would slow everyone's log-in;
    the per-account delay still applies.
    """
    try:
        peer = st.context.ip_address
        headers = st.context.headers
    except Exception:  # noqa: BLE001 - no browser context (tests, bare mode)
        return None
    return attributed_client(peer, headers.get("X-Forwarded-For"), get_settings().trusted_proxies)


def attributed_client(
    peer: str | None, forwarded_for: str | None, trusted: tuple[str, ...]
) -> str | None:
    """The client a request is attributed to (see `client_address`)."""
    if peer and peer in trusted:
        hops = [h.strip() for h in (forwarded_for or "").split(",") if h.strip()]
        # The last hop is the one the trusted proxy added; earlier ones the browser can forge.
        return hops[-1] if hops else None
    if not peer or peer in ("127.0.0.1", "::1", "localhost"):
        return None
    return peer


def log_in(username: str, password: str) -> AccountInfo:
    """Check the password and keep the new session token (AuthError on failure)."""
    store = app_store()
    token = accounts.log_in(
        store,
        username,
        password,
        session_hours=get_settings().session_hours,
        client=client_address(),
    )
    adopt_session(token)
    return accounts.resolve_session(store, token)


def adopt_session(token: str) -> None:
    st.session_state[SESSION_KEY] = token
    st.session_state.pop(_COOKIE_PENDING, None)
    st.session_state.pop(EXPIRED_KEY, None)


def log_out() -> None:
    accounts.log_out(app_store(), session_token())
    for key in list(st.session_state):
        del st.session_state[key]
    st.session_state[_COOKIE_PENDING] = ""
    if sso_configured() and getattr(st.user, "is_logged_in", False):
        st.logout()


def expired_notice() -> None:
    """Once, above the page the browser lands on: the session ended (a logged-out visitor
    sees only public pages, so the page that was open is not the one shown)."""
    if st.session_state.pop(EXPIRED_KEY, False):
        st.warning(EXPIRED_MESSAGE, icon=":material/timer_off:")
        st.page_link("views/login.py", label="Log in again", icon=":material/login:")


def render_account_sidebar() -> None:
    """The account box; for a browser whose session just ended, the expiry notice above
    the page (this runs on every page, before it)."""
    account = current_account()
    if account is None:
        expired_notice()
    with st.sidebar:
        # Written on every run (an unchanged element is not re-run by the browser): a run
        # cut short by a page switch would otherwise lose the one-off script.
        if account is not None and session_token():
            _write_cookie(session_token())
        elif st.session_state.get(_COOKIE_PENDING) == "":
            _write_cookie("")
        if account is None:
            st.caption("Not logged in.")
            return
        # The display name was typed by its owner: plain text, like every data text.
        st.text(f"Logged in as {account.label} ({account.role})")
        if st.button("Log out", key="account_log_out", icon=":material/logout:"):
            log_out()
            st.rerun()
