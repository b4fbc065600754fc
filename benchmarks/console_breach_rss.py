"""The console's memory under breach queries: 30 whole-history jobs from one responder, RSS before, at peak, after.

A synthetic store (answers_latency's history, --subjects subjects) is served by `lineage serve` run
as a real process by --python (this interpreter by default; another checkout's venv python measures
that code). One responder, by API token, starts --jobs whole-history breach queries of every holder,
retrying each refused one (429, the caps) until it is accepted, and waits for all to end. The
server's VmRSS is read from /proc before the first job, sampled every 0.2 s while they run, and read
after the last one ends.

    ./run bench console_breach_rss [--subjects 20000] [--jobs 30] [--python /work/main/.venv/bin/python]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _stores import embedded, load  # noqa: E402
from answers_latency import write  # noqa: E402

from lineage.console.accounts import Accounts  # noqa: E402
from lineage.console.db import ConsoleDB  # noqa: E402
from lineage.devtools.ports import free_port  # noqa: E402
from lineage.ingest.holdings import HoldingsMaintainer  # noqa: E402

HOLDERS = ["app", "crm", "pay", "sms", "hk-store"]
WINDOW = {"start": "2000-01-01T00:00Z", "end": "2030-01-01T00:00Z"}  # the whole history


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def _call(base: str, token: str, path: str, body: dict[str, object] | None = None) -> tuple[int, object]:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    request = urllib.request.Request(base + path, data=data, headers=headers, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(request, timeout=600) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def main() -> int:
    """Build the store, serve it, run the jobs, print the RSS figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=20_000)
    parser.add_argument("--jobs", type=int, default=30)
    parser.add_argument("--python", default=sys.executable, help="the interpreter that runs `lineage serve`")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "store"
        events = write([embedded(folder)], args.subjects)
        HoldingsMaintainer(embedded(folder).location).refresh()
        db = ConsoleDB(f"sqlite:///{(folder / 'console.db').resolve()}")
        Accounts(db).add("rita", "responder", "bench-password-123")
        _, token = Accounts(db).new_token("rita")
        db.close()
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        with (Path(tmp) / "serve.log").open("w") as log:
            # started in the temporary folder: `-m` puts the working folder first on the path, and the
            # code measured must be the one --python has installed, not the checkout we run from
            proc = subprocess.Popen([args.python, "-m", "lineage.cli", "serve", "--store", str(folder), "--port",
                                     str(port), "--no-audit-kafka"], stdout=log, stderr=subprocess.STDOUT,
                                    cwd=tmp)  # fmt: skip
        try:
            deadline = time.monotonic() + 120
            while _call_ok(base, token) is False:
                if proc.poll() is not None or time.monotonic() > deadline:
                    sys.exit(f"lineage serve did not start: {(Path(tmp) / 'serve.log').read_text()[-1000:]}")
                time.sleep(0.2)
            before = _rss_mb(proc.pid)
            peak = [before]
            done = threading.Event()

            def sample() -> None:
                while not done.is_set():
                    peak.append(_rss_mb(proc.pid))
                    time.sleep(0.2)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            t0 = time.perf_counter()
            ids, refused = [], 0
            for i in range(args.jobs):
                body = {"case_reference": f"INC-{i}", "holders": HOLDERS, **WINDOW}
                while True:
                    status, answer = _call(base, token, "/api/breach", body)
                    if status == 202:
                        ids.append(answer["job"])  # type: ignore[index]
                        break
                    if status != 429:
                        sys.exit(f"job {i}: {status} {answer}")
                    refused += 1
                    time.sleep(0.5)
            statuses = {}
            for job in ids:
                while True:
                    _, answer = _call(base, token, f"/api/breach/{job}")
                    if answer["status"] != "running":  # type: ignore[index]
                        statuses[job] = answer["status"]  # type: ignore[index]
                        break
                    time.sleep(0.5)
            wall = time.perf_counter() - t0
            done.set()
            sampler.join()
            after = _rss_mb(proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    failed = sum(1 for s in statuses.values() if s != "done")
    print(f"{events:,} events ({args.subjects:,} subjects); {args.jobs} whole-history jobs of {len(HOLDERS)} holders "
          f"in {wall:.0f} s ({refused} refusals retried, {failed} failed); {load()}")  # fmt: skip
    print(f"server RSS: before {before:.0f} MB, peak {max(peak):.0f} MB, after {after:.0f} MB")
    return 0


def _call_ok(base: str, token: str) -> bool:
    try:
        return _call(base, token, "/api/me")[0] == 200
    except OSError:
        return False


if __name__ == "__main__":
    raise SystemExit(main())
