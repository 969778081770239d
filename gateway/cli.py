"""`gateway serve | migrate | settings | org | policy | audit | retention | demo`: the
operator's commands.

A configuration mistake ends a command with one line on stderr naming the variable, and no
traceback: a bad setting, an unreadable or invalid policy, a keys folder or database file it
cannot use (exit status 2), or a database that cannot be reached at start (1).

The web stack, the relay and the stores are imported by the commands that use them, so `--help`,
`gateway settings` and a bad setting answer without loading them.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.domain.audit import WitnessedHead, parse_heads, parse_witness
from gateway.domain.errors import Refusal
from gateway.domain.policy import PolicyError
from gateway.settings import SettingError, Settings, settings_help, settings_markdown

if TYPE_CHECKING:
    from gateway.app import Runtime

CONFIGURATION = 2  # exit status: the configuration is wrong
CANNOT_START = 1  # exit status: a dependency could not be reached at start


class Misconfigured(Exception):
    """A setting names something the gateway cannot use; the message is the line to print."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gateway",
        description="Safeguarding gateway for live video sessions with children.",
        epilog=settings_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="run the gateway (HTTP API and join pages)",
        description="Run the gateway. It reads only the settings below.",
        epilog=settings_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8080, help="port to listen on")

    commands.add_parser("migrate", help="create or upgrade the database schema")
    commands.add_parser("settings", help="print every setting as the README's markdown table")

    org = commands.add_parser("org", help="organisations and their API keys")
    org_commands = org.add_subparsers(dest="org_command", required=True, metavar="ACTION")
    create = org_commands.add_parser("create", help="create an organisation; prints its API key")
    create.add_argument("name")
    create.add_argument("--policy", type=Path, help="the organisation's own policy file")
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
        metavar="HEADS",
        action="append",
        default=[],
        help=(
            "the head(s) printed by an earlier verify, as printed: SEQ:MAC for the first chain, "
            "CHAIN/SEQ:MAC for the others, space-separated (quote them); each must still be in "
            "its chain"
        ),
    )
    verify.add_argument(
        "--witness",
        metavar="FILE",
        type=Path,
        action="append",
        default=[],
        help="a witness file (GATEWAY_AUDIT_WITNESS): every head in it must be in the chain",
    )

    retention = commands.add_parser("retention", help="destroying recordings that are due")
    retention_commands = retention.add_subparsers(
        dest="retention_command", required=True, metavar="ACTION"
    )
    retention_commands.add_parser(
        "run",
        help="seal recordings left by a crash, destroy every recording due now (key, file,"
        " record); progress on stderr",
    )

    commands.add_parser("demo", help="create (or refresh) the demo organisation and invites")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "settings":
        print(settings_markdown(), end="")
        return 0
    try:
        settings = Settings.from_env()
    except SettingError as error:
        return _refuse(str(error), CONFIGURATION)
    if args.command == "policy":
        return _policy(args, settings)
    try:
        check_configuration(settings)
    except Misconfigured as error:
        return _refuse(str(error), CONFIGURATION)
    if args.command == "serve":
        return _serve(settings, args.host, args.port)
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
    if args.command == "retention":
        return asyncio.run(_with_runtime(settings, _retention_run))
    if args.command == "demo":
        from gateway.demo import create_demo

        return asyncio.run(_with_runtime(settings, lambda rt: create_demo(rt, settings)))
    return 2


def check_configuration(settings: Settings) -> None:
    """Try what the settings name before anything starts: the default policy, the keys folder
    and the SQLite file (made private here if new). Misconfigured names the variable."""
    from gateway.adapters.keys import KeyRing, KeyRingError
    from gateway.adapters.livekit_webhook_verifier import KeysFileError, load_keys
    from gateway.adapters.private_files import private_directory
    from gateway.adapters.sql.urls import prepare_sqlite_file, sqlite_file
    from gateway.services.policies import load_policy_file

    try:
        load_policy_file(settings.policy_path)
    except PolicyError as error:
        variable = Settings.variable("policy_path")
        raise Misconfigured(_policy_problem(settings.policy_path, error, f"{variable}: ")) from None
    try:
        KeyRing.load_or_create(settings.keys_dir)
    except KeyRingError as error:
        raise Misconfigured(f"{Settings.variable('keys_dir')}: {error}") from None
    except OSError as error:
        raise Misconfigured(
            f"{Settings.variable('keys_dir')}: cannot use {settings.keys_dir} as the keys "
            f"folder: {_os_problem(error)}"
        ) from None
    try:
        private_directory(settings.recordings_dir)
    except OSError as error:
        raise Misconfigured(
            f"{Settings.variable('recordings_dir')}: cannot use {settings.recordings_dir} as the"
            f" recordings folder: {_os_problem(error)}"
        ) from None
    try:  # lkhooks: LiveKit's webhook keys
        load_keys(settings.livekit_keys_file)
    except KeysFileError as error:
        raise Misconfigured(f"{Settings.variable('livekit_keys_file')}: {error}") from None
    try:
        prepare_sqlite_file(settings.database_url)
    except OSError as error:
        raise Misconfigured(
            f"{Settings.variable('database_url')}: cannot use the database file "
            f"{sqlite_file(settings.database_url)}: {_os_problem(error)}"
        ) from None


def _serve(settings: Settings, host: str, port: int) -> int:
    from aiohttp import web

    from gateway.app import build_app, configure_logging
    from gateway.http.connection_limits import serve

    configure_logging(settings.log_level)
    app = build_app(settings)
    stage = ["starting"]

    async def started(app: web.Application) -> None:
        stage[0] = "binding"  # runs after the runtime in app.cleanup_ctx was built

    def listening() -> None:
        stage[0] = "serving"
        # Everything built so far (modules, the runtime, compiled statements) lives as long as
        # the process: frozen out of the collector's reach, a full collection no longer walks
        # it (about 100 ms each, on the event loop, every few seconds under load).
        gc.collect()
        gc.freeze()
        print(f"Gateway listening on http://{host}:{port}/", flush=True)

    app.on_startup.append(started)
    try:
        serve(app, host, port, settings, on_listening=listening)
    except Exception as error:
        if stage[0] == "binding" and isinstance(error, OSError):
            return _refuse(f"cannot listen on {host}:{port}: {_os_problem(error)}", CANNOT_START)
        problem = _unreachable(error) if stage[0] == "starting" else None
        if problem is None:
            raise
        return _refuse(problem, CANNOT_START)
    return 0


async def _with_runtime(settings: Settings, work: Callable[[Runtime], Awaitable[int]]) -> int:
    from gateway.app import build_runtime

    try:
        runtime = await build_runtime(settings)
    except Exception as error:
        problem = _unreachable(error)
        if problem is None:
            raise
        return _refuse(problem, CANNOT_START)
    try:
        return await work(runtime)
    except Refusal as refusal:
        return _refuse(refusal.message, 1)
    finally:
        await runtime.close()


def _unreachable(error: BaseException) -> str | None:
    """One line for a database that cannot be reached or opened at start; None for anything
    else (a failing statement is a bug: its traceback is kept)."""
    from sqlalchemy.exc import DBAPIError

    if isinstance(error, DBAPIError) and error.statement is None:  # raised on connecting
        cause: BaseException = error.orig if isinstance(error.orig, BaseException) else error
    elif isinstance(error, OSError):
        cause = error
    else:
        return None
    while cause.__cause__ is not None:  # the driver's own error, under SQLAlchemy's adapters
        cause = cause.__cause__
    detail = _os_problem(cause) if isinstance(cause, OSError) else str(cause)
    first_line = detail.strip().splitlines()[0] if detail.strip() else type(cause).__name__
    return (
        f"{Settings.variable('database_url')}: cannot open the database: "
        f"{type(cause).__name__}: {first_line[:300]}"
    )


def _os_problem(error: OSError) -> str:
    return error.strerror or str(error) or type(error).__name__


def _policy_problem(path: Path, error: PolicyError, prefix: str = "") -> str:
    reason = " ".join(error.reason.split())  # one line
    if error.key == "(file)":
        return f"{prefix}{reason}"
    return f"{prefix}{path}: invalid policy: {error.key}: {reason}"


def _refuse(message: str, status: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    return status


async def _migrated(runtime: Runtime) -> int:
    print("Database is at the newest schema.")
    return 0


def _policy(args: argparse.Namespace, settings: Settings) -> int:
    from gateway.domain.policy_text import render_policy
    from gateway.services.policies import load_policy_file

    path: Path = args.file or settings.policy_path
    try:
        policy = load_policy_file(path)
    except PolicyError as exc:
        print(_policy_problem(path, exc), file=sys.stderr)
        return 1
    if args.policy_command == "check":
        print(f"{path}: valid (version {policy.label})")
    else:
        print(render_policy(policy), end="")
    return 0


async def _org(runtime: Runtime, args: argparse.Namespace) -> int:
    organisations = runtime.services.organisations
    if args.org_command == "create":
        # Stored absolute, so the organisation's policy is found whichever directory the
        # gateway is started from.
        policy = str(args.policy.absolute()) if args.policy else None
        org, key = await organisations.create(args.name, policy)
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
            heads.extend(parse_heads(text))  # every chain's, as verify prints them
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


# How long `gateway retention run` waits for a run in progress in another process (the
# periodic job's round) before it gives up, saying so.
RETENTION_WAIT_SECONDS = 120.0


def progress_bar(done: int, total: int, width: int = 30) -> str:
    """`[#######.......] done/total` for a terminal line."""
    filled = width if total <= 0 else min(width, done * width // total)
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total}"


async def _retention_run(runtime: Runtime) -> int:
    """The periodic job's round, by hand: one run at a time across processes (the run lease),
    so it waits for a round in progress elsewhere, then finishes whatever that left."""
    from gateway.adapters.leader import exclusively
    from gateway.adapters.live_memory import LiveStateUnavailable
    from gateway.services.retention import RUN_LEASE, RUN_LEASE_SECONDS

    recordings, retention = runtime.recordings, runtime.retention
    assert recordings is not None and retention is not None
    done: list[int] = [0, 0]

    def show(count: int, total: int) -> None:
        print(f"\rdestroying recordings {progress_bar(count, total)}", end="", file=sys.stderr)
        sys.stderr.flush()

    async def run() -> None:
        done[0] = len(await recordings.recover())
        done[1] = await retention.run_once(show, actor="cli:retention")
        print(file=sys.stderr)

    def waiting() -> None:
        print(
            "gateway retention run: another retention run is in progress in another process;"
            f" waiting for it to finish (at most {RETENTION_WAIT_SECONDS:.0f} s)",
            file=sys.stderr,
            flush=True,
        )

    try:
        ran, _ = await exclusively(
            runtime.leader,
            RUN_LEASE,
            RUN_LEASE_SECONDS,
            run,
            wait_seconds=RETENTION_WAIT_SECONDS,
            waiting=waiting,
        )
    except LiveStateUnavailable:
        return _refuse(
            f"gateway retention run: the live state ({Settings.variable('redis_url')}) cannot be"
            " reached, so no run in another process can be ruled out; nothing was done here",
            CANNOT_START,
        )
    if not ran:
        return _refuse(
            "gateway retention run: another retention run is still in progress in another"
            " process; nothing was done here; try again later",
            1,
        )
    print(f"sealed {done[0]} recording(s) left by a crash; destroyed {done[1]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
