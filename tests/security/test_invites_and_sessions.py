"""Review rows 11-14 (invites) and 16 (a stolen session cookie; log-out revokes it) on SQLite
and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from studies.readers import accounts
from studies.readers.accounts import AccountError, AuthError
from studies.store.db import Store
from studies.store.schema import Account, Invite

PASSWORD = "otter lamp 42 violet"


def test_row11_an_invite_link_works_once(store: Store) -> None:
    """row 11: the second use of an invite says "already been used; log in instead"."""
    token = accounts.create_invite(store, role="rater")
    accounts.accept_invite(store, token, "first", PASSWORD)
    with pytest.raises(AuthError, match="already been used; log in instead"):
        accounts.accept_invite(store, token, "second", PASSWORD)
    assert accounts.get_account(store, "second") is None


def test_row12_an_expired_invite_is_refused(store: Store) -> None:
    """row 12: an invite past its hours says it expired and to ask for a new one."""
    token = accounts.create_invite(store, role="rater", hours=0.0005)
    with store.session() as session:
        session.execute(update(Invite).values(expires_at=accounts.now_utc() - timedelta(seconds=1)))
    with pytest.raises(AuthError, match="expired; ask the study admin for a new one"):
        accounts.accept_invite(store, token, "late", PASSWORD)
    assert accounts.get_account(store, "late") is None


def test_row13_a_weak_password_leaves_the_invite_usable(store: Store) -> None:
    """row 13: a short or common password is refused with what to fix; the invite still
    works with a good password."""
    token = accounts.create_invite(store, role="rater")
    for weak, message in (("short", "at least 10"), ("password12", "too common")):
        with pytest.raises(AccountError, match=message):
            accounts.accept_invite(store, token, "ada", weak)
    assert accounts.inspect_invite(store, token).role == "rater"
    info, _session = accounts.accept_invite(store, token, "ada", PASSWORD)
    assert info.username == "ada"


def test_row14_one_invite_from_two_browsers_at_once_makes_one_account(store: Store) -> None:
    """row 14: the same invite submitted by 8 callers at the same moment: one account, the
    others are told the link was used."""
    token = accounts.create_invite(store, role="rater")
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def accept(index: int) -> None:
        barrier.wait()
        try:
            accounts.accept_invite(store, token, f"race-{index}", PASSWORD)
            outcomes.append("created")
        except AuthError as exc:
            outcomes.append(str(exc))
        except Exception as exc:  # noqa: BLE001 - a raw database error would be a finding
            outcomes.append(f"error: {exc!r}")

    threads = [threading.Thread(target=accept, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert outcomes.count("created") == 1, outcomes
    assert all("already been used" in o for o in outcomes if o != "created"), outcomes
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(Account)) == 1


def test_row16_a_replayed_session_works_until_log_out_then_nowhere(store: Store) -> None:
    """row 16: the session token (the cookie's value) replayed elsewhere is the rater; after
    log-out it is refused everywhere (revoked on the server, not only in the browser)."""
    accounts.create_account(store, "rater1", "rater", PASSWORD)
    token = accounts.log_in(store, "rater1", PASSWORD)
    assert accounts.resolve_session(store, token).username == "rater1"  # "another browser"
    accounts.log_out(store, token)
    assert accounts.resolve_session(store, token) is None
    with store.engine.connect() as connection:
        assert accounts.session_account_id(connection, token) is None
