"""The console in headless Chromium against `lineage serve` run as a real process: the analyst's and responder's paths.

Screenshots go to the session's own temporary folder (pytest's basetemp, ``console-shots*``), or to
``LINEAGE_SHOTS_DIR``, for a person to look at: never a fixed path that parallel runs would share.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, sync_playwright

from tests.console.conftest import HOSTILE_SYSTEM, LINKED, World, free_port, lineage, serving
from tests.fixtures import BROWSER_TIMEOUT_MS

CHROMIUM = os.environ.get("LINEAGE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
PASSWORDS = {"ana": "analyst-password-1", "rita": "responder-password-1", "otto": "auditor-password-1"}


@dataclass
class Served:
    """A `lineage serve` process over the world's store and console database, restartable on the same port."""

    world: World
    port: int = field(default_factory=free_port)
    running: ExitStack | None = None

    @property
    def url(self) -> str:
        """Where it answers."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> str:
        """Start it and wait until it answers the sign-in page; its URL."""
        stack = ExitStack()
        stack.enter_context(serving(self.world.folder, "--policy", "policies", port=self.port))
        self.running = stack
        return self.url

    def stop(self) -> None:
        """Stop it (SIGTERM, as a service manager does) and wait for it to end."""
        if self.running is not None:
            self.running.close()
            self.running = None


@pytest.fixture(scope="module")
def accounts(world: World) -> None:
    """An analyst, a responder and an auditor, made by the CLI."""
    for name, role in (("ana", "analyst"), ("rita", "responder"), ("otto", "auditor")):
        done = lineage("users", "add", name, "--role", role, "--password-stdin", "--store", str(world.folder),
                       stdin=PASSWORDS[name] + "\n")  # fmt: skip
        assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def served(world: World, accounts: None) -> Iterator[Served]:
    """`lineage serve` on a free loopback port over the world, with an analyst and a responder; restartable."""
    running = Served(world)
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def server(served: Served) -> str:
    """The console's URL."""
    return served.url


@dataclass
class Browse:
    """A browser context on the console, and what it saw go wrong."""

    context: BrowserContext
    page: Page
    base: str
    shots: Path
    problems: list[str] = field(default_factory=list)

    def shot(self, name: str) -> None:
        """Save a full-page screenshot to look at."""
        self.page.screenshot(path=str(self.shots / f"{name}.png"), full_page=True)


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: this run's own folder (0700), or ``LINEAGE_SHOTS_DIR``."""
    chosen = os.environ.get("LINEAGE_SHOTS_DIR")
    if chosen:
        Path(chosen).mkdir(mode=0o700, parents=True, exist_ok=True)
        return Path(chosen)
    return tmp_path_factory.mktemp("console-shots")


@pytest.fixture
def browse(server: str, shots: Path, tmp_path: Path) -> Iterator[Browse]:
    """A fresh Chromium profile; any dialog, console error (a CSP violation too) or off-host request is a problem."""
    with sync_playwright() as p:
        try:
            context = p.chromium.launch_persistent_context(
                str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
                accept_downloads=True, viewport={"width": 1400, "height": 900},
            )  # fmt: skip
        except Exception as exc:
            pytest.fail(f"no Chromium for the browser tests: {exc}", pytrace=False)
        context.set_default_timeout(BROWSER_TIMEOUT_MS)
        page = context.new_page()
        b = Browse(context, page, server, shots)
        page.on("dialog", lambda d: (b.problems.append(f"dialog: {d.message}"), d.dismiss()))
        page.on("console", lambda m: b.problems.append(f"console: {m.text}") if m.type == "error" else None)
        page.on("request", lambda r: None if r.url.startswith(server) else b.problems.append(f"request: {r.url}"))
        yield b
        context.close()


def _sign_in(b: Browse, name: str) -> None:
    b.page.goto(b.base + "/login")
    b.page.fill("input[name=name]", name)
    b.page.fill("input[name=password]", PASSWORDS[name])
    b.page.click("button[type=submit]")
    b.page.wait_for_url(b.base + "/")


def _sign_out(b: Browse) -> None:
    b.page.click("form.signout button")
    b.page.wait_for_url(b.base + "/login")
    b.page.goto(b.base + "/person")
    assert b.page.url == b.base + "/login"


def _run_breach(b: Browse, case: str, end: str, shot: str) -> None:
    """Fill the case and the window's date pickers (from 1 January), run, and wait up to 120 s for the answer."""
    b.page.fill("input[name=case_reference]", case)
    b.page.fill("input[name=start]", "2026-01-01T00:00")
    b.page.fill("input[name=end]", end)
    b.shot(shot)
    b.page.click("form.card button[type=submit]")
    b.page.wait_for_url("**/breach/jobs/*")
    b.page.wait_for_selector("text=Download the affected list", timeout=120_000)


def test_analyst_looks_up_a_person_and_downloads_the_report(browse: Browse, tmp_path: Path) -> None:
    """Sign in, look up a person by a linked identifier, see the report, download it, open registers and map."""
    b, page = browse, browse.page
    _sign_in(b, "ana")
    b.shot("01-home-analyst")
    page.click("text=Person")
    page.fill("input[name=case_reference]", "DSAR-2026-7")
    page.fill("input[name=identifier]", LINKED[1])
    page.click("form.card button[type=submit]")
    page.wait_for_selector("section.report")
    assert LINKED[0] in page.inner_text("dl.facts")  # found through the link
    assert "data held" in page.inner_text("section.report")
    b.shot("02-person-report")
    with page.expect_download() as done:
        page.click("text=Download JSON")
    download = done.value
    assert download.suggested_filename == "access-DSAR-2026-7.json"
    saved = tmp_path / "report.json"
    download.save_as(saved)
    report = json.loads(saved.read_text())
    assert LINKED[0] in report["identifiers"] and report["data_held"]
    page.click("header >> text=Registers")
    page.wait_for_selector("#transfers table")
    b.shot("03-registers")
    page.click("header >> text=Map")
    page.wait_for_selector("#map .node")
    page.locator(".node", has_text="sys").first.click()
    details = page.inner_text("#details")  # no button to a page that would refuse an analyst
    assert "run by an incident responder" in details and "Breach impact for this holder" not in details
    b.shot("04-map")
    _sign_out(b)
    assert b.problems == []


def test_responder_runs_a_breach_from_the_map_and_downloads_the_list(browse: Browse, tmp_path: Path) -> None:
    """From the map's holder link to the breach page (holder preselected), run it, see it finish, download the list."""
    b, page = browse, browse.page
    _sign_in(b, "rita")
    page.goto(b.base + "/map")
    page.locator(".node", has_text="sys").first.click()
    page.click("#details >> text=Breach impact for this holder")
    page.wait_for_url("**/breach?holder=*")
    assert page.eval_on_selector("select[name=holders]", "s => [...s.selectedOptions].map(o => o.value)") == [
        HOSTILE_SYSTEM
    ]
    _run_breach(b, "INC-2026-42", "2026-11-01T00:00", "05-breach-form")
    b.shot("06-breach-report")
    with page.expect_download() as done:
        page.click("text=Download the affected list")
    saved = tmp_path / "affected.csv"
    done.value.save_as(saved)
    lines = saved.read_text().splitlines()
    assert lines[0].startswith("subject,jurisdiction,age_band,category,holder")
    assert any(LINKED[0] in line for line in lines[1:])
    page.click("header >> text=Registers")
    page.wait_for_selector("#violations")
    _sign_out(b)
    assert b.problems == []


def test_analyst_keeps_requests_as_cases_sorted_by_due_date(browse: Browse, tmp_path: Path) -> None:
    """Open two cases from the case page, see them by due date with the late one marked, filter, answer, download."""
    b, page = browse, browse.page
    _sign_in(b, "ana")
    for ref, received in (("DSAR-B-NEW", None), ("DSAR-B-OLD", "2026-01-05")):
        page.click("header >> text=Cases")
        page.wait_for_url(b.base + "/cases")
        page.fill("form.new-case input[name=case_reference]", ref)
        page.select_option("form.new-case select[name=kind]", "erasure" if received else "access")
        if received:
            page.fill("form.new-case input[name=received]", received)  # the date picker
        page.fill("form.new-case input[name=identifier]", LINKED[1])
        page.click("form.new-case button[type=submit]")
        page.wait_for_url(f"{b.base}/cases/{ref}")
    assert page.inner_text("dd.due") == "2026-01-26 overdue"  # a CN subject: PIPL's 15 working days
    with page.expect_download() as done:
        page.click("text=Download the answer (JSON)")
    assert done.value.suggested_filename == "answer-DSAR-B-OLD.json"
    saved = tmp_path / "answer.json"
    done.value.save_as(saved)
    assert LINKED[0] in json.loads(saved.read_text())["identifiers"]
    page.click("header >> text=Cases")
    page.wait_for_url(b.base + "/cases")
    refs = page.locator("table.cases tr.case td:nth-child(2)").all_inner_texts()
    assert refs.index("DSAR-B-OLD") < refs.index("DSAR-B-NEW")
    assert page.locator("tr.overdue", has_text="DSAR-B-OLD").count() == 1
    assert page.locator("tr.overdue", has_text="DSAR-B-NEW").count() == 0
    b.shot("07-cases")
    page.click("text=DSAR-B-OLD")
    page.wait_for_url(b.base + "/cases/DSAR-B-OLD")  # the list has a status select too
    page.select_option("select[name=status]", "answered")
    page.click("form.inline button[type=submit]")
    page.wait_for_selector("dd.status >> text=answered (ana,")
    page.goto(b.base + "/cases")
    page.select_option("form.filters select[name=status]", "open")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**/cases?status=open*")
    refs = page.locator("table.cases tr.case td:nth-child(2)").all_inner_texts()
    assert "DSAR-B-NEW" in refs and "DSAR-B-OLD" not in refs
    b.shot("08-cases-open")
    _sign_out(b)
    assert b.problems == []


def test_a_breach_assessment_is_kept_across_a_restart(browse: Browse, served: Served, tmp_path: Path) -> None:
    """Search the holder picker, pick the window with date pickers, run; restart the server; reopen it, get the plan."""
    b, page = browse, browse.page
    _sign_in(b, "rita")
    page.click("header >> text=Breach")
    page.wait_for_url(b.base + "/breach")  # loaded, so the filter's script has run
    page.fill("#holder-filter", "svg")
    shown = "() => [...document.getElementById('holders').options].filter(o => !o.hidden).length === 1"
    page.wait_for_function(shown)
    visible = page.eval_on_selector("#holders", "s => [...s.options].filter(o => !o.hidden).map(o => o.value)")
    assert visible == [HOSTILE_SYSTEM]
    page.select_option("#holders", HOSTILE_SYSTEM)
    _run_breach(b, "INC-RESTART", "2026-12-01T00:00", "09-breach-pickers")
    job_url = page.url
    served.stop()
    served.start()
    page.goto(b.base + "/breach")  # the session is kept in the console database too
    page.click("table.assessments >> text=INC-RESTART")
    page.wait_for_url(job_url)
    assert "notification plan" in page.inner_text("main")
    b.shot("10-breach-after-restart")
    with page.expect_download() as done:
        page.click("text=Download the notification plan (CSV)")
    assert done.value.suggested_filename == "breach-INC-RESTART-plan.csv"
    saved = tmp_path / "plan.csv"
    done.value.save_as(saved)
    lines = saved.read_text().splitlines()
    assert lines[0].startswith("table,regime,applies,deadline") and any(",GDPR," in line for line in lines)
    _sign_out(b)
    assert b.problems == []


def _rows(page: Page, table: str) -> list[list[str]]:
    return page.eval_on_selector_all(
        f"#{table} tbody tr", "trs => trs.map(tr => [...tr.cells].map(td => td.innerText))"
    )  # fmt: skip


def test_registers_page_sort_and_filter_each_table(browse: Browse) -> None:
    """A register table pages 50 rows at a time, sorts by a clicked column both ways, filters by text and facet."""
    b, page = browse, browse.page
    _sign_in(b, "ana")
    page.goto(b.base + "/registers")
    table = "ropa-activities"
    assert len(_rows(page, table)) == 50 and "page 1 of 2" in page.inner_text(f"#{table} nav.pager")
    page.click(f"#{table} nav.pager >> text=Next")
    page.wait_for_url("**ropa-activities.page=2*")
    assert len(_rows(page, table)) == 8 and "page 2 of 2" in page.inner_text(f"#{table} nav.pager")
    page.click(f"#{table} th >> text=subjects")
    page.wait_for_url("**ropa-activities.sort=subjects*")
    ups = [int(r[5]) for r in _rows(page, table)]
    assert len(ups) == 50 and ups == sorted(ups)
    page.click(f"#{table} th >> text=subjects")
    page.wait_for_url("**ropa-activities.desc=1*")
    downs = [int(r[5]) for r in _rows(page, table)]
    assert downs == sorted(downs, reverse=True) and downs[0] >= ups[-1]
    page.fill(f"#{table} input[type=search]", "huatuo")
    page.click(f"#{table} form.filter button")
    page.wait_for_url("**ropa-activities.q=huatuo*")
    found = _rows(page, table)
    assert found and all("huatuo" in r[0] for r in found)
    assert [int(r[5]) for r in found] == sorted((int(r[5]) for r in found), reverse=True)  # the order kept
    page.select_option(f"#{table} select[name='{table}.controller']", "huatuo-web")
    page.click(f"#{table} form.filter button")
    page.wait_for_url("**ropa-activities.controller=huatuo-web*")
    assert {r[0] for r in _rows(page, table)} == {"huatuo-web"}
    b.shot("07-registers-filtered")
    with page.expect_download() as done:
        page.click(f"#{table} >> text=Download CSV")
    assert done.value.suggested_filename == "ropa-activities.csv"
    assert b.problems == []


def test_refused_page_leads_somewhere(browse: Browse) -> None:
    """An analyst who opens the breach page gets a styled 403 page saying why, with a way back home that works."""
    b, page = browse, browse.page
    _sign_in(b, "ana")
    response = page.goto(b.base + "/breach")
    assert response is not None and response.status == 403
    assert page.inner_text("h1") == "Not allowed"
    assert "responders run breach queries" in page.inner_text("main")
    b.shot("08-refused")
    page.click("main >> text=Go to your home page")
    page.wait_for_url(b.base + "/")
    assert "Welcome, ana" in page.inner_text("h1")


def test_person_form_keeps_input_after_an_error_and_names_categories(browse: Browse) -> None:
    """A look-up with a bad case reference comes back with the identifier typed; the report names categories."""
    b, page = browse, browse.page
    _sign_in(b, "ana")
    page.goto(b.base + "/person")
    page.fill("input[name=case_reference]", "bad ref!")
    page.fill("input[name=identifier]", LINKED[1])
    page.click("form.card button[type=submit]")
    page.wait_for_selector("p.error")
    assert "case_reference" in page.inner_text("p.error")
    assert page.input_value("input[name=identifier]") == LINKED[1]
    assert page.input_value("input[name=case_reference]") == "bad ref!"
    page.fill("input[name=case_reference]", "DSAR-2026-8")
    page.click("form.card button[type=submit]")
    page.wait_for_selector("section.report")
    term = page.locator("section.report span.term", has_text="Contact: email").first
    assert term.get_attribute("title") == "user.contact.email"
    assert "user.contact.email" not in page.inner_text("section.report table >> nth=0")
    assert [p for p in b.problems if "status of 400" not in p] == []  # the refused look-up itself is a 400


def test_auditor_pages_back_past_500_entries(browse: Browse, world: World) -> None:
    """With 620 entries by one reader, searching part of the name pages back 100 at a time to the oldest."""
    from lineage.console.audit import Audit
    from lineage.console.db import ConsoleDB

    db = ConsoleDB(f"sqlite:///{(world.folder / 'console.db').resolve()}")  # the served console's database
    try:
        trail = Audit(db)
        for i in range(620):
            trail.record("paging-reader", "analyst", "person.view", "127.0.0.1", subject=f"s{i}", case_ref=f"P-{i}")
    finally:
        db.close()
    b, page = browse, browse.page
    _sign_in(b, "otto")
    page.goto(b.base + "/audit")
    page.fill("input[name=actor]", "PAGING-read")
    page.click("form.card button[type=submit]")
    seen: list[str] = []
    for _ in range(10):
        page.wait_for_load_state()  # a POST to /audit: the URL says nothing; the whole table is parsed by then
        page.wait_for_selector("text=of 620 matching")
        seen += page.eval_on_selector_all("tbody tr", "trs => trs.map(tr => tr.cells[0].innerText)")
        older = page.locator("nav.pager button", has_text="Older")
        if older.count() == 0:
            break
        older.click()
    assert len(seen) == 620 == len(set(seen))
    assert "P-0" in page.inner_text("tbody")  # the oldest reached
    assert b.problems == []
