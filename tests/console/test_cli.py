"""`lineage users` and `lineage serve` from the command line: accounts, tokens, and one-line refusals."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path


def _lineage(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lineage.cli", *args], input=stdin, capture_output=True, text=True,
                          check=False, timeout=120)  # fmt: skip


def test_users_add_list_token_and_revoke(tmp_path: Path) -> None:
    """A one-time password is printed once; tokens are made and revoked; the database file is private."""
    store = tmp_path / "store"
    store.mkdir(mode=0o700)
    added = _lineage("users", "add", "ana", "--role", "analyst", "--store", str(store))
    assert added.returncode == 0, added.stderr
    one_time = added.stdout.splitlines()[-1]
    assert len(one_time) >= 12
    listed = _lineage("users", "list", "--store", str(store))
    assert listed.stdout.split("\t")[:3] == ["ana", "analyst", "must change password"]
    token = _lineage("users", "token", "ana", "--store", str(store))
    assert token.stdout.splitlines()[-1].startswith("lin_")
    assert "1 token(s)" in _lineage("users", "list", "--store", str(store)).stdout
    assert "revoked 1 token(s)" in _lineage("users", "revoke", "ana", "--store", str(store)).stdout
    assert stat.S_IMODE(os.stat(store / "console.db").st_mode) == 0o600
    assert one_time not in (store / "console.db").read_bytes().decode("latin-1")  # only its hash is kept


def test_bad_input_is_one_line_naming_the_field(tmp_path: Path) -> None:
    """A short password, a taken name, a bad name and a missing store each give one line and exit 2."""
    store = tmp_path / "store"
    store.mkdir(mode=0o700)
    short = _lineage("users", "add", "bob", "--role", "admin", "--password-stdin", "--store", str(store), stdin="x\n")
    assert (short.returncode, short.stderr.strip()) == (2, "lineage: password: must be at least 12 characters")
    _lineage("users", "add", "bob", "--role", "admin", "--store", str(store))
    taken = _lineage("users", "add", "bob", "--role", "admin", "--store", str(store))
    assert taken.returncode == 2 and taken.stderr.count("\n") == 1 and "exists already" in taken.stderr
    bad = _lineage("users", "add", "Bob<script>", "--role", "admin", "--store", str(store))
    assert bad.returncode == 2 and bad.stderr.startswith("lineage: name: must be")
    missing = _lineage("serve", "--store", str(tmp_path / "nowhere"), "--no-audit-kafka")
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "--store" in missing.stderr


def test_users_enable_and_the_last_admin(tmp_path: Path) -> None:
    """`disable` refuses the last enabled admin (one line, exit 2); `enable` brings a disabled account back."""
    store = tmp_path / "store"
    store.mkdir(mode=0o700)
    _lineage("users", "add", "bob", "--role", "admin", "--store", str(store))
    last = _lineage("users", "disable", "bob", "--store", str(store))
    assert (last.returncode, last.stderr.count("\n")) == (2, 1) and "last enabled admin" in last.stderr
    _lineage("users", "add", "amy", "--role", "admin", "--store", str(store))
    assert _lineage("users", "disable", "bob", "--store", str(store)).returncode == 0
    assert "\tdisabled\t" in _lineage("users", "list", "--store", str(store)).stdout.splitlines()[1]
    enabled = _lineage("users", "enable", "bob", "--store", str(store))
    assert (enabled.returncode, enabled.stdout) == (0, "enabled bob\n")
    assert "disabled" not in _lineage("users", "list", "--store", str(store)).stdout


def test_users_changes_from_the_command_line_are_audited(tmp_path: Path) -> None:
    """add, token, revoke, disable, enable and reset each leave an audit entry naming the command line; refusals too."""
    from lineage.console.audit import Audit
    from lineage.console.db import ConsoleDB

    store = tmp_path / "store"
    store.mkdir(mode=0o700)
    for args in (["add", "ana", "--role", "analyst"], ["token", "ana"], ["revoke", "ana"], ["disable", "ana"],
                 ["enable", "ana"], ["reset", "ana"], ["disable", "nobody"]):  # fmt: skip
        _lineage("users", *args, "--store", str(store))
    db = ConsoleDB(f"sqlite:///{store / 'console.db'}")
    entries = list(reversed(Audit(db).search()))
    db.close()
    assert [e["action"] for e in entries] == ["user.add", "user.token", "user.revoke", "user.disable", "user.enable",
                                              "password.reset", "user.disable"]  # fmt: skip
    assert {(e["role"], e["client"]) for e in entries} == {("cli", "command line")}
    assert all(e["actor"].startswith("cli:") for e in entries)
    assert entries[2]["outcome"] == "revoked 1" and entries[5]["outcome"] == "sessions ended=0"
    assert entries[-1]["outcome"].startswith("refused: name: no account")


def test_a_command_line_change_names_the_real_user_whatever_the_environment_says(tmp_path: Path) -> None:
    """``USER``/``LOGNAME`` set to another name do not change who the audit entry says made the change."""
    import os
    import pwd

    from lineage.console.audit import Audit
    from lineage.console.db import ConsoleDB
    from tests.console.conftest import lineage

    store = tmp_path / "store"
    store.mkdir(mode=0o700)
    forged = {"USER": "alice-forged", "LOGNAME": "alice-forged", "LNAME": "alice-forged", "USERNAME": "alice-forged"}
    assert lineage("users", "add", "ana", "--role", "analyst", "--store", str(store), env=forged).returncode == 0
    db = ConsoleDB(f"sqlite:///{store / 'console.db'}")
    (entry,) = Audit(db).search()
    db.close()
    assert entry["actor"] == f"cli:{pwd.getpwuid(os.getuid()).pw_name}"
