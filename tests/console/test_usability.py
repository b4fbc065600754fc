"""The console's words and forms for people: taxonomy names, one time format, paged registers, kept input, no dead ends.

Through the real app (Starlette's TestClient) over the small simulated store of conftest; the same
paths in Chromium are in test_browser.py.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from lineage import default_taxonomy
from lineage.console.actions import stamp_headers
from lineage.console.app import Console
from lineage.console.filters import Words, name_of, when
from lineage.console.paging import PAGE_SIZE, view
from tests.console.conftest import LINKED, PASSWORD, csrf_of

Clients = Callable[[str | None], TestClient]
MICROSECONDS = re.compile(r"\d\d:\d\d:\d\d\.\d{3,6}")


def _person(client: TestClient, identifier: str, as_of: str = "") -> str:
    page = client.get("/person")
    r = client.post("/person", data={"csrf": csrf_of(page.text), "case_reference": "DSAR-1", "identifier": identifier,
                                     "as_of": as_of})  # fmt: skip
    return r.text


def test_taxonomy_keys_read_as_words() -> None:
    """A key reads as its parent and itself, without the shared root, acronyms in capitals."""
    assert name_of("user.contact.email") == "Contact: email"
    assert name_of("user.device.ip_address") == "Device: IP address"
    assert name_of("essential.service.payment_processing") == "Service: payment processing"
    assert name_of("analytics") == "Analytics"


def test_table_rows_are_each_value_s_cell_escaped_up_to_the_limit() -> None:
    """``rows`` renders each row's values as ``cell`` does, escaped; a key in words; rows past the limit left out."""
    words = Words(default_taxonomy())
    at = datetime(2026, 5, 1, 8, 30, 12, tzinfo=UTC)
    rows = [
        {"category": ["user.contact.email", "<b>x</b>"], "holder": "<script>alert(1)</script>", "at": at,
         "held": True, "none": None},
        {"category": "user.name", "holder": "a & b", "at": at, "held": False, "none": None},
        {"category": "c", "holder": "past the limit", "at": at, "held": True, "none": None},
    ]  # fmt: skip
    html = str(words.rows(rows, 2))
    assert html == (
        '<tr><td><span class="term" title="user.contact.email">Contact: email</span>, &lt;b&gt;x&lt;/b&gt;</td>'
        "<td>&lt;script&gt;alert(1)&lt;/script&gt;</td><td>2026-05-01 08:30 UTC</td><td>yes</td><td></td></tr>"
        '<tr><td><span class="term" title="user.name">Name</span></td><td>a &amp; b</td>'
        "<td>2026-05-01 08:30 UTC</td><td>no</td><td></td></tr>"
    )


def test_one_time_format_without_microseconds() -> None:
    """Datetimes and the audit trail's ISO text alike show in UTC to the minute."""
    moment = datetime(2026, 5, 1, 8, 30, 12, 345678, tzinfo=UTC)
    assert when(moment) == "2026-05-01 08:30 UTC"
    assert when("2026-05-01T10:30:12.345678+02:00") == "2026-05-01 08:30 UTC"
    assert when("not a time") == "not a time"


def test_person_page_names_categories_and_purposes_keeping_the_key_in_a_title(client_for: Clients) -> None:
    """The access report shows category and purpose names, each key in its title attribute, never a bare key."""
    html = _person(client_for("analyst"), LINKED[1])
    assert '<span class="term" title="user.contact.email">Contact: email</span>' in html
    assert '<span class="term" title="essential.service">Essential: service</span>' in html
    assert ">user.contact.email<" not in html and ">essential.service<" not in html


def test_audit_page_shows_times_without_microseconds(client_for: Clients) -> None:
    """The audit trail's times are in the one format (the table stores microseconds)."""
    html = client_for("auditor").get("/audit").text
    assert "signin.ok" in html and " UTC</td>" in html
    assert not MICROSECONDS.search(html)


def test_register_tables_are_paged_sorted_and_filtered(client_for: Clients) -> None:
    """Each register table shows 50 rows a page, sorts by a column and filters by text and facet, server-side."""
    client = client_for("responder")
    first = client.get("/registers").text
    assert "page 1 of 2" in first and "ropa-activities.page=2" in first
    second = client.get("/registers?ropa-activities.page=2").text
    assert "page 2 of 2" in second
    assert second.count("<tr>") < first.count("<tr>")  # 58 rows: 50 then 8 (the other tables unchanged)
    by_subjects = client.get("/registers?ropa-activities.sort=subjects&ropa-activities.desc=1").text
    section = by_subjects[by_subjects.index('id="ropa-activities"') : by_subjects.index('id="ropa-impact_assessments"')]
    counts = [int(n) for n in re.findall(r"<tr><td>[^<]*</td><td>.*?</td>(?:<td>.*?</td>){3}<td>(\d+)</td>", section)]
    assert len(counts) == PAGE_SIZE and counts == sorted(counts, reverse=True)
    assert 'aria-sort="descending"' in section
    filtered = client.get("/registers?ropa-activities.q=huatuo").text
    section = filtered[filtered.index('id="ropa-activities"') : filtered.index('id="ropa-impact_assessments"')]
    shown = re.search(r"<small>\((\d+) of 58\)</small>", section)
    assert shown and 0 < int(shown.group(1)) < 58 and "page 1 of 2" not in section


def test_paging_keeps_the_other_tables_and_refuses_a_bad_column() -> None:
    """A page link keeps the other tables' parameters; an unknown sort column is one line naming the parameter."""
    rows = [{"n": i, "name": f"row {i}"} for i in range(120)]
    v = view("t", "T", rows, {"t.page": "2", "other.q": "x"})
    assert [r["n"] for r in v.rows] == list(range(50, 100)) and v.pages == 3
    assert "other.q=x" in v.link(page=3) and "t.page=3" in v.link(page=3)
    assert "t.page" not in v.link(sort="name")  # a new order starts at page one
    try:
        view("t", "T", rows, {"t.sort": "<script>"})
    except ValueError as exc:
        assert str(exc).startswith("t.sort=") and "one of n, name" in str(exc)
    else:
        raise AssertionError("an unknown column was accepted")


def test_register_table_downloads_as_csv_with_its_filter(client_for: Clients) -> None:
    """A table's CSV holds every row passing its filter, in its order, not just the page shown."""
    r = client_for("analyst").get("/registers/ropa-activities.csv?ropa-activities.sort=subjects&ropa-activities.desc=1")
    assert r.status_code == 200 and 'filename="ropa-activities.csv"' in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == 58
    assert [int(x["subjects"]) for x in rows] == sorted((int(x["subjects"]) for x in rows), reverse=True)
    assert client_for("analyst").get("/registers/nothing.csv").status_code == 404


def test_register_download_carries_the_stamp_of_its_read(client_for: Clients) -> None:
    """The CSV names the store snapshot and the holdings' lag it was computed from, in headers the page shows too."""
    analyst = client_for("analyst")
    r = analyst.get("/registers/transfers.csv")
    assert r.status_code == 200 and r.headers["lineage-holdings-behind"].isdigit()
    snapshot = r.headers["lineage-store-snapshot"]
    assert snapshot.lstrip("-").isdigit() and snapshot in analyst.get("/registers").text


def test_stamp_headers_let_only_printable_ascii_through() -> None:
    """A line break, a control character or a non-ASCII letter in a stamp never reaches a header as itself."""
    headers = stamp_headers({"updating": "failed:\r\nSet-Cookie: x=1\x00\x1b é", "store_snapshot": -12, "lag": None})
    assert headers == {"Lineage-Updating": "failed: Set-Cookie: x=1?? ?", "Lineage-Store-Snapshot": "-12"}


def test_retention_section_explains_the_two_rules(client_for: Clients) -> None:
    """The retention figures sit beside words saying which rule each one counts."""
    html = client_for("analyst").get("/registers").text
    assert "Held past retention: none" in html and "Policy retention violations:" in html
    assert "the event which brought it" in html and "its privacy policy promises" in html


def test_refused_page_says_why_and_where_to_go(client_for: Clients) -> None:
    """A role refused a page gets a 403 page saying why, which role does it, and a way home; never a bare 'Refused'."""
    r = client_for("analyst").get("/breach")
    assert r.status_code == 403
    assert "<h1>Not allowed</h1>" in r.text and "the analyst role may not open this" in r.text
    assert "responders run breach queries" in r.text and 'href="/"' in r.text
    assert '<link rel="stylesheet" href="/static/console.css">' in r.text


def test_forms_keep_what_was_typed_after_an_error(client_for: Clients, console: Console) -> None:
    """Person look-up, audit search and sign-in keep the typed values after an error; a password never comes back."""
    html = _person(client_for("analyst"), LINKED[1], as_of="yesterday")
    assert "as_of=" in html and f'value="{LINKED[1]}"' in html and 'value="yesterday"' in html
    auditor = client_for("auditor")
    page = auditor.get("/audit")
    r = auditor.post("/audit", data={"csrf": csrf_of(page.text), "actor": "analy", "since": "last week"})
    assert r.status_code == 400 and "since=" in r.text and 'value="analy"' in r.text
    anon = client_for(None)
    form = anon.get("/login")
    r = anon.post("/login", data={"name": "analyst", "password": "wrong-password-x", "csrf": csrf_of(form.text)})
    assert r.status_code == 401 and 'value="analyst"' in r.text and "wrong-password-x" not in r.text
    analyst = client_for("analyst")
    page = analyst.get("/account/password")
    r = analyst.post("/account/password", data={"csrf": csrf_of(page.text), "old": "not-the-password", "new": PASSWORD})
    assert r.status_code == 400 and "not-the-password" not in r.text
    assert re.search(r'name="old"[^>]*aria-invalid="true"', r.text)


def test_audit_search_pages_past_500_entries_by_keyset(client_for: Clients, console: Console) -> None:
    """Searching by part of a name pages back through all 620 matches, 100 at a time, none twice or missed."""
    for i in range(620):
        console.audit.record("bulk-reader", "analyst", "person.view", "127.0.0.1", subject=f"s{i}", case_ref=f"C-{i}")
    auditor = client_for("auditor")
    csrf = csrf_of(auditor.get("/audit").text)
    seen: list[int] = []
    before = ""
    for _ in range(10):
        r = auditor.post("/audit", data={"csrf": csrf, "actor": "BULK-read", "before": before})
        assert r.status_code == 200 and "of 620 matching" in r.text
        seen += [int(s) for s in re.findall(r"<tr><td>(\d+)</td>", r.text)]
        more = re.search(r'name="before" value="(\d+)"', r.text)
        if more is None:
            break
        before = more.group(1)
    assert len(seen) == 620 == len(set(seen)) and seen == sorted(seen, reverse=True)


def test_audit_search_by_time_range_and_case_part(client_for: Clients, console: Console) -> None:
    """From/to as datetime-local values bound the entries (the 'to' minute included); a case matches by a part."""
    console.audit.record("ana", "analyst", "person.view", "127.0.0.1", subject="x", case_ref="DSAR-2026-0042")
    now = datetime.now(UTC)
    auditor = client_for("auditor")
    csrf = csrf_of(auditor.get("/audit").text)
    window = {"since": (now - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M"), "until": now.strftime("%Y-%m-%dT%H:%M")}
    r = auditor.post("/audit", data={"csrf": csrf, "case_reference": "0042", **window})
    assert r.status_code == 200 and "DSAR-2026-0042" in r.text and "of 1 matching" in r.text
    past = {"since": "2020-01-01T00:00", "until": "2020-01-02T00:00"}
    r = auditor.post("/audit", data={"csrf": csrf, "case_reference": "0042", **past})
    assert "of 0 matching" in r.text
    r = auditor.post("/audit", data={"csrf": csrf, "since": "2026-02-01T00:00", "until": "2026-01-01T00:00"})
    assert r.status_code == 400 and "until=" in r.text and "is before since" in r.text


def test_map_names_categories_and_shows_times_in_the_one_format(client_for: Clients) -> None:
    """The map's flow details carry category names and times to the minute, not keys and ISO text."""
    html = client_for("analyst").get("/map").text
    payload = html[html.index('id="map-data"') :]
    assert '"Contact: email"' in payload and '"user.contact.email"' not in payload
    assert re.search(r'"first_seen": "\d{4}-\d\d-\d\d \d\d:\d\d UTC"', payload)
    assert 'data-breach="no"' in html  # the analyst is offered no breach button
