"""Sending events: ``lineage emit`` (JSON lines in) and ``lineage tail`` (JSON lines out)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TextIO

from lineage.cli.options import add_kafka_options, count, seconds, settings_from
from lineage.errors import ConfigurationError, InputLineError, LineageError

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this group's sub-commands."""
    emit = sub.add_parser("emit", help="send JSON-lines events (one per line) from FILE or stdin")
    emit.add_argument("file", nargs="?", help="JSON-lines file; '-' or nothing for stdin")
    emit.add_argument("--system", help="emitting system, for lines that do not name one")
    emit.add_argument("--region", help="ISO 3166 code where that system runs")
    add_kafka_options(emit)
    emit.set_defaults(func=cmd_emit)

    tail = sub.add_parser("tail", help="print the topic's events as JSON lines")
    tail.add_argument("--idle", type=seconds, default=5.0, help="stop after this many quiet seconds")
    tail.add_argument("--max", type=count, default=None, help="stop after this many events")
    add_kafka_options(tail)
    tail.set_defaults(func=cmd_tail)


def cmd_emit(args: argparse.Namespace) -> int:
    """Send JSON-lines events from a file or stdin; report each bad line with its number.

    A bad line (unparsable, invalid, too big, text with no UTF-8 form) is named on stderr and the
    next line read: every good line is sent. Only the broker failing stops the run, as one line
    saying how many lines were sent and which line it stopped at.
    """
    import io

    from lineage.errors import BrokerError
    from lineage.sdk.emitter import Emitter
    from lineage.sdk.jsonlines import message_size_check, parse_lines

    settings = settings_from(args)
    # undecodable bytes become lone surrogates ("surrogateescape"), refused per line by
    # parse_lines, instead of a UnicodeDecodeError that would end the whole run
    source: TextIO = (
        io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="surrogateescape")
        if args.file in (None, "-")
        else open(args.file, encoding="utf-8", errors="surrogateescape")  # noqa: SIM115
    )
    sent = bad = 0
    try:
        with (
            source,
            Emitter(system=args.system or "lineage-emit", region=args.region or "CN", settings=settings) as emitter,
        ):
            fits = message_size_check(emitter.codec.encode)
            lines = parse_lines(source, system=args.system, region=args.region, taxonomy=emitter.taxonomy, check=fits)
            for item in lines:
                if isinstance(item, InputLineError):
                    bad += 1
                    print(f"lineage emit: {item}", file=sys.stderr)
                    continue
                emitter.emit(item)
                sent += 1
    except BrokerError as exc:
        # nothing acknowledged is lost: say how far we got, so the rest can be sent again
        raise BrokerError(f"{exc} (stopped after {sent} event(s) sent and {bad} bad line(s); "
                          "send the input again: events already acknowledged may be sent twice, "
                          "their event ids tell the copies apart)") from exc  # fmt: skip
    print(f"sent {sent} event(s); {bad} bad line(s) refused", file=sys.stderr)
    return 1 if bad else 0


def cmd_tail(args: argparse.Namespace) -> int:
    """Print the topic's events as JSON lines, from the beginning, until it goes quiet."""
    from lineage.codec.avro import Codec
    from lineage.sdk.jsonlines import event_to_json
    from lineage.transport.kafka import read_messages, topic_exists

    settings = settings_from(args)
    if not topic_exists(settings, settings.topic, operation="read"):
        raise ConfigurationError("--topic", f"no topic {settings.topic} on the broker at {settings.bootstrap_servers}")
    codec = Codec()
    for m in read_messages(settings, settings.topic, idle_timeout_s=args.idle, max_messages=args.max):
        try:
            event = codec.decode(m.value or b"", topic=m.topic, partition=m.partition, offset=m.offset)
        except LineageError as exc:
            print(f"lineage tail: {exc}", file=sys.stderr)
            continue
        print(json.dumps(event_to_json(event), ensure_ascii=False))
    return 0
