"""The web app's login, roles and audit page, driven headless with Streamlit's AppTest.

Without accounts nothing changes (no login, everything allowed); with them every page starts behind the
login form, each role sees only the buttons it may use, and a click it may not make (a stale page, a
forged widget state) is refused by the handler itself, with the reason shown and an audit row.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from taskloom.storage.accounts import Accounts
from taskloom.storage.audit import entries, record
from taskloom.storage.config import Config
from taskloom.storage.runs import list_runs
from taskloom.storage.workflows import get_workflow, list_versions, list_workflows
from taskloom.storage.store import Workspace
from taskloom.ui.web import auth

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "taskloom" / "ui" / "web" / "app.py")
HELLO = json.loads((ROOT / "assets" / "examples" / "hello.json").read_text())
PASSWORDS = {"ann": "ann's long password", "olga": "olga's long password", "vic": "vic's long password",
             "ed": "ed's long password"}
ROLES = {"ann": "admin", "olga": "operator", "vic": "viewer", "ed": "editor"}


@pytest.fixture
def team(ws: Workspace) -> Workspace:
    """A home with an admin (ann), an editor (ed), an operator (olga) and a viewer (vic), and one workflow."""
    accounts = Accounts(ws.db)
    for name, role in ROLES.items():
        accounts.add(name, role, PASSWORDS[name])
    ws.save(HELLO, actor="ann")
    return ws


@pytest.fixture
def app(home: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TASKLOOM_HOME", str(home))

    def open_app() -> AppTest:
        at = AppTest.from_file(APP, default_timeout=30)
        return ok(at.run())

    return open_app


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def login(at: AppTest, name: str, password: str | None = None) -> AppTest:
    at.text_input(key="login_user").input(name)
    at.text_input(key="login_password").input(PASSWORDS[name] if password is None else password)
    return ok(at.button(key="login_submit").click().run())


def signed_in_as(app, name: str, page: str | None = None) -> AppTest:
    at = login(app(), name)
    if page:
        ok(at.switch_page(page).run())
    return at


def keys(at: AppTest) -> set[str]:
    """The keys of every button on the page (form submit buttons included)."""
    return {b.key for b in at.button}


def texts(at: AppTest) -> str:
    parts = []
    for kind in ("success", "info", "warning", "error", "markdown", "caption", "title"):
        parts += [str(e.value) for e in getattr(at, kind)]
    return "\n".join(parts)


def login_shown(at: AppTest) -> bool:
    return "login_submit" in keys(at)


# -- no accounts: nothing changes ----------------------------------------------------------------------------


def test_without_accounts_there_is_no_login_and_everything_is_allowed(ws: Workspace, app):
    ws.save(HELLO)
    at = app()
    assert not login_shown(at) and "logout" not in keys(at)
    assert {"designer_save", "designer_run"} <= keys(at)
    ok(at.switch_page("views/workflows.py").run())
    assert {"wf_run_hello", "wf_pause_hello", "import_file_go"} <= keys(at)
    ok(at.button(key="wf_run_hello").click().run())
    run = list_runs(ws.db, "hello")[0]
    assert run.started_by == "local"
    row = entries(ws.db, action="trigger")[0]
    assert (row.actor, row.via, row.source, row.result) == ("local", "local", "web", "ok")


# -- the login -----------------------------------------------------------------------------------------------


def test_with_accounts_every_page_shows_only_the_login_form(team: Workspace, app):
    at = app()
    assert login_shown(at)
    assert keys(at) == {"login_submit"}
    assert not at.dataframe and "Designer" not in texts(at)
    ok(at.switch_page("views/workflows.py").run())
    assert keys(at) == {"login_submit"} and "Workflows" not in [t.value for t in at.title]


def test_a_wrong_password_is_refused_shown_and_audited(team: Workspace, app):
    at = login(app(), "vic", "not the password")
    assert login_shown(at)
    assert "wrong user name or password" in texts(at)
    assert at.text_input(key="login_password").value == ""  # the password does not stay in the session
    row = entries(team.db, action="login")[0]
    assert (row.actor, row.result, row.source, row.target) == ("vic", "refused", "web", "user vic")
    at = login(app(), "nobody", "any password at all")
    assert "wrong user name or password" in texts(at)
    assert entries(team.db, action="login")[0].actor == "nobody"


def test_failed_logins_are_rate_limited_with_the_wait_shown(team: Workspace, app):
    at = app()
    for _ in range(5):
        at = login(at, "vic", "not the password")
    at = login(at, "vic")  # the right password, but it must wait first
    assert login_shown(at)
    assert "too many failed logins for vic; try again in" in texts(at)
    assert [r.result for r in entries(team.db, action="login", user="vic")] == ["refused"] * 6


def test_login_then_logout_both_audited(team: Workspace, app):
    at = login(app(), "Vic ", PASSWORDS["vic"])  # names are matched as stored: trimmed, lower case
    assert not login_shown(at)
    assert "Signed in as **vic** (viewer)" in texts(at)
    row = entries(team.db, action="login")[0]
    assert (row.actor, row.via, row.result, row.source) == ("vic", "password", "ok", "web")
    ok(at.button(key="logout").click().run())
    assert login_shown(at) and "you logged out" in texts(at)
    assert entries(team.db, action="logout")[0].actor == "vic"


def test_a_session_expires_after_web_session_hours(team: Workspace, app, monkeypatch: pytest.MonkeyPatch):
    Config(team.db).set("web.session_hours", 1)
    clock = [time.time()]
    monkeypatch.setattr(auth, "now", lambda: clock[0])
    at = signed_in_as(app, "olga", "views/workflows.py")
    assert at.session_state[auth.LOGIN]["expires"] == pytest.approx(clock[0] + 3600)
    clock[0] += 3599
    ok(at.run())
    assert "wf_run_hello" in keys(at)
    clock[0] += 2  # past the hour: the next click is refused by its handler, then the login shows
    ok(at.button(key="wf_run_hello").click().run())
    assert login_shown(at) and "your session ended after 1 hour(s); log in again" in texts(at)
    assert list_runs(team.db, "hello") == []
    row = entries(team.db, action="trigger")[0]
    assert (row.actor, row.result, row.detail) == ("olga", "refused", "not logged in (the session ended)")
    at = login(at, "olga")
    assert not login_shown(at)


def test_a_removed_user_is_signed_out_at_the_next_click(team: Workspace, app):
    at = signed_in_as(app, "vic")
    Accounts(team.db).remove("vic")
    ok(at.run())
    assert login_shown(at) and "the account vic no longer exists" in texts(at)


# -- roles: what each sees -----------------------------------------------------------------------------------


ACTION_BUTTONS = {"designer_save", "designer_run", "wf_run_hello", "wf_pause_hello", "wf_dup_hello", "wf_del_hello",
                  "import_file_go", "import_text_go", "secret_save", "runs_act_cancel", "runs_act_rerun"}


def test_a_viewer_sees_no_save_run_import_pause_restore_or_cancel(team: Workspace, app):
    team.save({**HELLO, "title": "v2"}, actor="ann")
    run_id, _ = team.start_run(team.target("hello"), {}, from_text=False)
    at = signed_in_as(app, "vic")
    assert not keys(at) & ACTION_BUTTONS
    assert "Import a workflow file" not in [e.label for e in at.expander]
    assert at.get("text_input") and "designer_save_msg" not in {t.key for t in at.text_input}
    ok(at.switch_page("views/workflows.py").run())
    assert "wf_open_hello" in keys(at)  # reading is allowed
    assert not keys(at) & ACTION_BUTTONS
    assert not any(k.startswith(("restore_go", "tpl_use")) for k in keys(at))
    ok(at.switch_page("views/runs.py").run())
    at.selectbox(key="runs_pick").select(run_id)
    ok(at.run())
    assert [h.value for h in at.subheader][0] == f"Run {run_id} · hello v2"
    assert not {k for k in keys(at) if k.startswith("runs_act_")}
    ok(at.switch_page("views/settings.py").run())
    assert not keys(at) & {"secret_save", "roots_add", "notify_webhook_save"}
    assert "are for admins" in texts(at)


def test_an_operator_can_trigger_and_pause_but_not_save(team: Workspace, app):
    at = signed_in_as(app, "olga")
    assert "designer_run" in keys(at) and "designer_save" not in keys(at)
    ok(at.switch_page("views/workflows.py").run())
    assert {"wf_run_hello", "wf_pause_hello"} <= keys(at)
    assert not keys(at) & {"wf_dup_hello", "wf_del_hello", "import_file_go"}
    ok(at.button(key="wf_run_hello").click().run())
    run = list_runs(team.db, "hello")[0]
    assert (run.trigger, run.started_by) == ("manual", "olga")
    row = entries(team.db, action="trigger")[0]
    assert (row.actor, row.target, row.workflow, row.version, row.result, row.source) == (
        "olga", f"run {run.id}", "hello", 1, "ok", "web")
    ok(at.button(key="wf_pause_hello").click().run())
    assert get_workflow(team.db, "hello").paused
    assert entries(team.db, action="pause")[0].actor == "olga"


def test_an_editor_saves_from_the_designer_and_owns_the_new_workflow(team: Workspace, app):
    at = signed_in_as(app, "ed")
    assert {"designer_save", "designer_run"} <= keys(at)
    ok(at.button(key="designer_save").click().run())  # the new, empty workflow: not valid yet
    row = entries(team.db, action="save")[0]
    assert (row.actor, row.result, row.source) == ("ed", "failed", "web") and "not valid" in row.detail
    at.session_state["designer_doc"] = {**HELLO, "name": "hello-ed"}
    ok(at.run())
    ok(at.button(key="designer_save").click().run())
    row = entries(team.db, action="save")[0]
    assert (row.actor, row.result, row.workflow, row.version) == ("ed", "ok", "hello-ed", 1)
    owner = team.db.execute("SELECT owner FROM workflows WHERE name = 'hello-ed'").fetchone()[0]
    assert owner == "ed"
    ok(at.button(key="designer_run").click().run())
    assert list_runs(team.db, "hello-ed")[0].started_by == "ed"


def test_the_settings_page_is_complete_for_an_admin(team: Workspace, app):
    at = signed_in_as(app, "ann", "views/settings.py")
    assert {"secret_save", "roots_add", "notify_webhook_save"} <= keys(at)
    at.text_input(key="secret_name").input("db_password")
    at.text_input(key="secret_value").input("s3cret value")
    ok(at.button(key="secret_save").click().run())
    row = entries(team.db, action="secret set")[0]
    assert (row.actor, row.target, row.result) == ("ann", "secret db_password", "ok")
    assert "s3cret value" not in texts(at) and "s3cret" not in json.dumps([r.to_dict() for r in entries(team.db)])


# -- forged requests: the handler checks the role again ---------------------------------------------------------


def test_a_stale_run_button_is_refused_after_the_role_went_down(team: Workspace, app):
    at = signed_in_as(app, "olga", "views/workflows.py")
    Accounts(team.db).set_role("olga", "viewer")  # the page still shows the button; the click must not count
    ok(at.button(key="wf_run_hello").click().run())
    assert list_runs(team.db, "hello") == []
    assert "olga is a viewer and may not start runs" in texts(at)
    row = entries(team.db, action="trigger")[0]
    assert (row.actor, row.result, row.workflow, row.source) == ("olga", "refused", "hello", "web")
    assert "needs operator or higher" in row.detail
    assert "wf_run_hello" not in keys(at)  # and now it is gone


def test_a_forged_save_click_is_refused_and_nothing_is_stored(team: Workspace, app):
    at = signed_in_as(app, "ed")
    at.session_state[auth.LOGIN] = {**at.session_state[auth.LOGIN], "name": "vic"}  # the session says vic now
    ok(at.button(key="designer_save").click().run())
    assert [r.version for r in list_versions(team.db, "hello")] == [1]
    assert "vic is a viewer and may not save workflows" in texts(at)
    row = entries(team.db, action="save")[0]
    assert (row.actor, row.result) == ("vic", "refused")


@pytest.mark.parametrize("button, action", [("wf_pause_hello", "pause"), ("wf_del_hello", "delete"),
                                            ("wf_dup_hello", "save"), ("import_text_go", "import")])
def test_forged_workflow_actions_are_refused(team: Workspace, app, button: str, action: str):
    at = signed_in_as(app, "ann", "views/workflows.py")
    if button == "wf_del_hello":
        ok(at.checkbox(key="wf_del_confirm_hello").check().run())
    at.session_state[auth.LOGIN] = {**at.session_state[auth.LOGIN], "name": "vic"}
    ok(at.button(key=button).click().run())  # drawn for ann; the click arrives as vic's
    assert [w.name for w in list_workflows(team.db)] == ["hello"]
    assert get_workflow(team.db, "hello").version == 1 and not get_workflow(team.db, "hello").paused
    assert "vic is a viewer and may not" in texts(at)
    row = entries(team.db, action=action)[0]
    assert (row.actor, row.result, row.source) == ("vic", "refused", "web")


def test_a_forged_cancel_on_the_runs_page_is_refused(team: Workspace, app):
    run_id, _ = team.start_run(team.target("hello"), {}, from_text=False)
    at = signed_in_as(app, "olga", "views/runs.py")
    at.selectbox(key="runs_pick").select(run_id)
    ok(at.run())
    assert "runs_act_cancel" in keys(at)
    Accounts(team.db).set_role("olga", "viewer")
    ok(at.button(key="runs_act_cancel").click().run())
    assert team.run(run_id).status == "queued"
    row = entries(team.db, action="cancel")[0]
    assert (row.actor, row.result, row.target) == ("olga", "refused", f"run {run_id}")


# -- the audit page -----------------------------------------------------------------------------------------


def test_the_audit_page_is_for_admins_only(team: Workspace, app):
    at = signed_in_as(app, "ed")
    with pytest.raises(ValueError, match="Could not find a navigation page"):  # not among ed's pages at all
        at.switch_page("views/audit.py").run()
    at = signed_in_as(app, "ann", "views/audit.py")
    assert "Audit trail" in [t.value for t in at.title]


def test_the_audit_page_lists_newest_first_and_filters(team: Workspace, app):
    day = 86400.0
    start = time.time() - 10 * day
    record(team.db, "olga", "trigger", "run 1", workflow="hello", source="cli", at=start)
    record(team.db, "ed", "save", "workflow other", workflow="other", version=2, source="web", at=start + day)
    record(team.db, "olga", "cancel", "run 1", workflow="hello", source="api 10.0.0.7", at=start + 5 * day)
    at = signed_in_as(app, "ann", "views/audit.py")
    rows = at.dataframe[0].value.to_dict("records")
    assert [r["action"] for r in rows[:4]] == ["login", "cancel", "save", "trigger"]
    assert rows[0]["actor"] == "ann" and rows[1]["source"] == "api 10.0.0.7"

    def shown() -> list[tuple[str, str]]:
        if not at.dataframe:
            return []
        return [(r["actor"], r["action"]) for r in at.dataframe[0].value.to_dict("records")]

    at.text_input(key="audit_user").input("olga")
    ok(at.run())
    assert shown() == [("olga", "cancel"), ("olga", "trigger")]
    at.selectbox(key="audit_action").select("trigger")
    ok(at.run())
    assert shown() == [("olga", "trigger")]
    at.text_input(key="audit_user").input("")
    at.selectbox(key="audit_action").select("(any)")
    at.text_input(key="audit_workflow").input("other")
    ok(at.run())
    assert shown() == [("ed", "save")]
    at.text_input(key="audit_workflow").input("")
    from datetime import datetime, timezone

    at.date_input(key="audit_since").set_value(datetime.fromtimestamp(start + 3 * day, tz=timezone.utc).date())
    ok(at.run())
    assert shown() == [("ann", "login"), ("olga", "cancel")]
    at.text_input(key="audit_user").input("nobody")
    ok(at.run())
    assert shown() == [] and "No audit rows match." in texts(at)


def test_the_audit_page_pages_back_by_id(team: Workspace, app):
    for i in range(104):
        record(team.db, "olga", "trigger", f"run {i}", workflow="hello")
    at = signed_in_as(app, "ann", "views/audit.py")
    first = at.dataframe[0].value.to_dict("records")
    assert len(first) == 100 and first[0]["action"] == "login" and first[-1]["target"] == "run 5"
    ok(at.button(key="audit_older").click().run())
    rest = at.dataframe[0].value.to_dict("records")
    assert [r["target"] for r in rest] == ["run 4", "run 3", "run 2", "run 1", "run 0"]
    assert "audit_older" not in keys(at)
    ok(at.button(key="audit_newest").click().run())
    assert len(at.dataframe[0].value) == 100


# -- single sign-on (Streamlit's st.login; the provider's user is given as AppTest's st.user) --------------------

AUTH = {"redirect_uri": "http://127.0.0.1:8501/oauth2callback", "cookie_secret": "a cookie secret for tests",
        "client_id": "taskloom", "client_secret": "not used here",
        "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration"}


@pytest.fixture
def sso_app(home: Path, monkeypatch: pytest.MonkeyPatch):
    """The app with [auth] in its secrets; ``open_app(claims)`` runs it for the provider's user ``claims``."""
    monkeypatch.setenv("TASKLOOM_HOME", str(home))

    def open_app(claims: dict[str, Any] | None = None) -> AppTest:
        at = AppTest.from_file(APP, default_timeout=30)
        at.secrets["auth"] = AUTH
        at.user = {"is_logged_in": False} if claims is None else {"is_logged_in": True, **claims}
        return ok(at.run())

    return open_app


def test_the_login_offers_single_sign_on_only_when_configured(team: Workspace, app, sso_app):
    assert "login_sso" not in keys(app())
    at = sso_app()
    assert {"login_submit", "login_sso"} <= keys(at)


def test_the_sign_on_button_says_what_to_install_when_authlib_is_missing(team: Workspace, sso_app):
    try:
        import authlib  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("Authlib is installed: the button would hand over to the identity provider")
    at = ok(sso_app().button(key="login_sso").click().run())
    assert "single sign-on needs Authlib, which is not installed here: pip install 'taskloom[sso]'" in texts(at)
    assert login_shown(at)


def test_a_provider_user_whose_email_is_an_account_gets_its_role(team: Workspace, sso_app):
    Accounts(team.db).add("vic@example.com", "operator", None)
    at = sso_app({"email": "Vic@Example.com", "email_verified": True, "name": "Vic"})
    assert not login_shown(at)
    assert "Signed in as **vic@example.com** (operator)" in texts(at)
    assert "designer_run" in keys(at) and "designer_save" not in keys(at)
    row = entries(team.db, action="login")[0]
    assert (row.actor, row.via, row.result, row.source) == ("vic@example.com", "sso", "ok", "web")


def test_a_provider_user_matches_an_accounts_email_too(team: Workspace, sso_app):
    Accounts(team.db).add("edna", "editor", None, email="edna@example.com")
    at = sso_app({"email": "edna@example.com"})
    assert "Signed in as **edna** (editor)" in texts(at)
    assert "designer_save" in keys(at)


def test_a_provider_user_without_an_account_is_refused_once_and_can_sign_out(team: Workspace, sso_app):
    at = sso_app({"email": "stranger@example.com", "email_verified": True})
    assert login_shown(at) and "designer_save" not in keys(at)
    assert "single sign-on as stranger@example.com refused: no Taskloom account for stranger@example.com" in texts(at)
    assert "taskloom users add stranger@example.com --role ROLE --no-password" in texts(at)
    ok(at.run())
    ok(at.run())
    refused = [r for r in entries(team.db, action="login") if r.result == "refused"]
    assert [(r.actor, r.detail[:14]) for r in refused] == [("stranger@example.com", "single sign-on")]
    ok(at.button(key="login_sso_out").click().run())
    assert at.user == {"is_logged_in": False}


def test_an_unverified_provider_address_is_refused(team: Workspace, sso_app):
    Accounts(team.db).add("vic@example.com", "viewer", None)
    at = sso_app({"email": "vic@example.com", "email_verified": False})
    assert login_shown(at)
    assert "has not verified vic@example.com" in texts(at)


def test_logging_out_of_a_single_sign_on_session_ends_the_providers_too(team: Workspace, sso_app):
    Accounts(team.db).add("vic@example.com", "viewer", None)
    at = sso_app({"email": "vic@example.com"})
    assert not login_shown(at)
    ok(at.button(key="logout").click().run())
    assert login_shown(at) and at.user == {"is_logged_in": False}  # not signed straight back in
    ok(at.run())
    assert login_shown(at)
    assert [r.action for r in entries(team.db, user="vic@example.com")][:2] == ["logout", "login"]


def test_a_single_sign_on_session_expires_like_a_password_one(team: Workspace, sso_app, monkeypatch):
    Accounts(team.db).add("vic@example.com", "viewer", None)
    clock = [time.time()]
    monkeypatch.setattr(auth, "now", lambda: clock[0])
    at = sso_app({"email": "vic@example.com"})
    assert not login_shown(at)
    clock[0] += 12 * 3600 + 1
    ok(at.run())
    ok(at.run())  # the provider's session is ended on the run after the expiry was seen
    assert login_shown(at) and at.user == {"is_logged_in": False}


def test_reloading_never_extends_a_single_sign_on_session(team: Workspace, sso_app):
    """A reload is a new session the provider's cookie signs in again: it counts from the ID token's iat."""
    Accounts(team.db).add("vic@example.com", "viewer", None)
    at = sso_app({"email": "vic@example.com", "iat": time.time() - 11 * 3600})
    assert not login_shown(at)
    assert at.session_state[auth.LOGIN]["expires"] == pytest.approx(time.time() + 3600, abs=60)
    at = sso_app({"email": "vic@example.com", "iat": time.time() - 13 * 3600})  # a reload an hour after the end
    assert login_shown(at) and "your session ended after 12 hour(s); sign in again" in texts(at)
    ok(at.run())
    assert at.user == {"is_logged_in": False}


@pytest.mark.parametrize("button, action", [("secret_save", "secret set"), ("roots_add", "config set"),
                                            ("notify_webhook_save", "config set")])
def test_forged_settings_changes_are_refused(team: Workspace, app, button: str, action: str):
    at = signed_in_as(app, "ann", "views/settings.py")
    at.text_input(key="secret_name").input("db_password")
    at.text_input(key="secret_value").input("s3cret value")
    at.text_input(key="roots_new").input("/srv/data")
    at.text_input(key="notify_webhook_url").input("https://hooks.example.com/x")
    at.session_state[auth.LOGIN] = {**at.session_state[auth.LOGIN], "name": "ed"}  # an editor, not an admin
    ok(at.button(key=button).click().run())
    assert team.db.execute("SELECT count(*) FROM secrets").fetchone()[0] == 0
    assert Config(team.db).stored() == {}
    if button == "secret_save":
        assert at.session_state["secret_value"] == ""  # a refused value leaves the session too
    assert "ed is an editor and may not" in texts(at)
    row = entries(team.db, action=action)[0]
    assert (row.actor, row.result) == ("ed", "refused")
