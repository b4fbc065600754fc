"""The console under load: N signed-in users opening person pages at once, beside the CLI's time for the same answers.

A synthetic store (answers_latency's history: --subjects subjects, 20 events each, written straight
into the embedded Iceberg table) is served by `lineage serve` started here as a real process on a
free loopback port (audit in its SQLite database only: no broker). N analysts are made, each signs in
through the form, then all of them look up random subjects (20% by device id) at once for at most
--requests each or --seconds in all, whichever comes first. Every page is a full look-up: audit entry,
access report and erasure plan, rendered. Printed: p50 and p99 latency and pages per second, the
server's CPU a page (all its processes, and again for the loaded phase alone, from /proc), beside
the same answers on one thread in process (no HTTP) and the `lineage access` command (a new process
each time, as an analyst at a terminal would run it).

With ``--breach HOLDER`` each served count is loaded twice, the pages alone and then again while a
responder (by API token) runs one breach assessment of HOLDER over the whole history after another
(``ads-agency``: the holder of 100,000 subjects in the 1M-subject history), so the issue's "also while
a breach job runs" has its baseline in the same run.

    ./run bench console_load [--subjects 1000000] [--users 20] [--requests 50] [--seconds 120] [--workers 1,2,4]
                             [--breach ads-agency]

``--workers`` serves the same store once per count given (`lineage serve --workers N`), one after
the other; without it, `lineage serve` runs with its default (so the command also measures a
checkout from before the option existed).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.cookiejar
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _stores import embedded, load, p99  # noqa: E402
from answers_latency import write  # noqa: E402
from console_breach_rss import WINDOW, _call  # noqa: E402

from lineage import default_taxonomy  # noqa: E402
from lineage.answers import access_request, erasure_plan  # noqa: E402
from lineage.console.accounts import Accounts  # noqa: E402
from lineage.console.db import ConsoleDB  # noqa: E402
from lineage.devtools.ports import free_port  # noqa: E402
from lineage.ingest.holdings import HoldingsMaintainer  # noqa: E402
from lineage.service import answers  # noqa: E402
from lineage.store import Store  # noqa: E402

PASSWORD = "load-test-password-1"
AS_OF = "2026-06-01T00:00:00+00:00"


def _ident(rng: random.Random, subjects: int) -> str:
    i = rng.randrange(subjects)
    return f"d{i:07d}" if rng.random() < 0.2 else f"u{i:07d}"


class User(threading.Thread):
    """One analyst: signs in, then opens person pages until told to stop."""

    def __init__(self, base: str, name: str, subjects: int, requests: int, deadline: float, seed: int) -> None:
        super().__init__(daemon=True)
        self.base, self.name, self.subjects, self.requests, self.deadline = base, name, subjects, requests, deadline
        self.rng = random.Random(seed)
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        self.latencies: list[float] = []
        self.failures = 0

    def _post(self, path: str, form: dict[str, str]) -> str:
        data = urllib.parse.urlencode(form).encode()
        with self.opener.open(self.base + path, data=data, timeout=300) as r:
            return str(r.read().decode())

    def sign_in(self) -> None:
        """Sign in through the form, keeping the session cookie and the page's CSRF token."""
        with self.opener.open(self.base + "/login", timeout=60) as r:
            token = re.search(r'name="csrf" value="([^"]+)"', r.read().decode())
        assert token
        home = self._post("/login", {"name": self.name, "password": PASSWORD, "csrf": token.group(1)})
        found = re.search(r'name="csrf" value="([^"]+)"', home)
        assert found and "Welcome" in home, "sign-in failed"
        self.csrf = found.group(1)

    def run(self) -> None:
        """Open person pages until the count or the deadline is reached."""
        for n in range(self.requests):
            if time.monotonic() > self.deadline:
                break
            form = {"csrf": self.csrf, "case_reference": f"LOAD-{n}", "identifier": _ident(self.rng, self.subjects),
                    "as_of": AS_OF}  # fmt: skip
            t = time.perf_counter()
            try:
                page = self._post("/person", form)
                ok = "Access request" in page and "data held" in page
            except OSError:
                ok = False
            if ok:
                self.latencies.append(time.perf_counter() - t)
            else:
                self.failures += 1


class BreachJobs(threading.Thread):
    """A responder running one breach assessment of a holder (the whole history) after another until stopped."""

    def __init__(self, base: str, token: str, holder: str) -> None:
        super().__init__(daemon=True)
        self.base, self.token, self.holder = base, token, holder
        self.stop = threading.Event()
        self.times: list[float] = []  # each finished job's, from its start to its status read as done
        self.failures = 0

    def run(self) -> None:
        """Start a job, wait for it to end, start the next, until ``stop`` is set (the last one ends first)."""
        n = 0
        while not self.stop.is_set():
            n += 1
            t = time.perf_counter()
            status, answer = _call(self.base, self.token, "/api/breach",
                                   {"case_reference": f"LOAD-B{n}", "holders": [self.holder], **WINDOW})  # fmt: skip
            if status != 202 or not isinstance(answer, dict):
                self.failures += 1
                self.stop.wait(1)
                continue
            state: object = {"status": "running"}
            while isinstance(state, dict) and state.get("status") == "running":
                time.sleep(0.2)  # the page polls each second; a job takes seconds
                state = _call(self.base, self.token, f"/api/breach/{answer['job']}")[1]
            if isinstance(state, dict) and state.get("status") == "done":
                self.times.append(time.perf_counter() - t)
            else:
                self.failures += 1


def _loaded(
    folder: Path,
    tmp: Path,
    args: argparse.Namespace,
    workers: int | None,
    prefix: str,
    token: str,
    breach: tuple[str, str] | None = None,
) -> int:
    """Serve ``folder`` (with ``--workers`` when given), sign every user in, load it; print figures, return failures.

    ``breach``: a responder's token and a holder: breach jobs run one after another through the load
    (``BreachJobs``), and the ``lineage access --console`` runs are left out.
    """
    option = [] if workers is None else ["--workers", str(workers)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)  # the server's CPU, workers included once it ends
    port = free_port()
    log = open(tmp / "serve.log", "w")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen([sys.executable, "-m", "lineage.cli", "serve", "--store", str(folder), "--port",
                             str(port), "--no-audit-kafka", *option], stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(base + "/login", timeout=2).close()
                break
            except OSError:
                if proc.poll() is not None:
                    sys.exit(f"lineage serve exited: {(tmp / 'serve.log').read_text()[-1000:]}")
                time.sleep(0.2)
        asked = _console_cli(base, tmp, args, token) if breach is None else Asked([], 0.0)
        deadline = time.monotonic() + args.seconds
        users = [User(base, f"{prefix}{i}", args.subjects, args.requests, deadline, i) for i in range(args.users)]
        t = time.perf_counter()
        for u in users:
            u.sign_in()
        signin = time.perf_counter() - t
        jobs = None if breach is None else BreachJobs(base, *breach)
        if jobs is not None:
            jobs.start()
            while not jobs.times and not jobs.failures:  # the first job ends before the pages begin, so
                time.sleep(0.2)  # every page below is asked while a later one runs
            deadline = time.monotonic() + args.seconds
            for u in users:
                u.deadline = deadline
        t, paging = time.perf_counter(), _tree_cpu(proc.pid)
        for u in users:
            u.start()
        for u in users:
            u.join()
        wall, paging = time.perf_counter() - t, _tree_cpu(proc.pid) - paging
        if jobs is not None:
            jobs.stop.set()
            jobs.join()
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        log.close()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime) - asked.cpu
    lat = [x for u in users for x in u.latencies]
    failures = sum(u.failures for u in users)
    print(f"\nlineage serve {' '.join(option) or '(its default workers)'}: {args.users} signed-in analysts "
          f"({args.users} sign-ins, Argon2id, in {signin:.1f} s), {len(lat)} person pages in {wall:.1f} s, "
          f"{failures} failed; {load()}")  # fmt: skip
    if jobs is not None:
        failures += jobs.failures
        median = f"{statistics.median(jobs.times):.1f} s" if jobs.times else "-"
        print(f"while breach jobs at {breach[1] if breach else ''} ran one after another: {len(jobs.times)} done "
              f"(the first before the pages began; median {median} each), {jobs.failures} failed")  # fmt: skip
    if lat:
        print(f"console person page: p50 {statistics.median(lat) * 1000:.0f} ms, p99 {p99(lat) * 1000:.0f} ms, "
              f"{len(lat) / wall:.1f} pages/s")  # fmt: skip
        print(f"server CPU (start, sign-ins, pages, stop; all workers): {cpu:.1f} s = "
              f"{cpu / len(lat) * 1000:.0f} ms per page; while the pages were asked alone: "
              f"{paging / len(lat) * 1000:.1f} ms per page")  # fmt: skip
    if asked.latencies:
        print(f"`lineage access --console` (a new process each, asking this server before the load): median "
              f"{statistics.median(asked.latencies) * 1000:.0f} ms, p99 {p99(asked.latencies) * 1000:.0f} ms "
              f"over {len(asked.latencies)}")  # fmt: skip
    return failures


def _tree_cpu(pid: int) -> float:
    """CPU seconds used so far by process ``pid`` and its children (the server's workers), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    used = 0.0
    for p in [pid, *_children(pid)]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # a worker that ended meanwhile
            continue
        used += (int(fields[11]) + int(fields[12])) / tick
    return used


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


@dataclass
class Asked:
    """The ``lineage access --console`` runs: each one's wall time, and their CPU (not the server's)."""

    latencies: list[float]
    cpu: float


def _installed_env() -> dict[str, str]:
    """The environment, but with Python keeping bytecode, as an installed package has it.

    With ``PYTHONDONTWRITEBYTECODE`` set (CI machines, this sandbox), each process compiled lineage's
    modules again: ~50 ms of every ``lineage access`` that no installed copy pays.
    """
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _console_cli(base: str, tmp: Path, args: argparse.Namespace, token: str) -> Asked:
    """``lineage access --console`` as an analyst at a terminal runs it, asking the served console (no load yet)."""
    token_file = tmp / "bench.token"
    token_file.touch(mode=0o600)
    token_file.write_text(token + "\n")
    env = {**_installed_env(), "LINEAGE_CONSOLE_TOKEN_FILE": str(token_file)}
    rng = random.Random(11)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    latencies = []
    for n in range(max(20, args.cli_samples) + 1):  # the first writes the bytecode: not counted
        t = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "lineage.cli", "access", _ident(rng, args.subjects), "--console",
                               base, "--case", "BENCH-1", "--as-of", AS_OF, "--format", "json"],
                              capture_output=True, check=False, env=env)  # fmt: skip
        assert done.returncode == 0, done.stderr[-500:]
        if n:
            latencies.append(time.perf_counter() - t)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return Asked(latencies, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subjects", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--requests", type=int, default=50, help="person pages per user at most")
    parser.add_argument("--seconds", type=float, default=120.0, help="time for the loaded phase at most")
    parser.add_argument("--cli-samples", type=int, default=5)
    parser.add_argument("--page-samples", type=int, default=200, help="in-process page answers (and as many apart)")
    parser.add_argument("--workers", help="comma-separated `lineage serve --workers` counts, each measured in turn")
    parser.add_argument("--breach", metavar="HOLDER", help="also load each count while breach jobs of HOLDER "
                        "(the whole history) run one after another, e.g. ads-agency")  # fmt: skip
    parser.add_argument("--store", type=Path, help="serve this embedded store, made before by this bench or "
                        "answers_latency's history with --subjects subjects and its holdings built, instead of "
                        "writing one (20M events and their holdings take ~10 minutes); its console.db gains "
                        "the bench's users")  # fmt: skip
    args = parser.parse_args()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory(prefix="bench-console-") as tmp:
        folder = args.store or Path(tmp) / "store"
        t = time.perf_counter()
        if args.store is None:
            events = write([embedded(folder)], args.subjects)
            built = HoldingsMaintainer(embedded(folder).location).refresh()  # answers read the holdings table
            print(f"holdings: {built.line()}")
        else:
            events = Store(folder).count()
        print(f"wrote {events:,} events ({args.subjects:,} subjects) in {time.perf_counter() - t:.0f} s; {load()}")

        # the page's answer as the console computes it (service.answers.person: held read, forgotten
        # check, one session, stamp), on one thread in this process; beside it the two answers asked
        # apart (as the console did before person_answers), alternating, so both see the same machine
        store, taxonomy, as_of = Store(folder), default_taxonomy(), datetime.fromisoformat(AS_OF)
        key = os.urandom(32)
        digest = lambda identifier: hmac.new(key, identifier.encode(), hashlib.sha256).hexdigest()  # noqa: E731
        inproc: list[float] = []
        apart: list[float] = []
        for n in range(2 * args.page_samples + 10):
            ident = _ident(rng, args.subjects)
            t = time.perf_counter()
            if n % 2:
                access_request(store, ident, taxonomy, as_of)
                erasure_plan(store, ident, taxonomy, as_of)
            else:
                answers.person(store, ident, taxonomy, as_of, digest=digest)
            if n >= 10:  # the first few warm the connection
                (apart if n % 2 else inproc).append(time.perf_counter() - t)
        cli = []
        for n in range(args.cli_samples + 1):  # the first writes the bytecode and the kept plans: not counted
            t = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "lineage.cli", "access", _ident(rng, args.subjects),
                                   "--store", str(folder), "--as-of", AS_OF, "--format", "json"],
                                  capture_output=True, check=False, env=_installed_env())  # fmt: skip
            assert done.returncode == 0, done.stderr[-500:]
            if n:
                cli.append(time.perf_counter() - t)

        db = ConsoleDB(f"sqlite:///{folder / 'console.db'}")
        accounts = Accounts(db)
        prefix = f"load{random.randrange(16**6):06x}-"  # new names each run: a kept store keeps its users
        for i in range(args.users):
            accounts.add(f"{prefix}{i}", "analyst", PASSWORD)
        token = accounts.new_token(f"{prefix}0")[1]  # an analyst's API token, for `lineage access --console`
        breach = None
        if args.breach:
            accounts.add(f"{prefix}r", "responder", PASSWORD)
            breach = (accounts.new_token(f"{prefix}r")[1], args.breach)
        db.close()
        counts: list[int | None] = [int(n) for n in args.workers.split(",")] if args.workers else [None]
        failures = 0
        for workers in counts:
            failures += _loaded(folder, Path(tmp), args, workers, prefix, token)
            if breach is not None:
                failures += _loaded(folder, Path(tmp), args, workers, prefix, token, breach)
    print(f"the page's answer in process, one thread (service.answers.person): median "
          f"{statistics.median(inproc) * 1000:.1f} ms, p99 {p99(inproc) * 1000:.1f} ms over {len(inproc)}; "
          f"access + erasure plan asked apart: median {statistics.median(apart) * 1000:.1f} ms, "
          f"p99 {p99(apart) * 1000:.1f} ms")  # fmt: skip
    print(f"`lineage access` (a new process each): median {statistics.median(cli) * 1000:.0f} ms, "
          f"p99 {p99(cli) * 1000:.0f} ms over {len(cli)} (target p99 <= 400 ms)")  # fmt: skip
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
