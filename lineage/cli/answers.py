"""The answers: ``access``, ``breach``, ``erasure``, ``transfers``, ``retention``, ``ropa``, ``check`` and ``map``."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

from lineage.cli._common import add_answer_options, parse_time, policies_from, store_for, taxonomy_for, told
from lineage.cli.options import add_store_options
from lineage.errors import ConfigurationError
from lineage.private import open_private
from lineage.settings import Settings

if TYPE_CHECKING:
    from lineage.present.formats import Document

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this group's sub-commands."""
    access = sub.add_parser("access", help="answer a data subject's access request")
    access.add_argument("identifier", help="any identifier of the subject (account id, device id, hashed e-mail)")
    access.add_argument("--as-of", help="answer as the history stood at this ISO 8601 time")
    _add_links_option(access)
    add_answer_options(access)
    _add_console_options(access)
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
    _add_console_options(erasure)
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


def _add_console_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--console", help="ask this running console (lineage serve) instead of opening the store: "
                        "answered by its warm process (env LINEAGE_CONSOLE_URL; token from "
                        "LINEAGE_CONSOLE_TOKEN_FILE)")  # fmt: skip
    parser.add_argument("--case", help="with --console: the request or ticket id the console records for this look-up")


def _from_console(args: argparse.Namespace, settings: Settings, answer: str) -> Document | None:
    """The answer asked of a running console (``--console`` or LINEAGE_CONSOLE_URL); None to open the store.

    The store's own options do not apply there (the console answers from its newest read of its
    store), so one given is refused rather than silently ignored; so is ``--case`` without a console.
    """
    url = args.console or settings.console_url or None  # an empty variable is no console
    if url is None:
        if args.case is not None:
            raise ConfigurationError("--case", "is used only with --console (the console records it)")
        return None
    from lineage.cli.remote import ask, console_base

    option = "--console" if args.console else "LINEAGE_CONSOLE_URL"
    for name in ("store", "catalog_uri", "warehouse", "snapshot"):
        if getattr(args, name, None) is not None:
            flag = "--" + name.replace("_", "-")
            raise ConfigurationError(flag, f"does not apply with {option}: the console answers from its own store")
    if not args.case:
        raise ConfigurationError("--case", f"is required with {option}: the console records why a person is looked up")
    as_of = parse_time("--as-of", args.as_of)
    query = {"case_reference": args.case, "identifier": args.identifier,
             "as_of": None if as_of is None else as_of.isoformat(),
             "links_as_known_then": args.links_as_known_then}  # fmt: skip
    return ask(console_base(url, option), settings.console_token, answer, query, option)


def _iso(value: object) -> str:
    """A time fact as text: a ``datetime`` from the store, or the ISO text a console sent."""
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _told(doc: Document) -> Document:
    """The document, its stamp's lag and warning said on stderr (``told``)."""
    told(doc[1])
    return doc


def cmd_access(args: argparse.Namespace) -> int:
    """Answer a data subject's access request."""
    from lineage.present.formats import render

    settings = Settings.from_env(os.environ)
    doc = _from_console(args, settings, "access")
    if doc is None:
        from lineage.cli.forget import subject_digest
        from lineage.service import answers

        store = store_for(args, settings)
        digest = subject_digest(settings, store.location)
        doc = answers.access(store, args.identifier, taxonomy_for(settings), parse_time("--as-of", args.as_of),
                             links_as_known_then=args.links_as_known_then, digest=digest, option="--as-of")  # fmt: skip
    facts = doc[1]
    if "erased" in facts and args.format != "json":  # a forgotten person: the certificate's date and case
        print(f"{args.identifier!r}: {facts['erased']}")
        return 0
    _told(doc)
    if not facts["holds_data"] and args.format == "markdown":
        print(f"No data held about {args.identifier!r} as of {_iso(facts['as_of'])} "
              f"(store snapshot {facts['store_snapshot']}).")  # fmt: skip
        if facts.get("warning"):
            print(f"Warning: {facts['warning']}")
        return 0
    print(render(doc, args.format), end="")
    return 0


def cmd_breach(args: argparse.Namespace) -> int:
    """Estimate a breach's impact and the indicative notifications it triggers."""
    from lineage.errors import InvalidEventError
    from lineage.present.formats import render
    from lineage.present.reports import affected_csv
    from lineage.service import answers

    settings = Settings.from_env(os.environ)
    t1, t2 = parse_time("--from", args.t1), parse_time("--to", args.t2)
    if t1 is None or t2 is None:
        raise InvalidEventError("--from/--to", None, "both are required")
    store = store_for(args, settings)
    doc, report = answers.breach(store, args.node, t1, t2, taxonomy_for(settings),
                                 aware=parse_time("--aware", args.aware), affected=args.format == "json",
                                 option="--aware")  # fmt: skip
    _told(doc)
    if args.subjects_out:
        with open_private(args.subjects_out, "--subjects-out", newline="") as f:  # a list of people
            f.write(affected_csv(report))
    print(render(doc, args.format), end="")
    return 0


def cmd_erasure(args: argparse.Namespace) -> int:
    """Plan a subject's erasure across every holder."""
    from lineage.present.formats import render

    settings = Settings.from_env(os.environ)
    doc = _from_console(args, settings, "erasure")
    if doc is None:
        from lineage.service import answers

        store = store_for(args, settings)
        doc = answers.erasure(store, args.identifier, taxonomy_for(settings), parse_time("--as-of", args.as_of),
                              links_as_known_then=args.links_as_known_then, option="--as-of")  # fmt: skip
    facts = _told(doc)[1]
    if not facts["holds_data"] and args.format == "markdown":
        print(f"No data held about {args.identifier!r} as of {_iso(facts['as_of'])}: nothing to erase "
              f"(store snapshot {facts['store_snapshot']}).")  # fmt: skip
        return 0
    print(render(doc, args.format), end="")
    return 0


def cmd_transfers(args: argparse.Namespace) -> int:
    """The cross-border transfer register, set against the PIPL thresholds."""
    from lineage.present.formats import render
    from lineage.service import answers

    settings = Settings.from_env(os.environ)
    store = store_for(args, settings)
    doc = answers.transfers(store, taxonomy_for(settings), parse_time("--as-of", args.as_of), option="--as-of")
    print(render(_told(doc), args.format), end="")
    return 0


def cmd_retention(args: argparse.Namespace) -> int:
    """Data held past its retention period."""
    from lineage.present.formats import render
    from lineage.service import answers

    settings = Settings.from_env(os.environ)
    doc = answers.retention(store_for(args, settings), parse_time("--now", args.now))
    print(render(_told(doc), args.format), end="")
    return 0


def cmd_ropa(args: argparse.Namespace) -> int:
    """The record of processing activities generated from the observed flows."""
    from lineage.present.formats import render
    from lineage.service import answers

    settings = Settings.from_env(os.environ)
    as_of = parse_time("--as-of", args.as_of)
    if args.out and not Path(args.out).parent.is_dir():  # before the query, which can take a while
        raise ConfigurationError("--out", f"{Path(args.out).parent} is not a folder")
    doc = _told(answers.ropa(store_for(args, settings), taxonomy_for(settings), as_of, option="--as-of"))
    text = render(doc, args.format)
    if not args.out:
        print(text, end="")
        return 0
    with open_private(args.out, "--out", newline="") as f:  # names the systems and flows of the organisation
        f.write(text)
    facts = doc[1]
    print(f"wrote {args.out}: {facts['activities']} activities, {facts['needing_assessment']} needing an "
          "impact assessment")  # fmt: skip
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Report every flow that breaks a declared policy; exit 1 when there is any."""
    from lineage.contract.policy import load_policy
    from lineage.present.formats import render
    from lineage.service import answers

    settings = Settings.from_env(os.environ)
    taxonomy = taxonomy_for(settings)
    policy = load_policy(Path(args.policy), taxonomy)
    doc = _told(answers.check(store_for(args, settings), policy, parse_time("--now", args.now), option="--policy"))
    print(render(doc, args.format), end="")
    return 1 if doc[1]["violations"] else 0


def cmd_map(args: argparse.Namespace) -> int:
    """Write the data map page; with policies, their violations are highlighted."""
    from lineage.present.datamap import write_map
    from lineage.service import answers

    settings = Settings.from_env(os.environ)
    if not Path(args.out).parent.is_dir():  # before the checks, which can take a while
        raise ConfigurationError("--out", f"{Path(args.out).parent} is not a folder")
    taxonomy = taxonomy_for(settings)
    store = store_for(args, settings)
    drawn = answers.data_map(store, taxonomy, policies_from(args.policy, taxonomy), parse_time("--now", args.now))
    told(drawn.stamp.facts())
    m = drawn.map
    write_map(m, Path(args.out), drawn.stamp.facts())
    crossing = sum(1 for e in m.edges if e.cross_border)
    print(f"wrote {args.out}: {len(m.nodes)} holders, {len(m.edges)} flows, {crossing} cross-border, "
          f"{len(m.violations)} policy violations")  # fmt: skip
    return 0
