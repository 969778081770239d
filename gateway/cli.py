"""`gateway serve | migrate | org | policy | audit | demo`: the operator's commands."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web

from gateway.app import Runtime, build_app, build_runtime, configure_logging
from gateway.domain.audit import WitnessedHead, parse_head, parse_witness
from gateway.domain.policy import PolicyError
from gateway.domain.policy_text import render_policy
from gateway.services.policies import load_policy_file
from gateway.settings import Settings

ENVIRONMENT_HELP = """environment:
  GATEWAY_DATABASE_URL  database (default sqlite+aiosqlite:///var/gateway.db)
  GATEWAY_REDIS_URL     Redis for live state (default: unset, in-process)
  GATEWAY_POLICY        default policy file (default policies/default.toml)
  GATEWAY_KEYS_DIR      signing and audit keys (default var/keys)
  GATEWAY_PUBLIC_URL    base of invite links (default http://127.0.0.1:8080)
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gateway",
        description="Safeguarding gateway for live video sessions with children.",
        epilog=ENVIRONMENT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the gateway (HTTP API and join pages)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8080, help="port to listen on")

    commands.add_parser("migrate", help="create or upgrade the database schema")

    org = commands.add_parser("org", help="organisations and their API keys")
    org_commands = org.add_subparsers(dest="org_command", required=True, metavar="ACTION")
    create = org_commands.add_parser("create", help="create an organisation; prints its API key")
    create.add_argument("name")
    create.add_argument("--policy", help="the organisation's own policy file")
    rotate = org_commands.add_parser("rotate-key", help="issue a new API key, revoke the old")
    rotate.add_argument("org_id")
    revoke = org_commands.add_parser("revoke-keys", help="revoke every API key")
    revoke.add_argument("org_id")
    org_commands.add_parser("list", help="list organisations")

    policy = commands.add_parser("policy", help="the written policy")
    policy_commands = policy.add_subparsers(dest="policy_command", required=True, metavar="ACTION")
    check = policy_commands.add_parser("check", help="validate a policy file")
    check.add_argument("file", type=Path)
    show = policy_commands.add_parser("show", help="the policy in plain English")
    show.add_argument("file", type=Path, nargs="?", help="default: GATEWAY_POLICY")

    audit = commands.add_parser("audit", help="the tamper-evident audit log")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    verify = audit_commands.add_parser(
        "verify", help="check the whole chain; name the first bad entry; print the head"
    )
    verify.add_argument(
        "--expect-head",
        metavar="SEQ:MAC",
        action="append",
        default=[],
        help="a head printed by an earlier verify: it must still be in the chain",
    )
    verify.add_argument(
        "--witness",
        metavar="FILE",
        type=Path,
        action="append",
        default=[],
        help="a witness file (GATEWAY_AUDIT_WITNESS): every head in it must be in the chain",
    )

    commands.add_parser("demo", help="create (or refresh) the demo organisation and invites")
    return parser


async def _with_runtime(settings: Settings, work: object) -> int:
    runtime = await build_runtime(settings)
    try:
        assert callable(work)
        result: int = await work(runtime)
        return result
    finally:
        await runtime.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = Settings.from_env()
    if args.command == "policy":
        return _policy(args, settings)
    if args.command == "serve":
        configure_logging(settings.log_level)
        print(f"Gateway listening on http://{args.host}:{args.port}/", flush=True)
        web.run_app(
            build_app(settings), host=args.host, port=args.port, print=None, shutdown_timeout=5
        )
        return 0
    if args.command == "migrate":
        return asyncio.run(_with_runtime(settings, _migrated))
    if args.command == "org":
        return asyncio.run(_with_runtime(settings, lambda rt: _org(rt, args)))
    if args.command == "audit":
        try:
            witnessed = _witnessed_heads(args)
        except ValueError as error:
            print(f"gateway audit verify: {error}", file=sys.stderr)
            return 2
        return asyncio.run(_with_runtime(settings, lambda rt: _verify(rt, witnessed)))
    if args.command == "demo":
        from gateway.demo import create_demo

        return asyncio.run(_with_runtime(settings, lambda rt: create_demo(rt, settings)))
    return 2


async def _migrated(runtime: Runtime) -> int:
    print("Database is at the newest schema.")
    return 0


def _policy(args: argparse.Namespace, settings: Settings) -> int:
    path: Path = args.file or settings.policy_path
    try:
        policy = load_policy_file(path)
    except PolicyError as exc:
        print(f"{path}: invalid policy: {exc.key}: {exc.reason}", file=sys.stderr)
        return 1
    if args.policy_command == "check":
        print(f"{path}: valid (version {policy.label})")
    else:
        print(render_policy(policy), end="")
    return 0


async def _org(runtime: Runtime, args: argparse.Namespace) -> int:
    organisations = runtime.services.organisations
    if args.org_command == "create":
        org, key = await organisations.create(args.name, args.policy)
        print(f"organisation: {org.id}\napi key (shown once, keep it safe): {key}")
    elif args.org_command == "rotate-key":
        key = await organisations.rotate_key(args.org_id)
        print(f"new api key (shown once; older keys are revoked): {key}")
    elif args.org_command == "revoke-keys":
        count = await organisations.revoke_keys(args.org_id)
        print(f"revoked {count} key(s)")
    else:
        for org in await runtime.services.store.organisations():
            print(f"{org.id}  {org.name}  policy={org.policy_path or 'default'}")
    return 0


def _witnessed_heads(args: argparse.Namespace) -> list[WitnessedHead]:
    """--expect-head values and the heads of --witness files; ValueError names the bad one."""
    heads = []
    for text in args.expect_head:
        try:
            heads.append(parse_head(text))
        except ValueError as error:
            raise ValueError(f"--expect-head {text!r}: {error}") from None
    for path in args.witness:
        try:
            with path.open(encoding="utf-8", errors="replace") as lines:
                heads.extend(parse_witness(lines))
        except OSError as error:
            raise ValueError(f"--witness {path}: {error.strerror or error}") from None
        except ValueError as error:
            raise ValueError(f"--witness {path}: {error}") from None
    return heads


async def _verify(runtime: Runtime, witnessed: Sequence[WitnessedHead]) -> int:
    report = await runtime.services.store.verify_audit(witnessed)
    if report.intact:
        checked = f"; {len(witnessed)} recorded head(s) still in the chain" if witnessed else ""
        print(
            f"audit log intact: {report.checked} entries{checked}; head {report.head} "
            "(keep this head elsewhere; --expect-head it later to detect a cut)"
        )
        return 0
    assert report.problem is not None
    print(f"audit log TAMPERED: {report.problem.describe()} ({report.checked} checked before it)")
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
