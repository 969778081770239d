"""The composition root: settings -> adapters -> services -> routes. Nothing else wires."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest

from gateway.adapters.alerts_memory import InProcessAlerts
from gateway.adapters.alerts_redis import RedisAlerts
from gateway.adapters.invite_tokens import InviteTokens, MediaCredentials
from gateway.adapters.keys import KeyRing
from gateway.adapters.leader import (
    InProcessLeaderLock,
    LeaderLock,
    RedisLeaderLock,
    run_periodically,
)
from gateway.adapters.live_memory import InProcessLiveState, LiveStateUnavailable
from gateway.adapters.live_redis import RedisClient, RedisLiveState, close_client, redis_client
from gateway.adapters.passwords import PasswordHasher
from gateway.adapters.platform_relay import RelayPlatform
from gateway.adapters.rate_limit import InProcessAttemptLimiter
from gateway.adapters.rate_limit_redis import RedisAttemptLimiter
from gateway.adapters.sql.engine import Database
from gateway.adapters.sql.incidents import SqlIncidentStore
from gateway.adapters.sql.migrate import migrate
from gateway.adapters.sql.store import SqlStore
from gateway.clock import Clock, SystemClock
from gateway.http.incidents_api import INCIDENTS, IncidentConcernReporter
from gateway.http.keys import METRICS, PUBLIC_PATHS, SERVICES, SETTINGS
from gateway.http.live_api import LIVE, REPORT_CONCERN
from gateway.http.middleware import authentication, metrics_middleware, refusals
from gateway.http.openapi import openapi_document
from gateway.http.pages import PAGE_ROUTES
from gateway.http.routes import ALL_ROUTES
from gateway.http.routes import PUBLIC_PATHS as PUBLIC_ROUTE_PATHS
from gateway.media.grants import IceServerConfig
from gateway.services.admission import AdmissionService
from gateway.services.bundle import Services
from gateway.services.consent import ConsentService
from gateway.services.incidents import IncidentService
from gateway.services.live import LiveSessionService
from gateway.services.organisations import OrganisationService
from gateway.services.policies import PolicyBook, load_policy_file
from gateway.services.ports import AttemptLimiter, LiveState
from gateway.services.registry import RegistryService
from gateway.services.sessions import SessionService
from gateway.settings import Settings


@dataclass
class Runtime:
    """Everything with a lifetime, so it can be closed in one place."""

    services: Services
    store: SqlStore
    keyring: KeyRing
    hasher: PasswordHasher
    alerts: InProcessAlerts | RedisAlerts
    platform: RelayPlatform
    live: LiveSessionService
    incidents: IncidentService
    leader: LeaderLock
    redis: RedisClient | None = None

    async def close(self) -> None:
        await self.platform.close()
        await self.alerts.stop()
        await self.store.stop()
        self.hasher.close()
        if self.redis is not None:
            await close_client(self.redis)


async def build_runtime(
    settings: Settings, clock: Clock | None = None, *, hasher: PasswordHasher | None = None
) -> Runtime:
    clock = clock or SystemClock()
    policies = PolicyBook(load_policy_file(settings.policy_path))
    keyring = KeyRing.load_or_create(settings.keys_dir)
    database = Database(settings.database_url)
    await migrate(database.writer_engine)
    store = SqlStore(database, keyring.audit_key(), clock)
    await store.start()
    hasher = hasher or PasswordHasher()
    tokens = InviteTokens(keyring, settings.issuer)
    registry = RegistryService(store, policies, clock)
    live_state: LiveState
    alerts: InProcessAlerts | RedisAlerts
    limiter: AttemptLimiter
    leader: LeaderLock
    redis = None
    # Owner of the presences this process enters; its heartbeat tells the others it is alive.
    process_id = secrets.token_hex(8)
    if settings.redis_url:
        # Shared live state: several gateway processes see the same sessions (rebuildable).
        redis = redis_client(settings.redis_url)
        live_state = RedisLiveState(redis, process_id=process_id)
        alerts = RedisAlerts(redis, clock)
        limiter = RedisAttemptLimiter(redis)
        leader = RedisLeaderLock(redis, token=process_id)
    else:
        live_state = InProcessLiveState(process_id=process_id)
        alerts = InProcessAlerts(clock)
        limiter = InProcessAttemptLimiter()
        leader = InProcessLeaderLock()
    await alerts.start()
    admission = AdmissionService(
        store,
        live_state,
        policies,
        tokens,
        hasher,
        limiter,
        alerts,
        clock,
    )
    platform = RelayPlatform(
        ice_servers=_ice_servers(settings.ice_servers_json),
        disconnect_timeout=settings.media_disconnect_seconds,
    )
    live = LiveSessionService(
        store,
        live_state,
        platform,
        MediaCredentials(keyring, settings.issuer),
        admission,
        alerts,
        clock,
        process_url=settings.process_url,
        lease_seconds=max(3 * settings.reconcile_seconds, LEASE_FLOOR_SECONDS),
    )
    services = Services(
        clock=clock,
        policies=policies,
        store=store,
        organisations=OrganisationService(store, policies),
        registry=registry,
        consent=ConsentService(
            store, registry, policies, clock, changed=live.durable_facts_changed
        ),
        sessions=SessionService(
            store, registry, policies, clock, hasher, tokens, changed=live.durable_facts_changed
        ),
        admission=admission,
    )
    incidents = IncidentService(SqlIncidentStore(store.writer, database), store, alerts, clock)
    live.record_incident = incidents.record_system_incident
    return Runtime(
        services, store, keyring, hasher, alerts, platform, live, incidents, leader, redis
    )


def _ice_servers(raw: str) -> list[IceServerConfig]:
    entries = json.loads(raw)
    return [
        IceServerConfig(
            urls=[e["urls"]] if isinstance(e["urls"], str) else list(e["urls"]),
            username=e.get("username"),
            credential=e.get("credential"),
        )
        for e in entries
    ]


async def _openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


async def _metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS])
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4"})


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


class LiveLoops(Protocol):
    """What the periodic live jobs call (`LiveSessionService`)."""

    async def reconcile(self) -> None: ...
    async def heartbeat(self, ttl_seconds: float) -> None: ...
    async def sweep(self) -> None: ...


STOP_SECONDS = 5.0
# A session's lease lasts three reconciliation rounds, and never less than this: a join takes
# the lease before its (slow, password-hashing) admission and the session is renewed only once
# seated, so a lease shorter than a slow join would lapse under it.
LEASE_FLOOR_SECONDS = 5.0


@dataclass
class LiveJobs:
    """The periodic live jobs of one process, stopped together by `close`."""

    stop: asyncio.Event
    tasks: tuple[asyncio.Task[None], ...]

    async def close(self) -> None:
        """Let each job finish its round and release its lease; cancel what outlasts
        `STOP_SECONDS`."""
        self.stop.set()
        _, pending = await asyncio.wait(self.tasks, timeout=STOP_SECONDS)
        for task in pending:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


def start_live_jobs(live: LiveLoops, leader: LeaderLock, settings: Settings) -> LiveJobs:
    """Per process: reconciliation (supervision's safety net: lost events and elapsed grace
    periods are caught there; each process owns the relay rooms of whoever connected to it)
    and the heartbeat. Global, one process at a time under the leader lease: the sweep of
    presences left by processes that died (`LiveSessionService.sweep`)."""
    stop = asyncio.Event()
    own = InProcessLeaderLock()  # a process's own jobs: always its to run
    ttl = settings.live_heartbeat_seconds

    async def heartbeat() -> None:
        await live.heartbeat(ttl)

    tasks = (
        asyncio.create_task(
            run_periodically(
                own, "live.reconcile", settings.reconcile_seconds, live.reconcile, stop
            )
        ),
        asyncio.create_task(run_periodically(own, "live.heartbeat", ttl / 3, heartbeat, stop)),
        asyncio.create_task(
            run_periodically(leader, "live.sweep", settings.live_sweep_seconds, live.sweep, stop)
        ),
    )
    return LiveJobs(stop, tasks)


def build_app(settings: Settings, clock: Clock | None = None) -> web.Application:
    registry = CollectorRegistry()
    app = web.Application(
        middlewares=[metrics_middleware(registry), refusals, authentication],
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS] = settings
    app[METRICS] = registry

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        runtime = await build_runtime(settings, clock)
        app[SERVICES] = runtime.services
        app[LIVE] = runtime.live
        app[INCIDENTS] = runtime.incidents
        app[REPORT_CONCERN] = IncidentConcernReporter(runtime.services.admission, runtime.incidents)
        try:  # alive before the first join, so no sweep can take this process for dead
            await runtime.live.heartbeat(settings.live_heartbeat_seconds)
        except LiveStateUnavailable:
            logging.getLogger(__name__).warning("live state unavailable at start")
        jobs = start_live_jobs(runtime.live, runtime.leader, settings)
        nudges = asyncio.create_task(runtime.live.follow_nudges(), name="live-nudges")
        yield
        nudges.cancel()
        await asyncio.gather(nudges, return_exceptions=True)
        await jobs.close()
        await runtime.close()

    app.cleanup_ctx.append(lifetime)
    app[PUBLIC_PATHS] = PUBLIC_ROUTE_PATHS
    for route in ALL_ROUTES:
        app.router.add_route(route.method, route.path, route.handler)
    for method, path, handler in PAGE_ROUTES:
        app.router.add_route(method, path, handler)
    app.router.add_get("/v1/openapi.json", _openapi)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/healthz", _health)
    return app


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line. Only fields we put in `extra` appear: no bodies, no tokens."""

    SAFE = ("method", "route", "status", "code")

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "at": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in self.SAFE:
            if key in record.__dict__:
                entry[key] = record.__dict__[key]
        if record.exc_info:
            entry["error"] = repr(record.exc_info[1].__class__.__name__)
        return json.dumps(entry)


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLogFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiohttp's access log prints raw paths and headers; ours logs route templates instead.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
