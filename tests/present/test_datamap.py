"""The data map page: what it holds, and how it behaves in headless Chromium (no network, hover, click)."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from lineage import Emitter, Party, default_taxonomy
from lineage.answers.mapdata import MapData, map_data
from lineage.answers.policy_check import check
from lineage.contract.policy import Violation, policy_dir
from lineage.ingest.pipeline import Ingestor
from lineage.present.datamap import DataMap, build_map, write_map
from lineage.store import Store
from lineage.testing import MemorySink
from lineage.world.organisations import build
from lineage.world.sim import WorldSize, emit
from tests.fixtures import BROWSER_TIMEOUT_MS

TAXONOMY = default_taxonomy()
SIZE = WorldSize(subjects=40, days=200, seed=3, violations=1)
# the Chromium switches that keep a headless run off the network and out of the home folder
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@dataclass(frozen=True)
class World:
    """A simulated world's store, what `check` found in it, its map and the written page."""

    store: Store
    found: dict[str, list[Violation]]
    subjects: set[str]
    map: DataMap
    page: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """Every seed organisation, with one breach per clause, stored and mapped."""
    folder = tmp_path_factory.mktemp("map")
    plans, _ = build(SIZE, TAXONOMY)
    sink = MemorySink()
    emit(plans, sink, TAXONOMY)
    ingestor = Ingestor(folder / "store", "events", taxonomy=TAXONOMY)
    for offset, message in enumerate(sink.messages):
        assert ingestor.add(0, offset, message.value) is None
    ingestor.flush()
    store = Store(folder / "store")
    found = {p.policy.name: check(store, p.policy, SIZE.end) for p in plans}
    m = build_map(map_data(store, found), TAXONOMY, [p.policy for p in plans])
    page = folder / "map.html"
    write_map(m, page)
    subjects = {e.fields["subject_id"] for p in plans for e in p.events if e.fields.get("subject_id")}
    return World(store, found, subjects, m, page)


def test_flows_between_zones_are_cross_border(world: World) -> None:
    """Hong Kong to mainland China is cross-border; US to US is not."""
    m = world.map
    assert m.edge(m.node("mochat-app", "HK"), m.node("bugly-crash-sdk", "CN")).cross_border
    assert not m.edge(m.node("mall-web", "US"), m.node("card-payment-gateway", "US")).cross_border


def test_every_violation_is_listed_and_pinned_to_its_flow(world: World) -> None:
    """The page lists each violation `check` found, and each sits on the flow its event belongs to."""
    total = sum(len(v) for v in world.found.values())
    assert total > 0
    assert len(world.map.violations) == total
    pinned = sum(len(e.violations) for e in world.map.edges)
    assert pinned == total
    assert all(world.map.nodes[e.dst].violations for e in world.map.edges if e.violations)


def test_page_holds_no_subject_identifier(world: World) -> None:
    """No data subject's identifier appears anywhere in the page."""
    text = world.page.read_text(encoding="utf-8")
    assert len(world.subjects) > 100
    assert [s for s in world.subjects if s in text] == []


def test_page_references_nothing_outside_itself(world: World) -> None:
    """No src or href attributes and no URLs other than the SVG namespace: the page is self-contained."""
    text = world.page.read_text(encoding="utf-8")
    assert not re.search(r"\s(src|href)=", text)
    assert set(re.findall(r"https?://[^\s\"'<>]+", text)) == {"http://www.w3.org/2000/svg"}


def test_page_file_is_private(world: World) -> None:
    """The page is written readable by its owner only."""
    assert stat.S_IMODE(os.stat(world.page).st_mode) == 0o600


def _chromium() -> str | None:
    """LINEAGE_CHROMIUM, else chromium on PATH, else None: Playwright's own build (``./run test`` fetches one)."""
    return os.environ.get("LINEAGE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium driven by Playwright; fails (never skips) when there is none to launch."""
    with sync_playwright() as p:
        try:
            b = p.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)
        except Exception as exc:
            pytest.fail(f"no Chromium for the browser tests (./run test installs one): {exc}", pytrace=False)
        yield b
        b.close()


@dataclass
class Opened:
    """A loaded map page and what it asked of the network and the console."""

    page: Page
    requests: list[str]
    problems: list[str]


@pytest.fixture
def opened(browser: Browser, world: World) -> Iterator[Opened]:
    """The map page loaded in a fresh context, with every request and console error recorded."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(BROWSER_TIMEOUT_MS)
    page = context.new_page()
    seen = Opened(page, [], [])
    page.on("request", lambda r: seen.requests.append(r.url))
    page.on("pageerror", lambda e: seen.problems.append(str(e)))
    page.on("console", lambda m: seen.problems.append(m.text) if m.type == "error" else None)
    page.goto(world.page.as_uri())
    yield seen
    context.close()


def test_browser_renders_every_holder_and_region(opened: Opened, world: World) -> None:
    """Chromium draws one box per holder, the expected systems and parties among them, and a band per region."""
    page = opened.page
    assert page.locator("svg#map .node").count() == len(world.map.nodes)
    expected = [("mochat-app", "HK"), ("bugly-crash-sdk", "CN"), ("moqi-app", "CN"), ("cloud-hosting-sg", "SG"),
                ("mall-web", "US")]  # fmt: skip
    for name, region in expected:
        box = page.locator(f'.node[data-name="{name}"][data-region="{region}"]').bounding_box()
        assert box is not None and box["width"] > 100, name
    regions = set(page.locator(".band").evaluate_all("els => els.map(e => e.dataset.region)"))
    assert {"HK", "CN", "SG", "US"} <= regions
    assert page.locator(".edge.cross").count() + page.locator(".edge.violation").count() > 0
    assert page.locator("#violations tr").count() == 1 + len(world.map.violations)
    assert opened.problems == []


def test_browser_makes_no_network_request(opened: Opened, world: World) -> None:
    """Loading and using the page asks for nothing but the file itself."""
    opened.page.locator('.node[data-name="mochat-app"][data-region="HK"]').click()
    assert opened.requests == [world.page.as_uri()]


def test_hover_shows_a_holders_summary(opened: Opened) -> None:
    """Hovering over a party shows its name, region and event counts in the tooltip."""
    page = opened.page
    assert not page.locator("#tip").is_visible()
    page.locator('.node[data-name="bugly-crash-sdk"][data-region="CN"]').hover()
    tip = page.locator("#tip")
    assert tip.is_visible()
    assert re.search(r"bugly-crash-sdk \(CN\) · processor.*\d+ events in", tip.inner_text(), re.S)


def test_click_on_a_flagged_holder_lists_its_violations(opened: Opened, world: World) -> None:
    """Clicking a holder with violations fills the details panel with each one's clause and event id."""
    flagged = next(n for n in world.map.nodes.values() if n.violations)
    page = opened.page
    page.locator(f'.node[data-id="{flagged.id}"]').click(position={"x": 30, "y": 10})
    details = page.locator("#details")
    assert details.get_attribute("data-shown") == flagged.id
    text = details.inner_text()
    for v in flagged.violations:
        assert v["clause"] in text and v["event_id"] in text


def test_click_on_a_flow_shows_its_facts(opened: Opened, world: World) -> None:
    """Clicking a cross-border flow shows its mechanism, event count and categories."""
    m = world.map
    edge = m.edge(m.node("mochat-app", "HK"), m.node("bugly-crash-sdk", "CN"))
    opened.page.locator(f'.edge[data-id="{edge.id}"]').dispatch_event("click")
    text = opened.page.locator("#details").inner_text()
    assert "Cross-border\nyes, via" in text
    assert f"{edge.facts['events']} (" in text
    assert edge.facts["categories"][0] in text


def _shares_to(folder: Path, region: str, *names: str) -> Store:
    """A store in which system 'shop' shares one e-mail address with each named recipient."""
    sink = MemorySink()
    emitter = Emitter(system="shop", region=region, sink=sink, taxonomy=TAXONOMY)
    for name in names:
        emitter.shared(
            "user-1",
            ["user.contact.email"],
            recipient=Party(name=name, role="third_party", region=region),
            purpose="essential.service",
            occurred_at=SIZE.end,
        )
    ingestor = Ingestor(folder, "events", taxonomy=TAXONOMY)
    for offset, message in enumerate(sink.messages):
        assert ingestor.add(0, offset, message.value) is None
    ingestor.flush()
    return Store(folder)


HOSTILE = '</script><script>document.title="owned"</script><img src=x onerror=alert(1)>'


def test_hostile_party_names_stay_text(browser: Browser, tmp_path: Path) -> None:
    """A recipient named like markup is shown as text: no script runs, no request is made."""
    page_file = tmp_path / "map.html"
    write_map(build_map(map_data(_shares_to(tmp_path / "store", "CN", HOSTILE)), TAXONOMY), page_file)
    context = browser.new_context()
    context.set_default_timeout(BROWSER_TIMEOUT_MS)
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(page_file.as_uri())
    node = page.locator(".node").filter(has_text="onerror")
    node.click()
    assert page.title() != "owned"
    assert node.get_attribute("data-name") == HOSTILE
    assert HOSTILE in page.locator("#details h2").inner_text()
    assert requests == [page_file.as_uri()]
    context.close()


def _lineage(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lineage.cli", *args], capture_output=True, text=True, check=False)


def test_map_command_writes_the_page_with_every_policy(world: World, tmp_path: Path) -> None:
    """`lineage map --policy policies/` writes the page and counts what `check` found under every policy."""
    out = tmp_path / "map.html"
    store = str(world.store.root)
    done = _lineage(
        "map", "--store", store, "--policy", str(policy_dir()), "--now", SIZE.end.isoformat(), "--out", str(out)
    )
    assert done.returncode == 0, done.stderr
    total = sum(len(v) for v in world.found.values())
    assert f"{len(world.map.nodes)} holders, {len(world.map.edges)} flows" in done.stdout
    assert f"{total} policy violations" in done.stdout
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_map_command_refuses_bad_paths_naming_the_option(world: World, tmp_path: Path) -> None:
    """An --out folder that does not exist, or a --policy folder without policies, fails naming the option."""
    store = str(world.store.root)
    done = _lineage("map", "--store", store, "--out", str(tmp_path / "missing" / "map.html"))
    assert done.returncode != 0 and "--out:" in done.stderr and "is not a folder" in done.stderr
    done = _lineage("map", "--store", store, "--policy", str(tmp_path), "--out", str(tmp_path / "map.html"))
    assert done.returncode != 0 and "--policy:" in done.stderr and "no *.toml" in done.stderr
    assert not (tmp_path / "map.html").exists()


def test_names_with_id_separators_stay_apart(tmp_path: Path) -> None:
    """A party named 'shop@US' and the system 'shop' in the US are two nodes, each with its own flow."""
    m = build_map(map_data(_shares_to(tmp_path, "US", "shop@US", "ads>net")), TAXONOMY)
    shop = m.node("shop", "US")
    assert {(n.name, n.region) for n in m.nodes.values()} == {("shop", "US"), ("shop@US", "US"), ("ads>net", "US")}
    assert [m.nodes[e.dst].name for e in m.edges if e.src == shop.id] == ["ads>net", "shop@US"]


def test_the_map_is_shaped_from_the_answer_alone_without_a_store() -> None:
    """``build_map`` lays out a ``MapData`` it is given (no store): a cross-border flow, its violation pinned."""
    flow = {"src": "app", "src_region": "CN", "src_role": "internal", "dst": "ads", "dst_region": "US",
            "dst_role": "third_party", "events": 3, "subjects": 2, "bulk_events": 0, "first_seen": None,
            "last_seen": None, "categories": ["user.contact.email"], "mechanisms": []}  # fmt: skip
    breach = Violation(clause="transfer", event_id="e-1", detail="no mechanism")
    data = MapData(flows=[flow], violations={"shop": [breach]},
                   placed={"e-1": {"src": "app", "src_region": "CN", "dst": "ads", "dst_region": "US"}})  # fmt: skip
    m = build_map(data, TAXONOMY)
    edge = m.edge(m.node("app", "CN"), m.node("ads", "US"))
    assert edge.cross_border and edge.facts["events"] == 3
    assert [v["event_id"] for v in edge.violations] == ["e-1"] == [v["event_id"] for v in m.violations]
