"""``lineage broker``: a local Kafka broker from the official jars."""

from __future__ import annotations

import argparse
import os

from lineage.settings import Settings

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this group's sub-commands."""
    broker = sub.add_parser(
        "broker",
        help="run a local Kafka broker from the official jars",
        description="start (or restart a dead one, same port and topics), stop (keeping its data), "
        "reset (stop and wipe every topic), or fetch the jars",
    )
    broker.add_argument("action", choices=["start", "stop", "reset", "fetch"])
    broker.set_defaults(func=cmd_broker)


def cmd_broker(args: argparse.Namespace) -> int:
    """Start, stop, reset a local Kafka broker from the official jars, or fetch them."""
    from lineage.devtools.local_broker import LocalBroker, fetch_jars, running_saved, stop_saved

    settings = Settings.from_env(os.environ)
    state = settings.cache_dir / "broker.json"
    workdir = settings.cache_dir / "broker"
    if args.action == "stop":
        stopped = stop_saved(state)
        print(f"stopped broker at {stopped}" if stopped else "no broker was running")
        return 0
    if args.action == "fetch":
        print(fetch_jars(settings.cache_dir))
        return 0
    if args.action == "reset":
        stopped = stop_saved(state)
        LocalBroker(fetch_jars(settings.cache_dir), workdir).reset()
        print(f"stopped broker at {stopped}; data wiped" if stopped else "data wiped")
        return 0
    running = running_saved(state)
    if running is not None:
        print(running)
        return 0
    # whatever the file says is dead (killed JVM) or hung: end it, then start again on the same
    # folder, which keeps the port and the topics
    stop_saved(state)
    broker = LocalBroker(fetch_jars(settings.cache_dir), workdir).start()
    broker.save_state(state)
    print(broker.bootstrap_servers)
    return 0
