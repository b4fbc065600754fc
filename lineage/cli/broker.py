"""``lineage broker``: a local Kafka broker from the official jars."""

from __future__ import annotations

import argparse
import json
import os

from lineage.settings import Settings

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this group's sub-commands."""
    broker = sub.add_parser("broker", help="run a local Kafka broker from the official jars")
    broker.add_argument("action", choices=["start", "stop", "fetch"])
    broker.set_defaults(func=cmd_broker)


def cmd_broker(args: argparse.Namespace) -> int:
    """Start or stop a local Kafka broker from the official jars."""
    from lineage.transport.local_broker import LocalBroker, fetch_jars, stop_saved

    settings = Settings.from_env(os.environ)
    state = settings.cache_dir / "broker.json"
    if args.action == "stop":
        stopped = stop_saved(state)
        print(f"stopped broker at {stopped}" if stopped else "no broker was running")
        return 0
    if args.action == "fetch":
        print(fetch_jars(settings.cache_dir))
        return 0
    if state.exists():
        print(json.loads(state.read_text(encoding="utf-8"))["bootstrap_servers"])
        return 0
    broker = LocalBroker(fetch_jars(settings.cache_dir), settings.cache_dir / "broker").start()
    broker.save_state(state)
    print(broker.bootstrap_servers)
    return 0
