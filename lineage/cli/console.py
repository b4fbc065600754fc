"""The console: ``serve`` (the web app over the store) and ``users`` (its accounts and API tokens)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from lineage.cli._common import cli_actor
from lineage.cli.options import add_kafka_options, add_listen_options, add_store_options, location_for, settings_from
from lineage.errors import ConfigurationError

if TYPE_CHECKING:
    from lineage.console.accounts import Accounts
    from lineage.console.app import Console
    from lineage.console.audit import Audit
    from lineage.console.db import ConsoleDB

__all__ = ["DEFAULT_WORKERS", "MAX_WORKERS", "register"]

#: worker processes of `lineage serve` by default (docs/operations.md has the measurement behind it)
DEFAULT_WORKERS = 2
MAX_WORKERS = 64


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this group's sub-commands."""
    serve = sub.add_parser("serve", help="the privacy console: a web app over the store (sign-in, roles, audit)")
    add_listen_options(serve, 8000)
    serve.add_argument(
        "--workers",
        type=int,
        default=DEFAULT_WORKERS,
        help=f"processes answering requests, each with its own store connection (default {DEFAULT_WORKERS})",
    )
    serve.add_argument("--policy", action="append", help="a policy file or folder, for violations (repeatable)")
    serve.add_argument("--idle-timeout", type=float, default=15.0, help="minutes before an idle session ends (15)")
    serve.add_argument("--audit-topic", default="lineage.audit", help="Kafka topic of the audit trail's copy")
    serve.add_argument(
        "--no-audit-kafka", action="store_true", help="keep the audit trail in the console database only (no broker)"
    )
    serve.add_argument(
        "--forwarded-allow-ips",
        default="",
        help="the TLS proxies trusted for X-Forwarded-For/-Proto, comma-separated addresses (default: none)",
    )
    add_store_options(serve)
    add_kafka_options(serve)
    serve.set_defaults(func=cmd_serve)

    users = sub.add_parser("users", help="the console's accounts: add, list, token, revoke, disable, enable, reset")
    users_sub = users.add_subparsers(dest="users_command", required=True)
    add = users_sub.add_parser("add", help="add an account; prints a one-time password (or reads one from stdin)")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=["analyst", "responder", "auditor", "admin"])
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin's first line")
    listing = users_sub.add_parser("list", help="list accounts")
    token = users_sub.add_parser("token", help="make an API token for an account (printed once)")
    token.add_argument("name")
    revoke = users_sub.add_parser("revoke", help="revoke an account's tokens (all, or one by --token id)")
    revoke.add_argument("name")
    revoke.add_argument("--token", help="the token id (default: every token of the account)")
    disable = users_sub.add_parser(
        "disable", help="disable an account (ends its sessions, revokes its tokens; never the last enabled admin)"
    )
    disable.add_argument("name")
    enable = users_sub.add_parser("enable", help="enable a disabled account again (its old tokens stay revoked)")
    enable.add_argument("name")
    reset = users_sub.add_parser(
        "reset", help="a new one-time password for an account (ends its sessions; its API tokens are kept)"
    )
    reset.add_argument("name")
    for p in (add, listing, token, revoke, disable, enable, reset):
        add_store_options(p, reading=False)
        p.set_defaults(func=cmd_users)


def _db(args: argparse.Namespace) -> ConsoleDB:
    from lineage.console.db import console_db

    settings = settings_from(args)
    return console_db(settings, location_for(args, settings, Path(args.store) if args.store else None))


def cmd_users(args: argparse.Namespace) -> int:
    """Manage the console's accounts; each change (refused ones too) is recorded in the audit trail."""
    from lineage.console.accounts import AccountError, Accounts
    from lineage.console.audit import Audit

    db = _db(args)
    try:
        accounts = Accounts(db)
        if args.users_command == "list":
            for u in accounts.listing():
                state = "disabled" if u["disabled"] else "must change password" if u["must_change"] else "active"
                print(f"{u['name']}\t{u['role']}\t{state}\t{u['tokens']} token(s)")
            return 0
        action, detail = _USER_ACTIONS[args.users_command], args.name
        try:
            detail, outcome = _change_user(args, accounts)
        except AccountError as exc:
            _audit_cli(Audit(db), action, detail, f"refused: {exc}")
            raise
        _audit_cli(Audit(db), action, detail, outcome)
    finally:
        db.close()
    return 0


# the audit action of each changing sub-command
_USER_ACTIONS = {"add": "user.add", "token": "user.token", "revoke": "user.revoke", "disable": "user.disable",
                 "enable": "user.enable", "reset": "password.reset"}  # fmt: skip


def _change_user(args: argparse.Namespace, accounts: Accounts) -> tuple[str, str]:
    """Run one changing sub-command, printing what it did; (the audit detail, the outcome)."""
    if args.users_command == "add":
        given = sys.stdin.readline().rstrip("\r\n") if args.password_stdin else None
        password = accounts.add(args.name, args.role, given)
        if given is None:
            print(f"added {args.name} ({args.role}); one-time password (change it at first sign-in):")
            print(password)
        else:
            print(f"added {args.name} ({args.role})")
        return f"{args.name} as {args.role}", "ok"
    if args.users_command == "token":
        token_id, token = accounts.new_token(args.name)
        print(f"token {token_id} for {args.name} (shown once; send it as 'Authorization: Bearer <token>'):")
        print(token)
        return f"{args.name} token {token_id}", "ok"
    if args.users_command == "reset":
        password, ended = accounts.reset_password(args.name)
        print(f"reset {args.name}; {ended} session(s) ended, API tokens kept; one-time password:")
        print(password)
        return args.name, f"sessions ended={ended}"
    if args.users_command == "revoke":
        revoked = accounts.revoke(args.name, args.token)
        print(f"revoked {revoked} token(s) of {args.name}")
        return f"{args.name} token {args.token or 'all'}", f"revoked {revoked}"
    disabled = args.users_command == "disable"
    accounts.set_disabled(args.name, disabled)
    print(f"{'disabled' if disabled else 'enabled'} {args.name}")
    return args.name, "ok"


def _audit_cli(audit: Audit, action: str, detail: str, outcome: str) -> None:
    """One audit entry for a command-line change: the operating-system user, from the command line."""
    audit.record(cli_actor(), "cli", action, "command line", detail=detail, outcome=outcome)


class _ConsoleOf:
    """The console ``serve``'s options describe, built anew in each worker process (picklable: options only)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args

    def __call__(self) -> Console:
        from lineage.cli._common import policies_from, store_for, taxonomy_for
        from lineage.console.server import audit_sink, build_console, threads_per_worker

        args = self.args
        settings = settings_from(args)
        store = store_for(args, settings)
        store.snapshot = getattr(args, "snapshot", None)  # serve the newest snapshot on every answer, unless pinned
        store.threads = threads_per_worker(args.workers)
        taxonomy = taxonomy_for(settings)
        policies = policies_from(args.policy, taxonomy)
        db = _db(args)
        sink = None if args.no_audit_kafka else audit_sink(settings, args.audit_topic)
        return build_console(store, taxonomy, db, policies=policies, sink=sink, audit_topic=args.audit_topic,
                             idle_timeout_s=args.idle_timeout * 60,
                             topics=(settings.topic, settings.dead_letter_topic))  # fmt: skip


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the console until interrupted, from ``--workers`` processes."""
    from lineage.console.server import close_console, serve

    if not args.idle_timeout > 0:
        raise ConfigurationError("--idle-timeout", "must be a positive number of minutes")
    if not 1 <= args.workers <= MAX_WORKERS:
        raise ConfigurationError("--workers", f"must be 1 to {MAX_WORKERS}")
    build = _ConsoleOf(args)
    console = build()  # here first, so a bad store, database or policy is one line before any worker starts
    where = console.service.store.location.describe()
    if args.workers > 1:
        close_console(console)  # each worker builds its own: nothing of this one crosses a process
    print(f"lineage console on http://{args.host}:{args.port}/ over {where} ({args.workers} worker(s))", flush=True)
    serve(build if args.workers > 1 else lambda: console, args.host, args.port, args.forwarded_allow_ips, args.workers)
    return 0
