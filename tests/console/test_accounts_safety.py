"""Sign-in, password changes and account changes: no enumeration, no stale sessions, no console without an admin."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

import lineage.console.accounts as accounts_module
from lineage.console.accounts import FREE_FAILURES, AccountError
from lineage.console.app import Console
from lineage.console.sessions import COOKIE
from tests.console.conftest import PASSWORD, csrf_of, sign_in

Clients = Callable[[str | None], TestClient]
NEW_PASSWORD = "another-long-passphrase-9"


def _attempt(client: TestClient, name: str, password: str) -> tuple[int, str]:
    form = client.get("/login")
    r = client.post("/login", data={"name": name, "password": password, "csrf": csrf_of(form.text)},
                    follow_redirects=False)  # fmt: skip
    found = re.search(r'<p class="error" role="alert">([^<]*)</p>', r.text)
    return r.status_code, re.sub(r"\d+", "N", found.group(1) if found else "")


def test_known_and_unknown_names_answer_alike_locked_or_not(client_for: Clients) -> None:
    """Every attempt on a known name and on an unknown one gets the same status and message, past the lock too."""
    client = client_for(None)
    known = [_attempt(client, "analyst", "wrong-password-1") for _ in range(FREE_FAILURES + 2)]
    unknown = [_attempt(client, "nobody-by-this-name", "wrong-password-1") for _ in range(FREE_FAILURES + 2)]
    assert known == unknown
    assert known[0] == (401, "wrong name or password")
    assert known[-1] == (401, "too many failed sign-ins: try again in N s")  # unknown names lock as well


def test_argon2_runs_for_known_unknown_and_disabled_names(console: Console, monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrong password, an unknown name and a disabled account each cost one Argon2 verify (no fast path)."""
    calls: list[str] = []
    real = accounts_module._verify

    def counted(hashed: str, password: str) -> bool:
        calls.append(hashed[:9])
        return real(hashed, password)

    monkeypatch.setattr(accounts_module, "_verify", counted)
    console.accounts.set_disabled("responder", True)
    for name, password in (("analyst", "wrong-password-1"), ("no-such-user", PASSWORD), ("responder", PASSWORD)):
        with pytest.raises(accounts_module.SignInRefused, match="^wrong name or password$"):
            console.accounts.sign_in(name, password)
    assert calls == ["$argon2id"] * 3


def test_the_login_page_shows_only_its_own_messages(client_for: Clients) -> None:
    """/login?error= picks one of our messages by code; any other text is never shown (no phishing lines)."""
    client = client_for(None)
    bait = "Your account is suspended: call +1 555 0100 now"
    page = client.get("/login", params={"error": bait}).text
    assert "suspended" not in page and 'class="error"' not in page
    assert "The sign-in form expired" in client.get("/login", params={"error": "expired"}).text


def test_a_password_change_ends_every_other_session(console: Console, client_for: Clients) -> None:
    """After a change, the user's other sessions are signed out; the changer goes on in a fresh session."""
    here, elsewhere = client_for("analyst"), client_for("analyst")
    before = here.cookies[COOKIE]
    r = here.post("/account/password", data={"csrf": csrf_of(here.get("/").text), "old": PASSWORD,
                                              "new": NEW_PASSWORD}, follow_redirects=False)  # fmt: skip
    assert r.status_code == 303
    assert elsewhere.get("/person", follow_redirects=False).status_code == 303  # sent to sign in
    assert here.cookies[COOKIE] != before and here.get("/person").status_code == 200
    entry = console.audit.search(action="password.change")[0]
    assert entry["detail"] == "other sessions ended=1 api tokens kept=0"


def test_api_tokens_outlive_a_password_change(console: Console, client_for: Clients) -> None:
    """Tokens are not derived from the password: they keep working after a change (an admin revokes them)."""
    _, token = console.accounts.new_token("analyst")
    console.accounts.change_password("analyst", PASSWORD, NEW_PASSWORD)
    me = client_for(None).get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json()["name"] == "analyst"


def test_an_admin_cannot_disable_herself(console: Console, client_for: Clients) -> None:
    """Disabling one's own account is refused on the page with one line, and the account stays enabled."""
    admin = client_for("admin")
    r = admin.post("/users/admin/disable", data={"csrf": csrf_of(admin.get("/").text)})
    assert r.status_code == 400 and "cannot disable your own account" in r.text
    assert console.accounts.get("admin") is not None and admin.get("/users").status_code == 200


def test_the_last_enabled_admin_cannot_be_disabled(console: Console, client_for: Clients) -> None:
    """With two admins one may disable the other; then the one left cannot be disabled (by anyone)."""
    console.accounts.add("second", "admin", PASSWORD)
    second = sign_in(client_for(None), "second")
    r = second.post("/users/admin/disable", data={"csrf": csrf_of(second.get("/").text)})
    assert r.status_code == 200 and console.accounts.get("admin") is None
    with pytest.raises(AccountError, match="last enabled admin"):
        console.accounts.set_disabled("second", True)
    assert console.accounts.get("second") is not None
    console.accounts.set_disabled("analyst", True)  # other roles are not held back
    with pytest.raises(AccountError, match="no account 'ghost'"):
        console.accounts.set_disabled("ghost", True)


def test_an_admin_reset_ends_the_accounts_sessions(console: Console, client_for: Clients) -> None:
    """An admin's reset shows a one-time password once, signs the account out everywhere, and is audited."""
    analyst, admin = client_for("analyst"), client_for("admin")
    r = admin.post("/users/analyst/reset", data={"csrf": csrf_of(admin.get("/").text)})
    found = re.search(r"<code>([^<]+)</code>", r.text)
    assert r.status_code == 200 and found is not None
    assert analyst.get("/person", follow_redirects=False).status_code == 303  # signed out
    fresh = sign_in(client_for(None), "analyst", found.group(1))
    assert fresh.get("/person", follow_redirects=False).headers["location"] == "/account/password"
    assert console.audit.search(action="password.reset")[0]["detail"] == "analyst sessions ended=1"
