"""`lineage access` and `lineage erasure --console`: a running console answers, the output is the store's own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lineage.console.audit import Audit
from lineage.console.db import ConsoleDB
from tests.console.conftest import World, free_port, lineage, serving

AS_OF = "2026-11-01T00:00:00+00:00"


@pytest.fixture
def analyst(world: World, tmp_path: Path) -> dict[str, str]:
    """The environment of an analyst with an API token in a private file, and the console database it lives in."""
    env = {"LINEAGE_CONSOLE_DB": f"sqlite:///{tmp_path / 'console.db'}"}
    added = lineage("users", "add", "ana", "--role", "analyst", "--password-stdin", "--store", str(world.folder),
                    stdin="analyst-password-1\n", env=env)  # fmt: skip
    assert added.returncode == 0, added.stderr
    made = lineage("users", "token", "ana", "--store", str(world.folder), env=env)
    assert made.returncode == 0, made.stderr
    token = tmp_path / "ana.token"
    token.touch(mode=0o600)
    token.write_text(made.stdout.splitlines()[-1] + "\n")
    return {**env, "LINEAGE_CONSOLE_TOKEN_FILE": str(token)}


def test_a_console_gives_the_same_output_as_the_store_and_audits_the_look_up(
    world: World, analyst: dict[str, str]
) -> None:
    """Access and erasure through --console print byte for byte what the store gives; each look-up is audited."""
    with serving(world.folder, env=analyst) as url:
        for answer in ("access", "erasure"):
            for fmt in ("json", "markdown", "csv"):
                args = (answer, world.subject, "--as-of", AS_OF, "--format", fmt)
                direct = lineage(*args, "--store", str(world.folder))
                asked = lineage(*args, "--console", url, "--case", "REQ-7", env=analyst)
                assert direct.returncode == 0 and asked.returncode == 0, (direct.stderr, asked.stderr)
                assert asked.stdout == direct.stdout and asked.stderr == direct.stderr
    db = ConsoleDB(analyst["LINEAGE_CONSOLE_DB"])
    viewed = Audit(db).search(action="person.view")
    db.close()
    assert len(viewed) == 6
    assert {(e["actor"], e["case_ref"], e["detail"]) for e in viewed} == {("ana", "REQ-7", "access"),
                                                                         ("ana", "REQ-7", "erasure")}  # fmt: skip


def test_console_refusals_are_one_line_naming_what_to_fix(
    world: World, analyst: dict[str, str], tmp_path: Path
) -> None:
    """A wrong token, no case, a bad case, plain http afar, store options, or no console: exit 2, one line each."""
    wrong = tmp_path / "wrong.token"
    wrong.touch(mode=0o600)
    wrong.write_text("lin_not-a-real-token\n")
    ask = ("access", world.subject, "--format", "json")
    with serving(world.folder, env=analyst) as url:
        cases = [
            (["--console", url, "--case", "R-1"], {"LINEAGE_CONSOLE_TOKEN_FILE": str(wrong)}, "console_token: "),
            (["--console", url], {}, "--case: is required"),
            (["--console", url, "--case", "../x"], {}, "case_reference"),
            (["--console", url, "--case", "R-1", "--snapshot", "1"], {}, "--snapshot: does not apply"),
            (["--case", "R-1"], {"LINEAGE_CONSOLE_URL": ""}, "--case: is used only with --console"),
            (["--console", "http://console.example", "--case", "R-1"], {}, "--console: plain http:// only"),
            (["--console", f"http://127.0.0.1:{free_port()}", "--case", "R-1"], {}, "--console: no console answered"),
        ]
        for extra, env, said in cases:
            done = lineage(*ask, *extra, env={**analyst, **env})
            assert done.returncode == 2, (extra, done.stderr)
            assert done.stdout == "" and said in done.stderr, (extra, done.stderr)
            assert len(done.stderr.splitlines()) == 1 and world.subject not in done.stderr
    db = ConsoleDB(analyst["LINEAGE_CONSOLE_DB"])
    viewed = Audit(db).search(action="person.view")
    db.close()
    assert viewed == []  # nothing was shown, so nothing was looked up


def test_asking_a_console_loads_no_store_library(world: World, analyst: dict[str, str]) -> None:
    """The command asking a console never imports pyiceberg, pyarrow, DuckDB or SQLAlchemy (its start stays cheap)."""
    probe = ("import sys\nfrom lineage.cli import main\nrc = main(sys.argv[1:])\n"
             "loaded = {m.split('.')[0] for m in sys.modules}\n"
             "heavy = sorted(loaded & {'pyiceberg', 'pyarrow', 'duckdb', 'sqlalchemy'})\n"
             "print('HEAVY', heavy, rc, file=sys.stderr)\n")  # fmt: skip
    with serving(world.folder, env=analyst) as url:
        done = subprocess.run([sys.executable, "-c", probe, "access", world.subject, "--console", url, "--case", "R-2",
                               "--format", "json"], capture_output=True, text=True, timeout=120,
                              env={**os.environ, **analyst}, check=False)  # fmt: skip
    assert done.stderr.strip().splitlines()[-1] == "HEAVY [] 0", done.stderr[-2000:]
    assert json.loads(done.stdout)["holds_data"] is True
