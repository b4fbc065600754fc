"""`lineage serve` as a real process: forwarded addresses only from a named proxy, bodies bounded on the wire."""

from __future__ import annotations

import http.client
import http.cookiejar
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest

from lineage.console.audit import Audit
from lineage.console.db import ConsoleDB
from lineage.console.server import threads_per_worker
from tests.console.conftest import LINKED, World, free_port, lineage, serving

FORGED = "203.0.113.9"


def _failed_sign_in(url: str, forwarded_for: str) -> None:
    """A wrong password through the real form, claiming to come from ``forwarded_for``."""
    with urllib.request.urlopen(url + "/login", timeout=30) as r:
        cookie = r.headers["set-cookie"].split(";", 1)[0]
        token = re.search(r'name="csrf" value="([^"]+)"', r.read().decode())
    assert token is not None
    body = urlencode({"name": "nobody", "password": "wrong-password-1", "csrf": token.group(1)}).encode()
    request = urllib.request.Request(url + "/login", data=body, headers={"Cookie": cookie,
                                     "X-Forwarded-For": forwarded_for, "X-Forwarded-Proto": "https"})  # fmt: skip
    try:
        urllib.request.urlopen(request, timeout=30).close()
    except urllib.error.HTTPError as refused:
        assert refused.code == 401


def test_each_worker_gets_its_share_of_the_cores_for_duckdb(monkeypatch: pytest.MonkeyPatch) -> None:
    """One worker keeps DuckDB's own choice; several share the cores out, at least one thread each."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: set(range(8)), raising=False)
    assert [threads_per_worker(n) for n in (1, 2, 3, 4, 8, 16)] == [None, 4, 2, 2, 1, 1]


def test_forwarded_addresses_count_only_from_a_named_proxy(world: World, tmp_path: Path) -> None:
    """By default a local client's X-Forwarded-For is ignored; with --forwarded-allow-ips the proxy's is used."""
    env = {"LINEAGE_CONSOLE_DB": f"sqlite:///{tmp_path / 'console.db'}"}
    with serving(world.folder, env=env) as url:
        _failed_sign_in(url, FORGED)
    with serving(world.folder, "--forwarded-allow-ips", "127.0.0.1", env=env) as url:
        _failed_sign_in(url, FORGED)
    db = ConsoleDB(env["LINEAGE_CONSOLE_DB"])
    clients = [e["client"] for e in reversed(Audit(db).search(action="signin.failed"))]
    db.close()
    assert clients == ["127.0.0.1", FORGED]


def _status_after(port: int, head: str, chunk: bytes, limit: int) -> tuple[int, int]:
    """Send ``head`` then ``chunk`` again and again (up to ``limit`` bytes) until the server answers: (status, sent)."""
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        s.sendall(head.encode())
        deadline = time.monotonic() + 120
        try:
            while sent < limit and not select.select([s], [], [], 0)[0] and time.monotonic() < deadline:
                s.sendall(chunk)
                sent += len(chunk)
        except OSError:  # the server answered and closed while we were still sending: what we want
            pass
        answer = s.recv(200).decode("latin-1")
    return int(answer.split(" ", 2)[1]), sent


def test_the_server_refuses_large_bodies_without_reading_them(world: World, tmp_path: Path) -> None:
    """A chunked body without a token gets 401 unread, with one 413 past 1 MiB; a declared 1 GB one 413 at once."""
    env = {"LINEAGE_CONSOLE_DB": f"sqlite:///{tmp_path / 'console.db'}"}
    added = lineage("users", "add", "ana", "--role", "analyst", "--password-stdin", "--store", str(world.folder),
                    stdin="analyst-password-1\n", env=env)  # fmt: skip
    assert added.returncode == 0, added.stderr
    token = lineage("users", "token", "ana", "--store", str(world.folder), env=env).stdout.splitlines()[-1]
    piece = b"x" * 65536
    with serving(world.folder, env=env) as url:
        port = urlsplit(url).port
        assert port is not None
        head = "POST /api/person HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        chunk = b"10000\r\n" + piece + b"\r\n"
        chunked = head + "Transfer-Encoding: chunked\r\n"
        status, sent = _status_after(port, chunked + "\r\n", chunk, 2**30)
        assert status == 401 and sent < 256 * 2**20
        status, sent = _status_after(port, chunked + f"Authorization: Bearer {token}\r\n\r\n", chunk, 2**30)
        assert status == 413 and sent < 256 * 2**20
        declared = head + f"Content-Length: {2**30}\r\n"
        for auth in ("", f"Authorization: Bearer {token}\r\n"):  # the declared length alone refuses it
            status, sent = _status_after(port, declared + auth + "\r\n", piece, 2**30)
            assert status == 413 and sent < 256 * 2**20


def _server_end(client_port: int, server_port: int) -> int | None:
    """The process holding the server's end of our loopback connection from ``client_port`` (from /proc)."""
    inodes = [f[9] for f in (line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:])
              if f[1].endswith(f":{server_port:04X}") and f[2].endswith(f":{client_port:04X}")]  # fmt: skip
    if not inodes:
        return None
    target = f"socket:[{inodes[0]}]"
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if any(os.readlink(fd) == target for fd in (proc / "fd").iterdir()):
                    return int(proc.name)
            except OSError:  # a process that ended, or not ours
                continue
    return None


def _registers_rows(db: ConsoleDB) -> tuple[bool, bool]:
    """Whether the console database keeps registers, and whether a claim to compute them, in one read."""
    with db.tx() as tx:
        bodies = [r["body"] for r in tx.rows("SELECT body FROM console_registers")]
    return any(bodies), "" in bodies


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_console_on_a_taken_address_exits_3_before_it_computes_anything(
    world: World, tmp_path: Path, workers: str
) -> None:
    """The address in use: one line naming it, exit 3, and no registers kept or claimed in the console database."""
    env = {"LINEAGE_CONSOLE_DB": f"sqlite:///{tmp_path / 'console.db'}"}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        done = lineage("serve", "--store", str(world.folder), "--port", str(taken.getsockname()[1]),
                       "--no-audit-kafka", "--workers", workers, env=env)  # fmt: skip
    assert done.returncode == 3, done.stderr
    (line,) = done.stderr.strip().splitlines()  # the app never started: no startup lines before it
    assert "address already in use" in line.lower()
    db = ConsoleDB(env["LINEAGE_CONSOLE_DB"])
    try:
        with db.tx() as tx:
            assert tx.rows("SELECT key FROM console_registers") == []  # neither kept nor claimed
    finally:
        db.close()


def test_two_workers_both_answer_a_user_signed_in_on_either(world: World, tmp_path: Path) -> None:
    """`lineage serve --workers 2`: one sign-in, pages answered by two workers, each logging one-line records.

    The registers are computed as the server starts, before anyone opens them: kept in the console database.
    """
    env = {"LINEAGE_CONSOLE_DB": f"sqlite:///{tmp_path / 'console.db'}"}
    added = lineage("users", "add", "ana", "--role", "analyst", "--password-stdin", "--store", str(world.folder),
                    stdin="analyst-password-1\n", env=env)  # fmt: skip
    assert added.returncode == 0, added.stderr
    with serving(world.folder, "--workers", "2", env=env) as url:
        port = urlsplit(url).port
        assert port is not None
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        with opener.open(url + "/login", timeout=60) as r:
            token = re.search(r'name="csrf" value="([^"]+)"', r.read().decode())
        assert token is not None
        form = {"name": "ana", "password": "analyst-password-1", "csrf": token.group(1)}
        with opener.open(url + "/login", data=urlencode(form).encode(), timeout=60) as r:
            home = r.read().decode()
        csrf = re.search(r'name="csrf" value="([^"]+)"', home)
        assert csrf is not None and "Welcome, ana" in home
        cookie = "; ".join(f"{c.name}={c.value}" for c in jar)
        answered_by: set[int] = set()
        deadline = time.monotonic() + 120  # new connections until both workers have taken one
        while len(answered_by) < 2 and time.monotonic() < deadline:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            try:
                body = urlencode({"csrf": csrf.group(1), "case_reference": "DSAR-1", "identifier": LINKED[0]})
                conn.request("POST", "/person", body=body, headers={
                    "Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
                response = conn.getresponse()
                page = response.read().decode()
                assert response.status == 200 and '<section class="report">' in page and "No data held" not in page
                worker = _server_end(conn.sock.getsockname()[1], port)  # the connection is still open: keep-alive
                assert worker is not None
                answered_by.add(worker)
            finally:
                conn.close()
        db = ConsoleDB(env["LINEAGE_CONSOLE_DB"])
        try:  # no one opened the registers page
            deadline = time.monotonic() + 300
            kept, claimed = _registers_rows(db)
            while not (kept and not claimed) and time.monotonic() < deadline:
                time.sleep(0.2)
                kept, claimed = _registers_rows(db)
            assert kept, "the registers were not computed ahead within 300 s"
            assert not claimed, "the claim to compute them was never released"
        finally:
            db.close()
    assert len(answered_by) == 2, f"only one worker answered in 120 s: {answered_by}"
    # Each worker logs through lineage.logs: uvicorn's own format and tracebacks never reach the log.
    logged = (world.folder.parent / f"serve-{port}.log").read_text().splitlines()
    access = [line for line in logged if " uvicorn.access 127.0.0.1:" in line and '"POST /person HTTP/1.1" 200' in line]
    assert len(access) >= 2, logged
    assert not [line for line in logged if line.startswith(("INFO:", "Traceback", "  File "))], logged
    assert not [line for line in logged if " lineage.console.service registers: " in line], logged  # none failed


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_sigterm_held_since_launch_stops_the_console_with_exit_0(world: World, tmp_path: Path, workers: str) -> None:
    """SIGTERM sent while the launcher still held it (the child keeps that mask): the console stops and exits 0."""
    env = {**os.environ, "LINEAGE_CONSOLE_DB": f"sqlite:///{tmp_path / 'console.db'}"}
    args = [sys.executable, "-m", "lineage.cli", "serve", "--store", str(world.folder), "--port", str(free_port()),
            "--no-audit-kafka", "--workers", workers]  # fmt: skip
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    try:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        proc.send_signal(signal.SIGTERM)  # pending in the child until it unblocks the signal
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
    out, _ = proc.communicate(timeout=180)  # held for good, it would never end: the wait runs out
    assert proc.returncode == 0, out[-2000:]
    assert "Traceback" not in out
