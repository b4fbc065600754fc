"""The answers: ``access``, ``breach``, ``erasure``, ``transfers``, ``retention``, ``ropa``, ``check`` and ``map``."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from lineage.cli._common import (
    add_answer_options,
    counted_later_events_note,
    later_events_warning,
    parse_time,
    policies_from,
    store_for,
    taxonomy_for,
)
from lineage.cli.options import add_store_options
from lineage.errors import ConfigurationError
from lineage.private import open_private
from lineage.settings import Settings

if TYPE_CHECKING:
    from lineage.contract.policy import Policy
    from lineage.present.formats import Document
    from lineage.store import Store

__all__ = ["behind_note", "register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this group's sub-commands."""
    access = sub.add_parser("access", help="answer a data subject's access request")
    access.add_argument("identifier", help="any identifier of the subject (account id, device id, hashed e-mail)")
    access.add_argument("--as-of", help="answer as the history stood at this ISO 8601 time")
    _add_links_option(access)
    add_answer_options(access)
    access.set_defaults(func=cmd_access)

    breach = sub.add_parser("breach", help="whose data a breached holder exposed, and what to notify")
    breach.add_argument("--node", action="append", required=True, help="a compromised holder (repeatable)")
    breach.add_argument("--from", dest="t1", required=True, help="start of the breach window (ISO 8601)")
    breach.add_argument("--to", dest="t2", required=True, help="end of the breach window (ISO 8601)")
    breach.add_argument("--aware", help="when the breach became known (default: now); deadlines count from it")
    breach.add_argument("--subjects-out", help="write the affected subjects to this CSV file (created 0600)")
    add_answer_options(breach)
    breach.set_defaults(func=cmd_breach)

    erasure = sub.add_parser("erasure", help="plan a subject's erasure across every holder")
    erasure.add_argument("identifier", help="any identifier of the subject")
    erasure.add_argument("--as-of", help="as the history stood at this ISO 8601 time")
    _add_links_option(erasure)
    add_answer_options(erasure)
    erasure.set_defaults(func=cmd_erasure)

    transfers = sub.add_parser("transfers", help="the cross-border transfer register")
    transfers.add_argument("--as-of", help="as the history stood at this ISO 8601 time")
    add_answer_options(transfers)
    transfers.set_defaults(func=cmd_transfers)

    retention = sub.add_parser("retention", help="data still held past its retention period")
    retention.add_argument("--now", help="judge as of this ISO 8601 time (default: now)")
    add_answer_options(retention)
    retention.set_defaults(func=cmd_retention)

    record = sub.add_parser("ropa", help="the record of processing activities, with PIPL impact-assessment flags")
    record.add_argument("--as-of", help="as the history stood at this ISO 8601 time (default: now)")
    record.add_argument("--out", help="write the record to this file (created 0600) instead of printing it")
    add_answer_options(record)
    record.set_defaults(func=cmd_ropa)

    check = sub.add_parser("check", help="report the flows that break a declared policy file")
    check.add_argument("--policy", required=True, help="a policy TOML file (see policies/)")
    check.add_argument("--now", help="judge retention as of this ISO 8601 time (default: now)")
    add_answer_options(check)
    check.set_defaults(func=cmd_check)

    dmap = sub.add_parser("map", help="write the data map: one self-contained HTML page")
    dmap.add_argument("--out", default="map.html", help="the page to write (default map.html)")
    dmap.add_argument("--policy", action="append", help="a policy file or a folder of them (repeatable)")
    dmap.add_argument("--now", help="judge retention as of this ISO 8601 time (default: now)")
    add_store_options(dmap)
    dmap.set_defaults(func=cmd_map)


def _add_links_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--links-as-known-then",
        action="store_true",
        help="follow only identifier links declared by --as-of (audit); default: every link known now",
    )


def behind_note(store: Store) -> None:
    """One note on stderr when the answer left out events the holdings maintainer has not applied yet."""
    if store.behind:
        print(
            f"lineage: note: the holdings are {store.behind} event(s) behind the store: this answer reads events "
            f"snapshot {store.snapshot_id}, without them (run `lineage holdings` to bring them up to date)",
            file=sys.stderr,
        )


def _stamped(doc: Document, store: Store) -> Document:
    """The document with the store snapshot it was read from: ``--snapshot`` gives the same answer later."""
    title, facts, tables = doc
    return title, {**facts, "store_snapshot": store.snapshot}, tables


def cmd_access(args: argparse.Namespace) -> int:
    """Answer a data subject's access request."""
    from lineage.answers import access_request
    from lineage.answers.forget import erased, erasure_note
    from lineage.cli.forget import subject_digest
    from lineage.present.formats import render
    from lineage.present.reports import access_document

    settings = Settings.from_env(os.environ)
    store = store_for(args, settings)
    as_of = parse_time("--as-of", args.as_of)
    if (cert := erased(store, args.identifier, subject_digest(settings, store.location))) is not None:
        # a forgotten person: the certificate's date and case, and nothing more
        print(f"{args.identifier!r}: {erasure_note(cert)}")
        return 0
    report = access_request(
        store, args.identifier, taxonomy_for(settings), as_of, links_as_known_then=args.links_as_known_then
    )
    behind_note(store)
    warning = None if as_of else later_events_warning(store, report.as_of, "--as-of")
    if not report.holds_data and args.format == "markdown":
        print(
            f"No data held about {args.identifier!r} as of {report.as_of.isoformat()} "
            f"(store snapshot {store.snapshot})."
        )
        if warning:
            print(f"Warning: {warning}")
        return 0
    title, facts, tables = access_document(report)
    # machines read "nothing held" from the document itself, never from a sentence instead of it
    facts = {"holds_data": report.holds_data, **facts, **({"warning": warning} if warning else {})}
    print(render(_stamped((title, facts, tables), store), args.format), end="")
    return 0


def cmd_breach(args: argparse.Namespace) -> int:
    """Estimate a breach's impact and the indicative notifications it triggers."""
    from lineage.answers import breach_impact
    from lineage.errors import InvalidEventError
    from lineage.present.formats import render
    from lineage.present.reports import affected_csv, breach_document

    settings = Settings.from_env(os.environ)
    t1, t2 = parse_time("--from", args.t1), parse_time("--to", args.t2)
    if t1 is None or t2 is None:
        raise InvalidEventError("--from/--to", None, "both are required")
    store = store_for(args, settings)
    aware = parse_time("--aware", args.aware)
    report = breach_impact(store, args.node, t1, t2, taxonomy_for(settings), aware_at=aware)
    behind_note(store)
    # the window is explicit and counts every event in it, even one stamped after the wall clock
    # (--aware only sets when deadlines start): say that the answer rests on such events
    warning = counted_later_events_note(store, datetime.now(UTC), t2)
    if args.subjects_out:
        with open_private(args.subjects_out, "--subjects-out", newline="") as f:  # a list of people
            f.write(affected_csv(report))
    title, facts, tables = breach_document(report, affected=args.format == "json")
    if warning:
        facts = {**facts, "warning": warning}
    print(render(_stamped((title, facts, tables), store), args.format), end="")
    return 0


def cmd_erasure(args: argparse.Namespace) -> int:
    """Plan a subject's erasure across every holder."""
    from lineage.answers import erasure_plan
    from lineage.present.formats import render
    from lineage.present.reports import links_fact

    settings = Settings.from_env(os.environ)
    store = store_for(args, settings)
    as_of = parse_time("--as-of", args.as_of)
    plan = erasure_plan(
        store, args.identifier, taxonomy_for(settings), as_of, links_as_known_then=args.links_as_known_then
    )
    behind_note(store)
    warning = None if as_of else later_events_warning(store, plan.as_of, "--as-of")
    if not plan.holders and args.format == "markdown":
        print(
            f"No data held about {args.identifier!r} as of {plan.as_of.isoformat()}: nothing to erase "
            f"(store snapshot {store.snapshot})."
        )
        return 0
    facts = {"identifier": plan.identifier, "as_of": plan.as_of, "identifier_links": links_fact(plan.links),
             "holds_data": bool(plan.holders), "complete": plan.complete, "rule": plan.rule,
             **({"warning": warning} if warning else {})}  # fmt: skip
    doc = (f"Erasure plan: {plan.identifier}", facts, {"holders": plan.holders})
    print(render(_stamped(doc, store), args.format), end="")
    return 0


def cmd_transfers(args: argparse.Namespace) -> int:
    """The cross-border transfer register, set against the PIPL thresholds."""
    from lineage.answers import transfers_register
    from lineage.present.formats import render
    from lineage.present.reports import transfers_document

    settings = Settings.from_env(os.environ)
    store = store_for(args, settings)
    rows = transfers_register(store, taxonomy_for(settings), parse_time("--as-of", args.as_of))
    behind_note(store)
    print(render(_stamped(transfers_document(rows), store), args.format), end="")
    return 0


def cmd_retention(args: argparse.Namespace) -> int:
    """Data held past its retention period."""
    from lineage.answers import retention_register
    from lineage.present.formats import render

    settings = Settings.from_env(os.environ)
    store = store_for(args, settings)
    rows = retention_register(store, parse_time("--now", args.now))
    behind_note(store)
    facts = {"overdue_holdings": len(rows)}
    print(render(_stamped(("Held past retention", facts, {"overdue": rows}), store), args.format), end="")
    return 0


def cmd_ropa(args: argparse.Namespace) -> int:
    """The record of processing activities generated from the observed flows."""
    from lineage.answers.ropa import ropa
    from lineage.present.formats import render
    from lineage.present.reports import ropa_document

    settings = Settings.from_env(os.environ)
    as_of = parse_time("--as-of", args.as_of)
    if args.out and not Path(args.out).parent.is_dir():  # before the query, which can take a while
        raise ConfigurationError("--out", f"{Path(args.out).parent} is not a folder")
    store = store_for(args, settings)
    record = ropa(store, taxonomy_for(settings), as_of)
    warning = None if as_of else later_events_warning(store, record.as_of, "--as-of")
    title, facts, tables = ropa_document(record)
    if warning:
        facts = {**facts, "warning": warning}
    text = render(_stamped((title, facts, tables), store), args.format)
    if not args.out:
        print(text, end="")
        return 0
    with open_private(args.out, "--out", newline="") as f:  # names the systems and flows of the organisation
        f.write(text)
    print(f"wrote {args.out}: {len(record.activities)} activities, {facts['needing_assessment']} needing an "
          "impact assessment")  # fmt: skip
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Report every flow that breaks a declared policy; exit 1 when there is any."""
    from lineage.answers.policy_check import check
    from lineage.contract.policy import load_policy
    from lineage.present.formats import render
    from lineage.present.reports import check_document

    settings = Settings.from_env(os.environ)
    taxonomy = taxonomy_for(settings)
    policy = load_policy(Path(args.policy), taxonomy)
    store = store_for(args, settings)
    unseen = unseen_systems(store, policy)
    if unseen == list(policy.systems):  # nothing of this organisation is in the store: no verdict to give
        raise ConfigurationError("--policy", f"{policy.name}: none of its systems has events in this store")
    found = check(store, policy, parse_time("--now", args.now))
    behind_note(store)
    title, facts, tables = check_document(policy.name, found)
    if unseen:
        warning = f"system(s) {', '.join(unseen)} have no events in this store (a typo in the policy?)"
        print(f"lineage check: warning: {policy.name}: {warning}", file=sys.stderr)
        facts = {**facts, "warning": warning}
    print(render(_stamped((title, facts, tables), store), args.format), end="")
    return 1 if found else 0


def unseen_systems(store: Store, policy: Policy) -> list[str]:
    """The policy's systems that hold or send nothing in the store (a typo, or the wrong store)."""
    known = {r["name"] for r in store.rows("holders")}
    return [s for s in policy.systems if s not in known]


def cmd_map(args: argparse.Namespace) -> int:
    """Write the data map page; with policies, their violations are highlighted."""
    from lineage.answers.mapdata import map_data
    from lineage.answers.policy_check import check
    from lineage.present.datamap import build_map, write_map

    settings = Settings.from_env(os.environ)
    if not Path(args.out).parent.is_dir():  # before the checks, which can take a while
        raise ConfigurationError("--out", f"{Path(args.out).parent} is not a folder")
    taxonomy = taxonomy_for(settings)
    store = store_for(args, settings)
    policies = policies_from(args.policy, taxonomy)
    now = parse_time("--now", args.now)
    found = {p.name: check(store, p, now) for p in policies}
    m = build_map(map_data(store, found), taxonomy, policies)
    behind_note(store)
    write_map(m, Path(args.out))
    crossing = sum(1 for e in m.edges if e.cross_border)
    print(f"wrote {args.out}: {len(m.nodes)} holders, {len(m.edges)} flows, {crossing} cross-border, "
          f"{len(m.violations)} policy violations")  # fmt: skip
    return 0
