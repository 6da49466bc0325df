"""Accounts on both backends: scrypt hashes, log-in delays, expiring sessions, invites."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from studies.readers import accounts
from studies.readers.accounts import AccountError, AuthError
from studies.store.audit import events
from studies.store.db import Store
from studies.store.schema import Account, AuthSession, Invite
from studies.store.settings import Settings

PASSWORD = "correct horse battery"


def test_password_hash_is_salted_scrypt_with_parameters() -> None:
    first = accounts.hash_password(PASSWORD)
    second = accounts.hash_password(PASSWORD)
    assert first != second  # a fresh salt each time
    scheme, n, r, p, _salt, _digest = first.split("$")
    assert (scheme, int(n), int(r), int(p)) == ("scrypt", accounts.SCRYPT_N, 8, 1)
    assert accounts.verify_password(PASSWORD, first)
    assert not accounts.verify_password(PASSWORD + "!", first)
    assert not accounts.verify_password(PASSWORD, "garbage")
    assert not accounts.verify_password(PASSWORD, None)


def test_create_account_checks_input(store: Store) -> None:
    info = accounts.create_account(store, "Dr.Ada", "rater", PASSWORD, display_name="Ada")
    assert info.username == "dr.ada" and info.role == "rater"
    with pytest.raises(AccountError, match="taken"):
        accounts.create_account(store, "dr.ada", "rater", PASSWORD)
    with pytest.raises(AccountError, match="at least"):
        accounts.create_account(store, "bob", "rater", "short")
    with pytest.raises(AccountError, match="role"):
        accounts.create_account(store, "carol", "superuser", PASSWORD)
    with pytest.raises(AccountError, match="username"):
        accounts.create_account(store, "no spaces allowed", "rater", PASSWORD)
    assert [a.username for a in accounts.list_accounts(store)] == ["dr.ada"]
    with store.session() as session:
        stored = session.scalar(select(Account.password_hash))
    assert PASSWORD not in stored and stored.startswith("scrypt$")


def test_log_in_session_and_log_out(store: Store) -> None:
    info = accounts.create_account(store, "rater1", "rater", PASSWORD)
    token = accounts.log_in(store, "rater1", PASSWORD)
    assert accounts.resolve_session(store, token).id == info.id
    with store.session() as session:
        hashes = list(session.scalars(select(AuthSession.token_hash)))
    assert token not in hashes and accounts.token_hash(token) in hashes
    accounts.log_out(store, token)
    assert accounts.resolve_session(store, token) is None
    assert accounts.resolve_session(store, "made-up-token") is None


def test_session_expires(store: Store) -> None:
    accounts.create_account(store, "rater1", "rater", PASSWORD)
    token = accounts.log_in(store, "rater1", PASSWORD, session_hours=1)
    with store.session() as session:
        session.execute(
            update(AuthSession).values(expires_at=accounts.now_utc() - timedelta(seconds=1))
        )
    assert accounts.resolve_session(store, token) is None


def test_failures_delay_the_next_attempt_instead_of_locking(store: Store) -> None:
    policy = accounts.LoginPolicy(account_free_tries=2, account_delay_cap_s=0.5)
    accounts.create_account(store, "rater1", "rater", PASSWORD)
    for _ in range(policy.account_free_tries + 1):
        with pytest.raises(AuthError, match="Log-in failed"):
            accounts.log_in(store, "rater1", "not the password", policy=policy)
    # Must wait: even the right password is refused, with the same message.
    with pytest.raises(AuthError) as refused:
        accounts.log_in(store, "rater1", PASSWORD, policy=policy)
    assert str(refused.value) == accounts.LOGIN_FAILED
    with store.session() as session:
        session.execute(
            update(Account).values(locked_until=accounts.now_utc() - timedelta(seconds=1))
        )
        actions = [e.action for e in events(session, entity="account")]
    # The free tries were checked; the tries made while the account had to wait were not.
    assert actions.count("auth.login_failed") == policy.account_free_tries
    assert actions.count("auth.login_delayed") == 2
    assert accounts.log_in(store, "rater1", PASSWORD, policy=policy)
    with store.session() as session:
        assert session.scalar(select(Account.failed_logins)) == 0


def test_unknown_user_and_inactive_account(store: Store) -> None:
    with pytest.raises(AuthError, match="Log-in failed"):
        accounts.log_in(store, "nobody", PASSWORD)
    info = accounts.create_account(store, "rater1", "rater", PASSWORD)
    token = accounts.log_in(store, "rater1", PASSWORD)
    accounts.set_active(store, info.id, False)
    assert accounts.resolve_session(store, token) is None
    with pytest.raises(AuthError):
        accounts.log_in(store, "rater1", PASSWORD)


def test_invite_is_single_use_and_expires(store: Store) -> None:
    admin = accounts.create_account(store, "admin", "admin", PASSWORD)
    token = accounts.create_invite(store, role="rater", username="ada", created_by=admin.id)
    with store.session() as session:
        assert session.scalar(select(Invite.token_hash)) == accounts.token_hash(token)
    assert accounts.inspect_invite(store, token).username == "ada"
    with pytest.raises(AccountError, match="this invite is for 'ada'"):
        accounts.accept_invite(store, token, "someone-else", PASSWORD)
    info, session_token = accounts.accept_invite(store, token, "ada", PASSWORD)
    assert info.role == "rater"
    assert accounts.resolve_session(store, session_token).username == "ada"
    with pytest.raises(AuthError, match="already been used"):
        accounts.accept_invite(store, token, "ada2", PASSWORD)

    late = accounts.create_invite(store, role="rater", hours=1)
    with store.session() as session:
        session.execute(
            update(Invite)
            .where(Invite.used_at.is_(None))
            .values(expires_at=accounts.now_utc() - timedelta(minutes=1))
        )
    with pytest.raises(AuthError, match="expired"):
        accounts.accept_invite(store, late, "bob", PASSWORD)
    with pytest.raises(AuthError, match="not valid"):
        accounts.accept_invite(store, "tampered", "bob", PASSWORD)
    assert accounts.get_account(store, "bob") is None


def test_ensure_admin_from_setting_or_printed_once(store: Store, tmp_path) -> None:
    printed: list[str] = []
    settings = replace(Settings(home=tmp_path), admin_password=None)
    password = accounts.ensure_admin(store, settings, echo=printed.append)
    assert password and password in printed[0]
    assert accounts.log_in(store, "admin", password)
    assert accounts.ensure_admin(store, settings, echo=printed.append) is None
    assert len(printed) == 1


def test_ensure_admin_uses_configured_password(store: Store, tmp_path) -> None:
    settings = replace(Settings(home=tmp_path), admin_password="configured-secret-1")
    assert accounts.ensure_admin(store, settings, echo=lambda _line: None) is None
    assert accounts.log_in(store, "admin", "configured-secret-1")
    assert accounts.get_account(store, "admin").role == "admin"


def test_open_admin_session_for_local_tools(store: Store) -> None:
    token = accounts.open_admin_session(store)
    info = accounts.resolve_session(store, token)
    assert info.role == "admin" and info.username == "local-admin"
    # No password: the account cannot be logged into from the app.
    with pytest.raises(AuthError):
        accounts.log_in(store, "local-admin", "")
    accounts.create_account(store, "boss", "admin", PASSWORD)
    assert accounts.resolve_session(store, accounts.open_admin_session(store)).role == "admin"


def test_parallel_correct_log_ins_all_succeed(store: Store) -> None:
    # A double click, two tabs: a check in flight makes the other one wait, not fail.
    import threading

    accounts.create_account(store, "rater1", "rater", PASSWORD)
    tokens: list[str | None] = []
    barrier = threading.Barrier(4)

    def attempt() -> None:
        barrier.wait()
        try:
            tokens.append(accounts.log_in(store, "rater1", PASSWORD))
        except AuthError:
            tokens.append(None)

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(tokens) == 4 and all(tokens)
    with store.session() as session:
        assert session.scalar(select(Account.failed_logins)) == 0


def test_the_first_admin_name_is_configurable_and_checked(store: Store, tmp_path) -> None:
    settings = replace(Settings(home=tmp_path), admin_name="Site Chief", admin_password=PASSWORD)
    with pytest.raises(AccountError, match="username 'Site Chief'"):
        accounts.ensure_admin(store, settings, echo=lambda _line: None)
    weak = replace(settings, admin_name="site-chief", admin_password="password12")
    with pytest.raises(AccountError, match="too common"):
        accounts.ensure_admin(store, weak, echo=lambda _line: None)
    said: list[str] = []
    accounts.ensure_admin(store, replace(settings, admin_name="site-chief"), echo=said.append)
    assert "'site-chief'" in said[0] and accounts.get_account(store, "admin") is None
    assert accounts.log_in(store, "site-chief", PASSWORD)
