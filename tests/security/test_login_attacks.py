"""Review rows 6-10 and 13 (log-in and passwords) and D17 (SSO e-mail), on SQLite and PostgreSQL.

Every attempt goes through `accounts.log_in`, the function the log-in page calls, with real
threads and a real store.
"""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from dataclasses import replace

import pytest
from sqlalchemy import select, update

from studies.readers import accounts
from studies.readers.accounts import LOGIN_FAILED, AccountError, AuthError, LoginPolicy
from studies.store.audit import events
from studies.store.db import Store
from studies.store.schema import Account
from studies.store.settings import Settings

PASSWORD = "correct horse battery"
# Small delays so the tests wait a second, not a quarter of an hour; same rules.
QUICK = LoginPolicy(
    account_free_tries=3, account_delay_cap_s=1.0, client_free_tries=3, client_delay_cap_s=60.0
)


def _client() -> str:
    return f"198.51.100.{uuid.uuid4().hex[:6]}"  # unique: the throttle is process-wide


def _failures(store: Store, username: str) -> int:
    with store.session() as session:
        return session.scalar(select(Account.failed_logins).where(Account.username == username))


def _attempt(store: Store, username: str, password: str, **options) -> str | None:  # noqa: ANN003
    try:
        return accounts.log_in(store, username, password, **options)
    except AuthError as exc:
        assert str(exc) == LOGIN_FAILED
        return None


def _parallel(count: int, target) -> list:  # noqa: ANN001
    results: list = [None] * count
    start = threading.Barrier(count)

    def run(index: int) -> None:
        start.wait()
        results[index] = target()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def test_row06_repeated_wrong_passwords_slow_the_account_down(store: Store) -> None:
    """row 06: after the free tries, even the right password waits for the account's delay."""
    accounts.create_account(store, "bf-victim", "rater", PASSWORD)
    for _ in range(QUICK.account_free_tries + 1):
        assert _attempt(store, "bf-victim", "not the password", policy=QUICK) is None
    assert _attempt(store, "bf-victim", PASSWORD, policy=QUICK) is None  # must wait
    time.sleep(QUICK.account_delay_cap_s + 0.1)
    assert _attempt(store, "bf-victim", PASSWORD, policy=QUICK) is not None
    assert _failures(store, "bf-victim") == 0


def test_row07_row08_parallel_guesses_are_all_counted(store: Store) -> None:
    """row 07, row 08: 30 parallel wrong guesses (20 and 60 in the review): all counted."""
    threads = 30
    info = accounts.create_account(store, "bf-victim", "rater", PASSWORD)
    outcomes = _parallel(threads, lambda: _attempt(store, "bf-victim", "wrong guess!"))
    assert outcomes == [None] * threads
    assert _failures(store, "bf-victim") == threads
    with store.session() as session:
        actions = [e.action for e in events(session, entity="account", entity_id=str(info.id))]
        locked_until = session.scalar(select(Account.locked_until))
    checked = actions.count("auth.login_failed")
    assert checked + actions.count("auth.login_delayed") == threads
    # Checks are one at a time; past the free tries each one sets a new wait.
    assert checked <= accounts.LOGIN_POLICY.account_free_tries + 4
    assert accounts.aware(locked_until) > accounts.now_utc()


def test_row07_parallel_tries_from_one_client_are_held_back(store: Store) -> None:
    """row 07: 24 parallel tries from one browser: only the client's free tries get through."""
    accounts.create_account(store, "bf-victim", "rater", PASSWORD)
    client = _client()
    _parallel(24, lambda: _attempt(store, "bf-victim", "wrong guess!", client=client, policy=QUICK))
    # The client's free tries plus the one its first delay allows reach the account at most.
    assert _failures(store, "bf-victim") <= QUICK.client_free_tries + 1
    # The guessing client is refused even with the right password now.
    assert _attempt(store, "bf-victim", PASSWORD, client=client, policy=QUICK) is None


def _timed(store: Store, username: str) -> float:
    began = time.perf_counter()
    assert _attempt(store, username, "wrong guess!") is None
    return time.perf_counter() - began


def test_row09_unknown_wrong_and_waiting_accounts_look_the_same(store: Store) -> None:
    """row 09: one message and about one timing for unknown user, wrong password, must wait."""
    repeats = 11
    # A fresh account per wrong guess: each stays below its free tries (a plain "wrong").
    for index in range(repeats + 1):
        accounts.create_account(store, f"real-user-{index}", "rater", PASSWORD)
    accounts.create_account(store, "waiting-user", "rater", PASSWORD)
    with store.session() as session:
        session.execute(
            update(Account)
            .where(Account.username == "waiting-user")
            .values(failed_logins=50, locked_until=accounts.now_utc() + accounts.timedelta(hours=1))
        )
    kinds = {"unknown": "no-such-user", "wrong": "real-user-{}", "waiting": "waiting-user"}
    for username in kinds.values():  # warm-up: the dummy hash, connections, statements
        _timed(store, username.format(repeats))
    timings: dict[str, list[float]] = {kind: [] for kind in kinds}
    for index in range(repeats):
        for kind, username in kinds.items():  # interleaved: machine load hits all alike
            timings[kind].append(_timed(store, username.format(index)))
    medians = {kind: statistics.median(values) for kind, values in timings.items()}
    assert max(medians.values()) / min(medians.values()) < 1.5, medians
    # The waiting account was never checked, each wrong one was, once.
    assert _failures(store, "waiting-user") == 50 + repeats + 1
    assert all(_failures(store, f"real-user-{i}") == 1 for i in range(repeats + 1))


def test_row10_an_attacker_cannot_keep_the_admin_out(store: Store, tmp_path) -> None:
    """row 10: guesses for the admin from another client leave the owner a short wait only."""
    settings = replace(
        Settings(home=tmp_path), admin_name="site-chief", admin_password="tulip-river-quartz"
    )
    accounts.ensure_admin(store, settings, echo=lambda _line: None)
    assert accounts.get_account(store, "admin") is None
    attacker = _client()
    for _ in range(30):
        assert _attempt(store, "site-chief", "guess-guess-1", client=attacker, policy=QUICK) is None
    assert _failures(store, "site-chief") <= QUICK.client_free_tries + 1
    with store.session() as session:
        allowed_at = accounts.aware(session.scalar(select(Account.locked_until)))
    # The owner's wait is the account's short delay at most, not a lock anyone can renew.
    if allowed_at is not None:
        assert (allowed_at - accounts.now_utc()).total_seconds() <= QUICK.account_delay_cap_s
        time.sleep(max(0.0, (allowed_at - accounts.now_utc()).total_seconds()) + 0.05)
    token = _attempt(store, "site-chief", "tulip-river-quartz", client=_client(), policy=QUICK)
    assert token is not None
    assert accounts.resolve_session(store, token).role == "admin"


@pytest.mark.parametrize(
    "weak", ["password12", "1234567890", "aaaaaaaaaa", "Welcome2024!", "qwertyuiop", "abcabcabca"]
)
def test_row13_common_passwords_are_refused(store: Store, weak: str) -> None:
    """row 13: at least 10 characters is not enough: common passwords and patterns refused."""
    with pytest.raises(AccountError, match="too common or too simple"):
        accounts.create_account(store, "ada", "rater", weak)
    assert accounts.get_account(store, "ada") is None
    assert accounts.create_account(store, "ada", "rater", "otter lamp 42 violet")


def test_d17_sso_needs_a_verified_unique_address(store: Store) -> None:
    """D17: SSO matches one account, on an address the identity provider verified."""
    info = accounts.create_account(store, "ada", "rater", None, email="Ada@Example.org")
    assert accounts.account_for_email(store, "ada@example.org") is None  # not verified
    assert accounts.account_for_email(store, "ada@example.org", verified=True).id == info.id
    with pytest.raises(AccountError, match="already belongs"):
        accounts.create_account(store, "ada2", "rater", None, email="ada@example.org")
    # Two accounts with one address (made before this rule): neither is picked.
    twin = accounts.create_account(store, "ada3", "rater", None)
    with store.session() as session:
        session.execute(
            update(Account).where(Account.id == twin.id).values(email="ada@example.org")
        )
    with pytest.raises(AuthError, match="share your e-mail"):
        accounts.account_for_email(store, "ada@example.org", verified=True)


def test_behind_a_proxy_the_client_is_the_address_the_trusted_proxy_appended() -> None:
    """A reverse proxy on the same machine (the recommended TLS set-up) gives every browser
    the proxy's address: without attribution one guesser would slow every user's log-in."""
    from workbench.access import attributed_client

    proxy = ("10.0.0.5",)
    # A trusted proxy: the hop it appended, not what the browser claimed before it.
    assert attributed_client("10.0.0.5", "6.6.6.6, 192.168.1.20", proxy) == "192.168.1.20"
    assert attributed_client("10.0.0.5", None, proxy) is None
    # An untrusted sender cannot choose its address through the header.
    assert attributed_client("192.168.1.30", "1.2.3.4", proxy) == "192.168.1.30"
    # A local proxy that is not declared: no shared per-client key (per-account delay only).
    assert attributed_client("127.0.0.1", "192.168.1.20", ()) is None
    assert attributed_client(None, None, ()) is None
