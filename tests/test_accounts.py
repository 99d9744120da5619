"""Accounts, tokens and the audit trail in the store, on both backends; and the pure role arithmetic."""

from __future__ import annotations

import pytest

from taskloom.core.access import (
    REQUIRED, Action, AccessError, Forbidden, LoginPolicy, Principal, Role, can, check, check_user_name, login_wait,
    parse_role, token_digest,
)
from taskloom.storage.accounts import Accounts, LoginRefused
from taskloom.storage.audit import entries, record

pytestmark = pytest.mark.both_backends

PASSWORD = "correct horse battery"


@pytest.fixture
def accounts(ws):
    return Accounts(ws.db, policy=LoginPolicy(free=3, window=600, base=2, cap=60))


# -- roles (pure) ---------------------------------------------------------------------------------------------


@pytest.mark.sqlite_only
def test_each_role_allows_what_the_one_before_allows_and_more():
    allowed = {role: {a for a in Action if can(role, a)} for role in Role}
    assert allowed[Role.VIEWER] == {Action.VIEW}
    assert allowed[Role.OPERATOR] == {Action.VIEW, Action.TRIGGER, Action.CANCEL, Action.RERUN, Action.PAUSE}
    assert allowed[Role.EDITOR] == allowed[Role.OPERATOR] | {Action.SAVE, Action.RESTORE, Action.DELETE}
    assert allowed[Role.ADMIN] == set(Action)
    assert set(REQUIRED) == set(Action), "every action has a least role"


@pytest.mark.sqlite_only
def test_a_refusal_names_the_role_needed_and_the_fix():
    with pytest.raises(Forbidden) as caught:
        check(Principal("ann", Role.VIEWER, "token"), Action.TRIGGER)
    assert str(caught.value) == ("ann is a viewer and may not start runs: that needs operator or higher (an admin can"
                                 " change it with: taskloom users set-role ann operator)")
    check(Principal("ann", Role.OPERATOR, "token"), Action.TRIGGER)  # allowed: no exception


@pytest.mark.sqlite_only
@pytest.mark.parametrize("bad", ["boss", "", "admins"])
def test_an_unknown_role_lists_the_roles(bad):
    with pytest.raises(AccessError, match="the roles are viewer, operator, editor, admin"):
        parse_role(bad)
    assert parse_role(" Editor ") is Role.EDITOR


@pytest.mark.sqlite_only
@pytest.mark.parametrize("bad", ["Ann", "-x", "a b", "x" * 65, "local", "a/b", ""])
def test_user_names_are_checked(bad):
    with pytest.raises(AccessError):
        check_user_name(bad)
    assert check_user_name("ann.lee@example.com") == "ann.lee@example.com"


@pytest.mark.sqlite_only
def test_failed_logins_wait_longer_and_longer_then_forgotten():
    policy = LoginPolicy(free=3, window=600, base=2, cap=60)
    assert login_wait([0, 1], 2, policy) == 0
    assert login_wait([0, 1, 2], 2, policy) == 2  # the third failure: 2 s after it
    assert login_wait([0, 1, 2, 3], 3, policy) == 4
    assert login_wait([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 9, policy) == 60  # capped
    assert login_wait([0, 1, 2, 3], 700, policy) == 0  # outside the window


# -- users ------------------------------------------------------------------------------------------------------


def test_a_user_is_added_listed_changed_and_removed(accounts):
    assert not accounts.exist()
    accounts.add("ann", "admin", PASSWORD, now=100)
    accounts.add("bob", Role.VIEWER, None, now=101)
    assert accounts.exist()
    assert [(u.name, u.role, u.has_password) for u in accounts.list()] == [
        ("ann", Role.ADMIN, True), ("bob", Role.VIEWER, False)]
    assert accounts.set_role("bob", "operator") == (Role.VIEWER, Role.OPERATOR)
    assert accounts.get("bob").role is Role.OPERATOR
    accounts.create_token("bob")
    assert accounts.remove("bob") == 1
    assert [u.name for u in accounts.list()] == ["ann"]


def test_the_password_is_stored_as_an_argon2_hash(accounts, ws):
    accounts.add("ann", "admin", PASSWORD)
    (stored,) = ws.db.execute("SELECT password_hash FROM users").fetchone()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_bad_input_changes_nothing(accounts):
    accounts.add("ann", "admin", PASSWORD)
    for attempt, message in [
        (lambda: accounts.add("ann", "viewer", PASSWORD), "already exists"),
        (lambda: accounts.add("cy", "boss", PASSWORD), "unknown role 'boss'"),
        (lambda: accounts.add("cy", "viewer", "short"), "at least 10 characters"),
        (lambda: accounts.set_role("nobody", "viewer"), "no user 'nobody'; the users are: ann"),
        (lambda: accounts.remove("nobody"), "no user 'nobody'"),
        (lambda: accounts.set_role("ann", "viewer"), "last admin"),
        (lambda: accounts.remove("ann"), "last admin"),
        (lambda: accounts.create_token("nobody"), "no user 'nobody'"),
        (lambda: accounts.revoke_token(99), "no token with id 99"),
    ]:
        with pytest.raises(AccessError, match=message):
            attempt()
    assert [(u.name, u.role) for u in accounts.list()] == [("ann", Role.ADMIN)]
    assert accounts.tokens() == []


# -- logins -----------------------------------------------------------------------------------------------------


def test_a_login_needs_the_right_password_and_never_says_which_part_was_wrong(accounts):
    accounts.add("ann", "editor", PASSWORD)
    assert accounts.login("ann", PASSWORD, now=1000) == Principal("ann", Role.EDITOR, "password")
    for name, password in [("ann", "wrong password!"), ("nobody", PASSWORD)]:
        with pytest.raises(LoginRefused) as caught:
            accounts.login(name, password, now=1001)
        assert str(caught.value) == "wrong user name or password"


def test_failed_logins_are_rate_limited_without_checking_the_password(accounts):
    accounts.add("ann", "editor", PASSWORD)
    for at in (1000, 1001, 1002):
        with pytest.raises(LoginRefused, match="wrong user name or password"):
            accounts.login("ann", "not the password", now=at)
    with pytest.raises(LoginRefused, match="too many failed logins for ann; try again in 2 s") as caught:
        accounts.login("ann", PASSWORD, now=1002.5)  # even the right password waits
    assert caught.value.wait == pytest.approx(1.5)
    assert accounts.login("ann", PASSWORD, now=1004.5).name == "ann"  # waited: in, and the failures forgotten
    with pytest.raises(LoginRefused, match="wrong user name or password"):
        accounts.login("ann", "not the password", now=1005)


# -- tokens -----------------------------------------------------------------------------------------------------


def test_a_token_is_shown_once_stored_hashed_and_can_be_revoked(accounts, ws):
    accounts.add("ann", "admin", PASSWORD)
    accounts.add("op", "operator", None)
    token_id, token = accounts.create_token("op", label="nightly script", now=100)
    assert token.startswith("tlk_") and len(token) >= 40
    stored = [r[0] for r in ws.db.execute("SELECT digest FROM api_tokens")]
    assert stored == [token_digest(token)] and token not in str(stored)
    assert accounts.authenticate(token, now=200) == Principal("op", Role.OPERATOR, "token")
    assert accounts.tokens("op")[0].last_used == 200
    with pytest.raises(LoginRefused, match="invalid bearer token"):
        accounts.authenticate(token + "x")
    accounts.revoke_token(token_id, now=300)
    with pytest.raises(LoginRefused, match=f"token {token_id} of op was revoked"):
        accounts.authenticate(token, now=301)
    assert accounts.tokens()[0].to_dict(301)["state"] == "revoked"


def test_an_expired_token_is_refused_and_says_how_to_get_another(accounts):
    accounts.add("ann", "admin", PASSWORD)
    token_id, token = accounts.create_token("ann", expires=500, now=100)
    assert accounts.authenticate(token, now=499).name == "ann"
    with pytest.raises(LoginRefused, match=f"token {token_id} of ann has expired.*tokens create --user ann"):
        accounts.authenticate(token, now=500)
    with pytest.raises(AccessError, match="expire before it is made"):
        accounts.create_token("ann", expires=50, now=100)


def test_a_role_change_applies_to_the_tokens_at_once(accounts):
    accounts.add("ann", "admin", PASSWORD)
    accounts.add("op", "operator", None)
    _, token = accounts.create_token("op")
    accounts.set_role("op", "viewer")
    assert accounts.authenticate(token).role is Role.VIEWER


# -- the audit trail ------------------------------------------------------------------------------------------


def test_audit_rows_are_kept_in_order_and_filtered(ws):
    ann = Principal("ann", Role.ADMIN, "password")
    record(ws.db, ann, "login", source="web", at=10)
    record(ws.db, ann, "save", "workflow nightly", workflow="nightly", version=3, source="web", at=20)
    record(ws.db, "bob", "trigger", "workflow nightly", workflow="nightly", result="refused", detail="a viewer",
           source="api 127.0.0.1", at=30)
    rows = entries(ws.db)
    assert [(e.actor, e.action, e.result) for e in rows] == [
        ("bob", "trigger", "refused"), ("ann", "save", "ok"), ("ann", "login", "ok")]
    assert rows[1].to_dict()["version"] == 3 and rows[1].via == "password"
    assert [e.action for e in entries(ws.db, user="ann")] == ["save", "login"]
    assert [e.action for e in entries(ws.db, workflow="nightly", since=25)] == ["trigger"]
    assert [e.action for e in entries(ws.db, before_id=rows[0].id, limit=1)] == ["save"]
    with pytest.raises(ValueError):
        record(ws.db, ann, "login", result="maybe")
