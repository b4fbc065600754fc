"""The HTTP gateway: ``gateway serve``, its service tokens (``gateway token``), and ``gateway schema``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lineage.cli.options import add_kafka_options, add_listen_options, count, count_or_zero, settings_from

__all__ = ["register"]

_TOKENS = "gateway-tokens.json"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this group's sub-commands."""
    gateway = sub.add_parser("gateway", help="the HTTP gateway: events as JSON over HTTP, for any language")
    gsub = gateway.add_subparsers(dest="gateway_command", required=True)

    serve = gsub.add_parser("serve", help="take events as JSON over HTTP and produce them to Kafka")
    add_listen_options(serve, 8100)
    serve.add_argument(
        "--rate", type=count_or_zero, default=50_000, help="events a second per token (default 50000; 0: no bound)"
    )
    serve.add_argument("--max-body", type=count, default=1024 * 1024, help="largest request body in bytes (1 MiB)")
    serve.add_argument("--openlineage", metavar="MAPPING", type=Path,
                       help="take OpenLineage run events at /api/v1/lineage, datasets mapped to holders by this TOML")
    _tokens_option(serve)
    add_kafka_options(serve)
    serve.set_defaults(func=cmd_serve)

    token = gsub.add_parser("token", help="service tokens: add, list, revoke")
    tsub = token.add_subparsers(dest="token_command", required=True)
    add = tsub.add_parser("add", help="make a token for a service, scoped to its systems (printed once)")
    add.add_argument("name", help="the service's name (a-z 0-9 . _ -)")
    add.add_argument("--system", action="append", required=True, help="a system it may emit as (repeatable)")
    listing = tsub.add_parser("list", help="list the tokens (never the tokens themselves)")
    revoke = tsub.add_parser("revoke", help="revoke a service's tokens (all, or one by --token id)")
    revoke.add_argument("name")
    revoke.add_argument("--token", help="the token id (default: every token of the service)")
    for p in (add, listing, revoke):
        _tokens_option(p)
        p.set_defaults(func=cmd_token)

    schema = gsub.add_parser("schema", help="print the event contract as JSON Schema (generated from schemas/)")
    schema.set_defaults(func=cmd_schema)


def _tokens_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tokens", default=_TOKENS, help=f"the token file, kept 0600 (default ./{_TOKENS})")


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the gateway until interrupted."""
    from lineage.gateway.server import build_gateway, serve

    settings = settings_from(args)
    gateway = build_gateway(
        settings, Path(args.tokens), rate=args.rate, max_body=args.max_body, openlineage=args.openlineage
    )
    print(f"lineage gateway on http://{args.host}:{args.port}/v1/events to {settings.topic} at "
          f"{settings.bootstrap_servers}", flush=True)  # fmt: skip
    serve(gateway, args.host, args.port)
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    """Add, list or revoke service tokens."""
    from lineage.gateway.tokens import ServiceTokens

    tokens = ServiceTokens(Path(args.tokens))
    if args.token_command == "add":
        token_id, token = tokens.add(args.name, args.system)
        print(f"token {token_id} for {args.name} as {', '.join(sorted(set(args.system)))} "
              "(shown once; send it as 'Authorization: Bearer <token>'):")  # fmt: skip
        print(token)
    elif args.token_command == "list":
        for t in tokens.listing():
            state = "revoked" if t["revoked_at"] is not None else "live"
            print(f"{t['id']}\t{t['name']}\t{','.join(t['systems'])}\t{state}")
    else:
        print(f"revoked {tokens.revoke(args.name, args.token)} token(s) of {args.name}")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    """Print the event contract as JSON Schema."""
    from lineage.codec.json_schema import json_schema

    json.dump(json_schema(), sys.stdout, indent=2)
    print()
    return 0
