"""Accounts (admin, rater), passwords, invites, log-in sessions and log-in delays.

Passwords are hashed with scrypt (memory-hard) with a per-password salt; the parameters
travel inside the stored hash so they can be raised later without breaking old accounts.
Invite and session tokens are random, handed out once, and stored only as sha256 hashes,
so a copy of the database does not let anyone log in.

Log-in: an unknown user, a wrong password and an account that must still wait all get the
same message and do the same work (one scrypt run against the account's hash or one
precomputed dummy hash), so neither the text nor the timing tells whether an account exists.
Instead of a hard lock that anyone could trigger, failures slow the next attempt down:
- per account (in the database): after ACCOUNT_FREE_TRIES failures, `locked_until` is the
  moment the next attempt is allowed, min(2**extra, ACCOUNT_DELAY_CAP_S) seconds later. A
  conditional UPDATE claims the attempt (and counts it) atomically, so parallel guesses
  are checked one at a time and every one is counted, on SQLite and PostgreSQL. The cap is
  short: the account's owner gets in a few seconds after an attacker stops.
- per client (the caller's address, in this process's memory, forgotten on restart and
  after CLIENT_FORGET_S of quiet): after CLIENT_FREE_TRIES failures, the client waits
  min(2**extra, CLIENT_DELAY_CAP_S) seconds between tries. A guessing client is held back
  before it reaches any account, so its failures do not lock out the owner at another client.
  Behind a reverse proxy every client has the proxy's address: run one app per site or rely
  on the per-account delay.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache

from sqlalchemy import Connection, and_, bindparam, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import BindParameter, FromClause, Join

from studies.store.audit import record
from studies.store.db import Store
from studies.store.schema import Account, AuthSession, Invite, Study, StudyRater, aware
from studies.store.settings import Settings

ROLES = ("admin", "rater")
MIN_PASSWORD_LENGTH = 10
INVITE_HOURS = 72.0
# The one answer to every failed log-in (unknown user, wrong password, must wait).
LOGIN_FAILED = (
    "Log-in failed: wrong username or password, or too many tries in a row "
    "(then wait a little before the next one)."
)
# scrypt cost: 2**14 x 8 x 128 bytes = 16 MiB per hash, about 50 ms on one core.
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,62}$")


class AccountError(ValueError):
    """Bad account input (username taken, weak password, unknown role): nothing changed."""


class AuthError(PermissionError):
    """A failed log-in, an expired or revoked session, a used or expired invite."""


@dataclass(frozen=True)
class AccountInfo:
    """An account as pages and commands see it (never the password hash)."""

    id: int
    username: str
    display_name: str
    email: str | None
    role: str
    active: bool
    locked_until: datetime | None = None

    @property
    def label(self) -> str:
        return self.display_name or self.username


def now_utc() -> datetime:
    return datetime.now(UTC)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


def _info(account: Account) -> AccountInfo:
    return AccountInfo(
        id=account.id,
        username=account.username,
        display_name=account.display_name or "",
        email=account.email,
        role=account.role,
        active=account.active,
        locked_until=aware(account.locked_until),
    )


# --- passwords ----------------------------------------------------------------------


def hash_password(password: str) -> str:
    """`scrypt$n$r$p$salt$hash` (base64) of `password` with a fresh 16-byte salt."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32
    )
    encode = base64.b64encode
    return (
        f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${encode(salt).decode()}${encode(digest).decode()}"
    )


def verify_password(password: str, stored: str | None) -> bool:
    """True when `password` matches `stored` (constant-time comparison)."""
    if not stored:
        return False
    try:
        scheme, n, r, p, salt, expected = stored.split("$")
        if scheme != "scrypt":
            return False
        digest = hashlib.scrypt(
            password.encode("utf-8"),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(base64.b64decode(expected)),
            maxmem=256 * 1024 * 1024,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest, base64.b64decode(expected))


# The most common passwords and their stems (public breach lists), lower case; a password
# that is one of these, or one of them with digits or symbols around it, is refused.
COMMON_PASSWORDS = frozenset(
    """
    password passw0rd p@ssword p@ssw0rd passwort motdepasse contrasena wachtwoord
    qwerty qwertz azerty qwertyuiop asdfghjkl zxcvbnm qazwsx qwerty123 1q2w3e4r 1q2w3e4r5t
    1qaz2wsx zaq12wsx abc123 abcdef abcdefgh letmein welcome welcome1 iloveyou monkey dragon
    football baseball soccer hockey master shadow sunshine princess superman batman trustno1
    starwars whatever freedom charlie michael jennifer jordan hunter ranger buster thomas
    computer internet secret secret123 changeme changeit default admin administrator
    admin123 root toor login guest test test123 testing user demo hello hello123 goodbye
    summer winter spring autumn january december monday friday
    hospital doctor nurse medicine patient clinic radiology endoscopy colonoscopy
    medvision workbench reader rater study
    """.split()
)
_KEYBOARD_RUNS = (
    "1234567890",
    "0987654321",
    "qwertyuiop",
    "asdfghjkl",
    "zxcvbnm",
    "abcdefghijklmnopqrstuvwxyz",
    "zyxwvutsrqponmlkjihgfedcba",
)


def _trivial(password: str) -> bool:
    """Runs (1234567890, qwertyuiop), one repeated unit (aaaaaaaaaa, abcabcabca)."""
    text = password.lower()
    if any(text in run or run.startswith(text) for run in _KEYBOARD_RUNS):
        return True
    for size in range(1, len(text) // 2 + 1):
        unit = text[:size]
        if (unit * (len(text) // size + 1))[: len(text)] == text:
            return True
    return False


def is_common_password(password: str, username: str = "") -> bool:
    """True for a very common password, a trivial pattern, or either padded with digits or
    symbols (password12, Welcome2024!, 1234567890, aaaaaaaaaa)."""
    text = password.lower()
    stem = re.sub(r"^[\d\W_]+|[\d\W_]+$", "", text)
    names = {username.lower()} if username else set()
    for candidate in {text, stem}:
        if candidate in COMMON_PASSWORDS or candidate in names:
            return True
    return _trivial(text) or (bool(stem) and _trivial(stem)) or not stem


def check_password_strength(password: str, username: str = "") -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"password: use at least {MIN_PASSWORD_LENGTH} characters")
    if username and password.lower() == username.lower():
        raise AccountError("password: must differ from the username")
    if is_common_password(password, username):
        raise AccountError(
            "password: too common or too simple to guess (a well-known password, a run "
            "like 1234567890, one character repeated); use a few unrelated words"
        )


def generate_password() -> str:
    return secrets.token_urlsafe(12)


def normalise_username(username: str) -> str:
    name = (username or "").strip().lower()
    if not _USERNAME.match(name):
        raise AccountError(
            f"username {username!r}: use 2-63 characters a-z, 0-9, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


# --- accounts -----------------------------------------------------------------------


def _create_account(
    session: Session,
    username: str,
    role: str,
    password: str | None,
    *,
    display_name: str = "",
    email: str | None = None,
    actor_id: int | None = None,
) -> Account:
    name = normalise_username(username)
    if role not in ROLES:
        raise AccountError(f"role {role!r}: use one of {', '.join(ROLES)}")
    if password is not None:
        check_password_strength(password, name)
    if session.scalar(select(Account.id).where(Account.username == name)) is not None:
        raise AccountError(f"username {name!r} is taken; pick another")
    address = (email or "").strip().lower() or None
    if address and session.scalar(select(Account.id).where(func.lower(Account.email) == address)):
        # Single sign-on matches accounts by e-mail: it must name one account only.
        raise AccountError(f"e-mail {address!r} already belongs to an account; use another")
    account = Account(
        username=name,
        role=role,
        display_name=display_name.strip(),
        email=address,
        password_hash=hash_password(password) if password is not None else None,
    )
    session.add(account)
    session.flush()
    record(session, actor_id, "account.create", "account", account.id, {"role": role})
    return account


def create_account(
    store: Store,
    username: str,
    role: str,
    password: str | None,
    *,
    display_name: str = "",
    email: str | None = None,
    actor_id: int | None = None,
) -> AccountInfo:
    """A new account; `password=None` makes an SSO-only account (log-in via OIDC)."""
    with store.session() as session:
        return _info(
            _create_account(
                session,
                username,
                role,
                password,
                display_name=display_name,
                email=email,
                actor_id=actor_id,
            )
        )


def set_password(
    store: Store, account_id: int, password: str, *, actor_id: int | None = None
) -> None:
    """Replace a password; clears lockout and revokes every open session of the account."""
    with store.session() as session:
        account = session.get(Account, account_id)
        if account is None:
            raise AccountError(f"no account with id {account_id}")
        check_password_strength(password, account.username)
        account.password_hash = hash_password(password)
        account.failed_logins = 0
        account.locked_until = None
        _revoke_all(session, account.id)
        record(session, actor_id, "account.password", "account", account.id)


def set_active(store: Store, account_id: int, active: bool, *, actor_id: int | None = None) -> None:
    with store.session() as session:
        account = session.get(Account, account_id)
        if account is None:
            raise AccountError(f"no account with id {account_id}")
        account.active = active
        if not active:
            _revoke_all(session, account.id)
        record(
            session,
            actor_id,
            "account.activate" if active else "account.deactivate",
            "account",
            account.id,
        )


def list_accounts(store: Store, role: str | None = None) -> list[AccountInfo]:
    with store.session() as session:
        query = select(Account).order_by(Account.username)
        if role is not None:
            query = query.where(Account.role == role)
        return [_info(a) for a in session.scalars(query)]


def get_account(store: Store, username: str) -> AccountInfo | None:
    with store.session() as session:
        account = session.scalar(
            select(Account).where(Account.username == username.strip().lower())
        )
        return _info(account) if account else None


# --- sessions -----------------------------------------------------------------------


def _new_session(session: Session, account_id: int, hours: float) -> str:
    token = new_token()
    session.add(
        AuthSession(
            token_hash=token_hash(token),
            account_id=account_id,
            expires_at=now_utc() + timedelta(hours=hours),
        )
    )
    return token


def _revoke_all(session: Session, account_id: int) -> None:
    for row in session.scalars(
        select(AuthSession).where(
            AuthSession.account_id == account_id, AuthSession.revoked_at.is_(None)
        )
    ):
        row.revoked_at = now_utc()


@dataclass(frozen=True)
class LoginPolicy:
    """How failed log-ins slow down the next attempt (seconds)."""

    account_free_tries: int = 5
    account_delay_cap_s: float = 15.0
    client_free_tries: int = 10
    client_delay_cap_s: float = 900.0
    client_forget_s: float = 3600.0

    def account_delay(self, failures: int) -> float:
        if failures < self.account_free_tries:
            return 0.0
        return min(self.account_delay_cap_s, 2.0 ** (failures - self.account_free_tries))

    def client_delay(self, failures: int) -> float:
        if failures < self.client_free_tries:
            return 0.0
        return min(self.client_delay_cap_s, 2.0 ** (failures - self.client_free_tries))


LOGIN_POLICY = LoginPolicy()
# A check in flight holds the account for a moment; a concurrent try within the free tries
# waits for it this often, this long (a check takes about 50 ms).
CLAIM_TRIES = 40
CLAIM_WAIT_S = 0.05


@dataclass
class _ClientRecord:
    failures: int = 0
    next_allowed: float = 0.0
    last_seen: float = 0.0


class ClientThrottle:
    """Per-client failure counts and delays, in this process's memory (see the module doc)."""

    MAX_CLIENTS = 50_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clients: dict[str, _ClientRecord] = {}

    def admit(self, client: str, policy: LoginPolicy) -> bool:
        """Whether `client` may try now; an admitted try counts as a failure until
        `settle` says it succeeded (so parallel tries from one client are counted too)."""
        moment = time.monotonic()
        with self._lock:
            record_ = self._clients.get(client)
            if record_ is not None and moment - record_.last_seen > policy.client_forget_s:
                record_ = None
            if record_ is None:
                if len(self._clients) >= self.MAX_CLIENTS:
                    self._forget(moment, policy)
                record_ = self._clients[client] = _ClientRecord()
            if moment < record_.next_allowed:
                return False
            record_.failures += 1
            record_.last_seen = moment
            record_.next_allowed = moment + policy.client_delay(record_.failures)
            return True

    def settle(self, client: str, succeeded: bool) -> None:
        if not succeeded:
            return
        with self._lock:
            record_ = self._clients.get(client)
            # Undo this try's count; a success does not wipe earlier failures (an attacker
            # with one valid account must not reset the count by logging into it).
            if record_ is not None and record_.failures > 0:
                record_.failures -= 1
                record_.next_allowed = 0.0

    def _forget(self, moment: float, policy: LoginPolicy) -> None:
        stale = [
            k for k, v in self._clients.items() if moment - v.last_seen > policy.client_forget_s
        ]
        for key in stale or list(self._clients)[: self.MAX_CLIENTS // 2]:
            del self._clients[key]


CLIENT_THROTTLE = ClientThrottle()


@cache
def _dummy_hash() -> str:
    """One hash with the current parameters, compared against when there is no real one."""
    return hash_password(secrets.token_urlsafe(16))


_ACCOUNT_ROWS = Account.__table__


def _claim_attempt(session: Session, account_id: int, moment: datetime, hold: datetime):  # noqa: ANN202
    """Count this attempt and claim the account's next check in one conditional UPDATE:
    only one caller wins while `locked_until` (the next attempt allowed at) is ahead."""
    table = _ACCOUNT_ROWS
    return session.execute(
        update(table)
        .where(
            table.c.id == account_id,
            or_(table.c.locked_until.is_(None), table.c.locked_until <= moment),
        )
        .values(failed_logins=table.c.failed_logins + 1, locked_until=hold)
        .returning(table.c.failed_logins)
    ).first()


def log_in(
    store: Store,
    username: str,
    password: str,
    *,
    session_hours: float = 12.0,
    client: str | None = None,
    policy: LoginPolicy = LOGIN_POLICY,
) -> str:
    """A new session token for a correct username/password; AuthError(LOGIN_FAILED) otherwise.

    `client` is the caller's address for the per-client delay (None: a local caller, only
    the per-account delay applies). Every attempt on an existing account is counted with
    an atomic UPDATE; see the module docstring for the delays.
    """
    name = (username or "").strip().lower()
    client_key = f"client:{client}" if client else None
    if client_key is not None and not CLIENT_THROTTLE.admit(client_key, policy):
        raise AuthError(LOGIN_FAILED)
    table = _ACCOUNT_ROWS
    row = claimed = None
    for attempt in range(CLAIM_TRIES):
        moment = now_utc()
        with store.session() as session:
            row = session.execute(
                select(table.c.id, table.c.password_hash, table.c.failed_logins).where(
                    table.c.username == name, table.c.active.is_(True)
                )
            ).first()
            # Every path writes (and commits) the same here and after the check: the
            # attempt now, the outcome below, so no path is a commit shorter than another.
            if attempt == 0:
                record(session, None, "auth.login_attempt", "account", row.id if row else None)
            if row is None:
                break
            hold = moment + timedelta(seconds=policy.account_delay_cap_s)
            claimed = _claim_attempt(session, row.id, moment, hold)
            if claimed is not None:
                break
            # Another check of this account is in flight: within the free tries that is no
            # penalty, so wait for it (a double click must not fail); past them, refuse.
            if row.failed_logins >= policy.account_free_tries or attempt == CLAIM_TRIES - 1:
                # Must still wait: counted too, but the password is not checked.
                session.execute(
                    update(table)
                    .where(table.c.id == row.id)
                    .values(failed_logins=table.c.failed_logins + 1)
                )
                break
        time.sleep(CLAIM_WAIT_S)
    # Exactly one scrypt run on every path (outside the transaction: no lock is held).
    checks_real = claimed is not None and bool(row.password_hash)
    matched = verify_password(password, row.password_hash if checks_real else _dummy_hash())
    matched = matched and checks_real
    token: str | None = None
    with store.session() as session:
        if matched:
            session.execute(
                update(table).where(table.c.id == row.id).values(failed_logins=0, locked_until=None)
            )
            token = _new_session(session, row.id, session_hours)
            record(session, row.id, "auth.login", "account", row.id)
        elif claimed is not None:
            failures = session.scalar(select(table.c.failed_logins).where(table.c.id == row.id))
            delay = policy.account_delay(failures or 0)
            until = now_utc() + timedelta(seconds=delay) if delay else None
            session.execute(update(table).where(table.c.id == row.id).values(locked_until=until))
            record(session, None, "auth.login_failed", "account", row.id, {"failures": failures})
        elif row is not None:
            record(session, None, "auth.login_delayed", "account", row.id)
        else:
            # No name stored: a password typed into the username field must not be kept.
            record(session, None, "auth.login_unknown", "account")
    if client_key is not None:
        CLIENT_THROTTLE.settle(client_key, matched)
    if token is None:
        raise AuthError(LOGIN_FAILED)
    return token


def open_session(store: Store, account_id: int, *, session_hours: float = 12.0) -> str:
    """A session for an account authenticated elsewhere (single sign-on)."""
    with store.session() as session:
        account = session.get(Account, account_id)
        if account is None or not account.active:
            raise AuthError("This account does not exist or is deactivated.")
        token = _new_session(session, account.id, session_hours)
        record(session, account.id, "auth.login_sso", "account", account.id)
        return token


def open_admin_session(store: Store, *, session_hours: float = 1.0) -> str:
    """A session for an admin account, creating 'local-admin' (no password) when no admin
    exists. For trusted local callers that already hold the database (tests, scripts)."""
    with store.session() as session:
        admin = session.scalar(
            select(Account).where(Account.role == "admin", Account.active.is_(True)).limit(1)
        )
        if admin is None:
            admin = _create_account(session, "local-admin", "admin", None)
        token = _new_session(session, admin.id, session_hours)
        record(session, None, "auth.local_session", "account", admin.id)
        return token


def session_account(session: Session, token: str | None) -> Account | None:
    """The active account behind an unexpired, unrevoked session token (or None)."""
    if not token:
        return None
    found = session.execute(
        select(Account, AuthSession.expires_at)
        .join(AuthSession, AuthSession.account_id == Account.id)
        .where(
            AuthSession.token_hash == token_hash(token),
            AuthSession.revoked_at.is_(None),
            Account.active.is_(True),
        )
    ).first()
    if found is None or aware(found.expires_at) <= now_utc():
        return None
    return found.Account


# The same rule as `session_account`, as parts of a larger Core query: the rating steps
# check the session in the statement that reads their study or assignment (one round trip).
_SESSIONS = AuthSession.__table__
_ACCOUNTS = Account.__table__
SESSION_OWNER = _ACCOUNTS.c.id.label("session_account_id")
SESSION_EXPIRES = _SESSIONS.c.expires_at.label("session_expires_at")


def join_session(left: FromClause, token_hash_param: BindParameter) -> Join:
    """`left` LEFT JOIN the unrevoked session with that token hash and its active account;
    select SESSION_OWNER and SESSION_EXPIRES and pass them to `live_session_owner`."""
    return left.outerjoin(
        _SESSIONS,
        and_(_SESSIONS.c.token_hash == token_hash_param, _SESSIONS.c.revoked_at.is_(None)),
    ).outerjoin(
        _ACCOUNTS, and_(_ACCOUNTS.c.id == _SESSIONS.c.account_id, _ACCOUNTS.c.active.is_(True))
    )


def live_session_owner(account_id: int | None, expires_at: datetime | None) -> int | None:
    """The account id when the joined session is live (unexpired), else None."""
    if account_id is None or expires_at is None or aware(expires_at) <= now_utc():
        return None
    return account_id


_SESSION_OWNER_QUERY = (
    select(SESSION_OWNER, SESSION_EXPIRES)
    .select_from(_SESSIONS.join(_ACCOUNTS, _ACCOUNTS.c.id == _SESSIONS.c.account_id))
    .where(
        _SESSIONS.c.token_hash == bindparam("token_hash"),
        _SESSIONS.c.revoked_at.is_(None),
        _ACCOUNTS.c.active.is_(True),
    )
)


def session_account_id(connection: Connection, token: str | None) -> int | None:
    """The id of the active account behind a live session token (or None), Core only."""
    if not token:
        return None
    row = connection.execute(_SESSION_OWNER_QUERY, {"token_hash": token_hash(token)}).first()
    return None if row is None else live_session_owner(*row)


def resolve_session(store: Store, token: str | None) -> AccountInfo | None:
    """The account of a valid session token; None when missing, expired or revoked."""
    if not token:
        return None
    with store.session() as session:
        account = session_account(session, token)
        return _info(account) if account else None


def log_out(store: Store, token: str | None) -> None:
    if not token:
        return
    with store.session() as session:
        row = session.scalar(select(AuthSession).where(AuthSession.token_hash == token_hash(token)))
        if row is not None and row.revoked_at is None:
            row.revoked_at = now_utc()
            record(session, row.account_id, "auth.logout", "account", row.account_id)


def account_for_email(
    store: Store, email: str | None, *, verified: bool = False
) -> AccountInfo | None:
    """The one active account registered with `email`, for single sign-on.

    Only an address the identity provider says it verified (`email_verified`) counts: an
    unverified claim could name anyone's address. Two accounts with the same address match
    neither (AuthError saying so): which one is meant is for an admin to settle.
    """
    if not email or not verified:
        return None
    with store.session() as session:
        found = list(
            session.scalars(
                select(Account)
                .where(func.lower(Account.email) == email.strip().lower(), Account.active.is_(True))
                .limit(2)
            )
        )
        if len(found) > 1:
            raise AuthError(
                "Two accounts here share your e-mail address, so single sign-on cannot tell "
                "which one is yours; ask the study admin to change one of them."
            )
        return _info(found[0]) if found else None


# --- invites ------------------------------------------------------------------------


def create_invite(
    store: Store,
    *,
    role: str = "rater",
    username: str | None = None,
    study_id: int | None = None,
    created_by: int | None = None,
    hours: float = INVITE_HOURS,
) -> str:
    """A single-use invite token (shown once; only its hash is stored)."""
    if role not in ROLES:
        raise AccountError(f"role {role!r}: use one of {', '.join(ROLES)}")
    if hours <= 0:
        raise AccountError("invite lifetime: hours must be positive")
    name = normalise_username(username) if username else None
    token = new_token()
    with store.session() as session:
        if name and session.scalar(select(Account.id).where(Account.username == name)):
            raise AccountError(f"username {name!r} already has an account")
        if study_id is not None and session.get(Study, study_id) is None:
            raise AccountError(f"no study with id {study_id}")
        invite = Invite(
            token_hash=token_hash(token),
            role=role,
            username=name,
            study_id=study_id,
            created_by=created_by,
            expires_at=now_utc() + timedelta(hours=hours),
        )
        session.add(invite)
        session.flush()
        record(
            session,
            created_by,
            "invite.create",
            "invite",
            invite.id,
            {"role": role, "study_id": study_id, "hours": hours},
        )
    return token


@dataclass(frozen=True)
class InviteInfo:
    role: str
    username: str | None
    study_name: str | None
    expires_at: datetime


def _usable_invite(session: Session, token: str) -> Invite:
    invite = session.scalar(select(Invite).where(Invite.token_hash == token_hash(token or "")))
    if invite is None:
        raise AuthError("This invite link is not valid; ask the study admin for a new one.")
    if invite.used_at is not None:
        raise AuthError("This invite link has already been used; log in instead.")
    if aware(invite.expires_at) <= now_utc():
        raise AuthError("This invite link has expired; ask the study admin for a new one.")
    return invite


def inspect_invite(store: Store, token: str) -> InviteInfo:
    """What an invite is for (AuthError when unknown, used or expired)."""
    with store.session() as session:
        invite = _usable_invite(session, token)
        study = session.get(Study, invite.study_id) if invite.study_id else None
        return InviteInfo(
            role=invite.role,
            username=invite.username,
            study_name=study.name if study else None,
            expires_at=aware(invite.expires_at),
        )


def accept_invite(
    store: Store,
    token: str,
    username: str,
    password: str,
    *,
    display_name: str = "",
    email: str | None = None,
    session_hours: float = 12.0,
) -> tuple[AccountInfo, str]:
    """Create the invited account (and enrol it in the invite's study); returns a session.

    All in one transaction: a second use of the same link, even a concurrent one, fails.
    """
    with store.session() as session:
        invite = _usable_invite(session, token)
        # Claim the invite first with a conditional update: only one caller can win it.
        claimed = session.execute(
            Invite.__table__.update()
            .where(Invite.id == invite.id, Invite.used_at.is_(None))
            .values(used_at=now_utc())
        ).rowcount
        if claimed != 1:
            raise AuthError("This invite link has already been used; log in instead.")
        if invite.username and normalise_username(username) != invite.username:
            raise AccountError(f"username: this invite is for {invite.username!r}")
        account = _create_account(
            session,
            username,
            invite.role,
            password,
            display_name=display_name,
            email=email,
            actor_id=invite.created_by,
        )
        session.execute(
            Invite.__table__.update().where(Invite.id == invite.id).values(used_by=account.id)
        )
        if invite.study_id is not None:
            from studies.readers.enrolment import enrol_rater_in_session

            enrol_rater_in_session(session, invite.study_id, account.id, actor_id=account.id)
        record(session, account.id, "invite.accept", "invite", invite.id)
        token_out = _new_session(session, account.id, session_hours)
        return _info(account), token_out


# --- the first admin ----------------------------------------------------------------


def ensure_admin(store: Store, settings: Settings, echo=print) -> str | None:  # noqa: ANN001
    """Make sure an admin exists. Returns the generated password when one was made.

    The first admin is MEDVISION_ADMIN_NAME (default 'admin') with MEDVISION_ADMIN_PASSWORD,
    or with a random password printed once here (it is not stored anywhere in clear text).
    """
    name = normalise_username(settings.admin_name)
    password = settings.admin_password
    generated = password is None
    if generated:
        password = generate_password()
    try:
        with store.session() as session:
            if session.scalar(select(Account.id).where(Account.role == "admin").limit(1)):
                return None
            if session.scalar(select(Account.id).where(Account.username == name)):
                raise AccountError(f"an account named {name!r} exists but is not an admin")
            _create_account(session, name, "admin", password, display_name="Administrator")
    except IntegrityError:
        # Another process created it at the same moment: that one prints the password.
        return None
    if generated:
        echo(
            f"Created the admin account {name!r} with password "
            f"{password} (shown once; set MEDVISION_ADMIN_PASSWORD to choose it)."
        )
        return password
    echo(f"Created the admin account {name!r} with the password from MEDVISION_ADMIN_PASSWORD.")
    return None


def is_enrolled(session: Session, study_id: int, account_id: int) -> bool:
    return (
        session.scalar(
            select(StudyRater.id).where(
                StudyRater.study_id == study_id, StudyRater.account_id == account_id
            )
        )
        is not None
    )
