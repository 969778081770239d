"""The composition root: settings -> adapters -> services -> routes. Nothing else wires."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import secrets
import signal
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol, cast
from urllib.parse import urlsplit

import aiohttp
import redis.exceptions
import sqlalchemy.exc
from aiohttp import web, web_response
from prometheus_client import CollectorRegistry, generate_latest

from gateway.adapters.alerts_memory import InProcessAlerts
from gateway.adapters.alerts_redis import RedisAlerts
from gateway.adapters.audit_witness import WITNESS_SECONDS, AuditWitnessJob, witnesses_for
from gateway.adapters.consent_link_mail import ConsentLinkMail
from gateway.adapters.invite_tokens import InviteTokens, MediaCredentials
from gateway.adapters.keys import KeyRing
from gateway.adapters.leader import (
    InProcessLeaderLock,
    LeaderLock,
    RedisLeaderLock,
    exclusively,
    run_periodically,
)
from gateway.adapters.live_memory import InProcessLiveState, LiveStateUnavailable
from gateway.adapters.live_redis import RedisClient, RedisLiveState, close_client, redis_client
from gateway.adapters.livekit_webhook_verifier import (
    LiveKitKey,
    LiveKitKeys,
    WebhookVerifier,
    load_keys,
)
from gateway.adapters.passwords import PasswordHasher
from gateway.adapters.platform_livekit import LiveKitPlatform
from gateway.adapters.platform_relay import RelayPlatform
from gateway.adapters.platforms import PlatformsByOrganisation, RecordersByRoom
from gateway.adapters.rate_limit import InProcessAttemptLimiter
from gateway.adapters.rate_limit_redis import RedisAttemptLimiter
from gateway.adapters.recorder_livekit import EgressUploads, LiveKitRecorder
from gateway.adapters.recording_vault import (
    LocalRecordingStorage,
    RecordingVault,
    RecordingVaultUnavailable,
    load_master_key,
)
from gateway.adapters.signin_mail import SmtpSecurity, SmtpSignInMail, SmtpTarget
from gateway.adapters.smtp_channel import SmtpChannel
from gateway.adapters.sql.attempts import SqlFailureLedger
from gateway.adapters.sql.consent_links import SqlConsentLinks
from gateway.adapters.sql.engine import PROBE_SECONDS, Database
from gateway.adapters.sql.incidents import SqlIncidentStore
from gateway.adapters.sql.livekit_webhooks import SqlWebhookLedger, session_named_by_room
from gateway.adapters.sql.migrate import migrate
from gateway.adapters.sql.outbox import SqlOutbox
from gateway.adapters.sql.playbacks import SqlPlaybacks
from gateway.adapters.sql.processes import ProcessRegistry
from gateway.adapters.sql.recording_runs import SqlRecordingRuns
from gateway.adapters.sql.recordings import SqlRecordingCatalogue
from gateway.adapters.sql.staff_sessions import SqlStaffSessions
from gateway.adapters.sql.store import SqlStore
from gateway.adapters.webhook_channel import WebhookSender
from gateway.clock import Clock, SystemClock
from gateway.domain.errors import ErrorCode, Refusal, Unavailable
from gateway.domain.media_load import LoadLimits
from gateway.domain.processes import GatewayProcess, LiveStateKind
from gateway.domain.registration_lease import RegistrationLease
from gateway.domain.staff_session import SessionTimeouts
from gateway.http.connection_limits import body_deadline
from gateway.http.consent_pages import CONSENT_PAGE_ROUTES, CONSENT_PAGES, ConsentPages
from gateway.http.desk_pages import DESK, DESK_ROUTES
from gateway.http.egress_uploads_api import EGRESS_UPLOAD_ROUTES, EGRESS_UPLOADS
from gateway.http.incidents_api import INCIDENTS, IncidentConcernReporter
from gateway.http.keys import (
    ATTEMPTS,
    DEPENDENCY_ERRORS,
    METRICS,
    PUBLIC_PATHS,
    SERVICES,
    SETTINGS,
    DependencyErrors,
)
from gateway.http.live_api import LIVE, REPORT_CONCERN
from gateway.http.livekit_webhooks_api import LIVEKIT_WEBHOOKS, WEBHOOK_ROUTES
from gateway.http.middleware import (
    SERVER,
    authentication,
    bearer_matches,
    refusals,
    request_context,
    response_headers,
)
from gateway.http.notifications_api import NOTIFICATIONS
from gateway.http.openapi import openapi_document
from gateway.http.pages import MEDIA_ORIGINS, PAGE_ROUTES
from gateway.http.recording_pages import RECORDING_ROUTES, RECORDINGS, REVIEW
from gateway.http.routes import ALL_ROUTES
from gateway.http.routes import PUBLIC_PATHS as PUBLIC_ROUTE_PATHS
from gateway.http.staff_pages import STAFF_PAGE_ROUTES, STAFF_PAGES, StaffPages
from gateway.http.vendor import vendor_routes
from gateway.media.grants import IceServerConfig
from gateway.media.seekable import SEEKABLE_UP_TO, seekable_webm
from gateway.services.admission import AdmissionService
from gateway.services.attempts import AttemptGuard
from gateway.services.bundle import Services
from gateway.services.consent import ConsentService
from gateway.services.consent_links import OnlineConsentService
from gateway.services.desk import DeskService
from gateway.services.incidents import IncidentService
from gateway.services.live import LiveSessionService
from gateway.services.livekit_webhooks import LiveKitWebhooks
from gateway.services.notifications import Notifications
from gateway.services.organisations import OrganisationService
from gateway.services.policies import PolicyBook, load_policy_file
from gateway.services.ports import AttemptLimiter, LiveState
from gateway.services.recordings import RecordingsService
from gateway.services.registry import RegistryService
from gateway.services.request_audit import RequestAudit
from gateway.services.retention import RUN_LEASE as RETENTION_RUN_LEASE
from gateway.services.retention import RUN_LEASE_SECONDS as RETENTION_RUN_LEASE_SECONDS
from gateway.services.retention import RetentionService
from gateway.services.review import ReviewService
from gateway.services.sessions import SessionService
from gateway.services.staff_auth import SignInMail, StaffAuthService
from gateway.settings import SettingError, Settings


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
    attempts: AttemptGuard
    notifications: Notifications
    webhook_http: aiohttp.ClientSession
    redis: RedisClient | None = None
    database: Database | None = None
    live_state: LiveState | None = None
    process_id: str = ""
    staff_auth: StaffAuthService | None = None
    form_key: bytes = b""
    recordings: RecordingsService | None = None
    retention: RetentionService | None = None
    online_consent: OnlineConsentService | None = None
    livekit_webhooks: LiveKitWebhooks | None = None
    livekit: LiveKitPlatform | None = None
    registration_lease: RegistrationLease | None = None
    livekit_recorder: LiveKitRecorder | None = None
    egress_uploads: EgressUploads | None = None

    async def close(self) -> None:
        try:  # every live recording sealed before the relay goes
            await self.live.recording.close()
        except Exception:
            logging.getLogger(__name__).exception("live recordings not all sealed at shutdown")
        await self.webhook_http.close()
        await self.platform.close()
        if self.livekit_recorder is not None:
            await self.livekit_recorder.close()
        if self.livekit is not None:
            await self.livekit.close()
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
    database = Database(settings.database_url, timeout_seconds=settings.sql_timeout_seconds)
    await migrate(database.writer_engine)
    store = SqlStore(database, keyring.audit_key(), clock)
    await store.start()
    hasher = hasher or PasswordHasher()
    tokens = InviteTokens(keyring, settings.issuer)
    registry = RegistryService(store, policies, clock)
    live_state: LiveState
    alerts: InProcessAlerts | RedisAlerts
    leader: LeaderLock
    redis = None
    # Owner of the presences this process enters; its heartbeat tells the others it is alive.
    process_id = secrets.token_hex(8)
    if settings.redis_url:
        # Shared live state: several gateway processes see the same sessions (rebuildable).
        redis = redis_client(settings.redis_url, timeout_seconds=settings.redis_timeout_seconds)
        live_state = RedisLiveState(redis, process_id=process_id)
        alerts = RedisAlerts(redis, clock)
        leader = RedisLeaderLock(redis, token=process_id)
        limiter: AttemptLimiter = RedisAttemptLimiter(redis)
    else:
        live_state = InProcessLiveState(process_id=process_id)
        alerts = InProcessAlerts(clock)
        leader = InProcessLeaderLock()
        limiter = InProcessAttemptLimiter()
    await alerts.start()
    # Notifications (DESIGN §3): the outbox's worker delivers through the organisations' own
    # channels; links in messages point at this gateway. Built first:
    # what must be told (concerns, breaches, locked invites) is queued with its event.
    webhook_http = aiohttp.ClientSession()
    # Guardians' consent links: the token is an HMAC under this key (derived, not shared),
    # written into the e-mail only when it is sent, so neither the links table nor the outbox
    # holds one.
    consent_link_key = hmac.new(
        keyring.audit_key(), b"guardian consent links", hashlib.sha256
    ).digest()
    notifications = Notifications(
        SqlOutbox(store.writer, database, keyring.audit_key()),
        store,
        policies,
        ConsentLinkMail(SmtpChannel(), consent_link_key, settings.public_url),
        WebhookSender(webhook_http),
        clock,
        link_base=settings.public_url,
    )
    # Failure tallies in SQL (durable, shared); flood counts per process (services/attempts.py).
    attempts = AttemptGuard(
        SqlFailureLedger(store.writer, database),
        InProcessAttemptLimiter(),
        hasher,
        alerts,
        store,
        clock,
        notifications=notifications,
    )
    admission = AdmissionService(
        store,
        live_state,
        policies,
        tokens,
        hasher,
        attempts,
        alerts,
        clock,
    )
    platform = RelayPlatform(
        ice_servers=_ice_servers(settings.ice_servers_json),
        disconnect_timeout=settings.media_disconnect_seconds,
        socket_buffer_bytes=settings.media_socket_buffer_bytes,
        max_video_kbps=settings.media_max_video_kbps,
        load_limits=LoadLimits(
            max_loop_lag=settings.media_max_loop_lag_seconds,
            max_udp_drops_per_second=settings.media_max_udp_drops,
            max_streams=settings.media_max_streams,
        ),
    )
    # LiveKit checks its tokens against its own clock: they are minted on the wall clock.
    livekit = _livekit(settings, SystemClock())
    platforms = (
        None
        if livekit is None
        else PlatformsByOrganisation(
            platform,
            livekit,
            frozenset(settings.livekit_organisations),
            store.organisation_of_session,
        )
    )
    # Recording on LiveKit (issue 10): a participant egress per recorded person, its file
    # uploaded to this very process (EGRESS_UPLOAD_ROUTES) and encrypted as it arrives.
    egress_uploads = EgressUploads()
    livekit_recorder = (
        None
        if livekit is None
        else LiveKitRecorder(
            livekit,
            egress_uploads,
            upload_url=settings.livekit_egress_upload_url
            or settings.process_url
            or settings.public_url,
            poll_seconds=settings.livekit_egress_poll_seconds,
            finish_seconds=settings.livekit_egress_finish_seconds,
            timeout_seconds=settings.livekit_timeout_seconds,
        )
    )
    live = LiveSessionService(
        store,
        live_state,
        platform if platforms is None else platforms,
        MediaCredentials(keyring, settings.issuer),
        admission,
        alerts,
        clock,
        process_url=settings.process_url or settings.public_url,
        lease_seconds=max(3 * settings.reconcile_seconds, LEASE_FLOOR_SECONDS),
    )
    # Recordings at rest (issue 9): without a master key nothing can be recorded (one clear
    # error, here and on each attempt); the catalogue, holds and destruction still run.
    recording_storage = LocalRecordingStorage(settings.recordings_dir)
    recording_catalogue = SqlRecordingCatalogue(store.writer, database)
    try:
        master_key: bytes | None = load_master_key(settings.recording_master_key_file)
        master_key_problem = None
    except RecordingVaultUnavailable as exc:
        master_key, master_key_problem = None, str(exc)
        # Unset is the default (recording is off until a key is given): said once, not as an
        # error. A key file that was named but cannot be used is an operator's mistake: an error.
        configured = settings.recording_master_key_file is not None
        logging.getLogger(__name__).log(logging.ERROR if configured else logging.INFO, "%s", exc)
    recording_files = RecordingVault(recording_storage)
    # This process's registration in `gateway_processes`, as its recordings see it: renewed by
    # the serving loop (`_keep_registered`); a writer stops before it can lapse.
    registration_lease = RegistrationLease(settings.live_heartbeat_seconds)
    recordings = RecordingsService(
        recording_catalogue,
        recording_files,
        policies,
        clock,
        master_key=master_key,
        master_key_problem=master_key_problem,
        process_id=process_id,
        people=store,
        organisations=store,
        may_write=lambda: registration_lease.may_write(time.monotonic()),
        writer_grace_seconds=settings.live_heartbeat_seconds,
    )
    retention = RetentionService(
        recording_catalogue, recording_files, clock, link_base=settings.public_url
    )
    # Recording live sessions (issue 9): runs and day answers in SQL, the catalogue and keys
    # above, the recorder over the relay.
    live.recording.runs = SqlRecordingRuns(store.writer, database)
    live.recording.recordings = recordings
    live.recording.recorder = (
        platform.recorder
        if platforms is None
        else RecordersByRoom(platforms, platform.recorder, livekit_recorder)
    )
    consent = ConsentService(
        store,
        registry,
        policies,
        clock,
        changed=live.durable_facts_changed,
        recording_consent_withdrawn=retention.consent_withdrawn,
    )
    online_consent = OnlineConsentService(
        store,
        SqlConsentLinks(store.writer, database),
        consent,
        policies,
        clock,
        link_key=consent_link_key,
        form_key=hmac.new(keyring.audit_key(), b"guardian consent forms", hashlib.sha256).digest(),
        link_lifetime=timedelta(seconds=settings.consent_link_seconds),
        limiter=limiter,
        channels=notifications,
    )
    services = Services(
        clock=clock,
        policies=policies,
        store=store,
        organisations=OrganisationService(store, policies),
        registry=registry,
        consent=consent,
        sessions=SessionService(
            store, registry, policies, clock, hasher, tokens, changed=live.durable_facts_changed
        ),
        admission=admission,
        audit=RequestAudit(store, clock),
    )
    incidents = IncidentService(
        SqlIncidentStore(store.writer, database),
        store,
        alerts,
        notifications,
        policies,
        clock,
        hold_recordings=recordings.hold_session,
    )
    live.record_incident = incidents.record_system_incident
    staff_auth = StaffAuthService(
        SqlStaffSessions(store.writer, database),
        store,
        hasher,
        limiter,
        _signin_mail(settings),
        clock,
        SessionTimeouts(
            idle=timedelta(seconds=settings.staff_idle_seconds),
            absolute=timedelta(seconds=settings.staff_session_seconds),
        ),
        settings.public_url,
    )
    # The sign-in forms' CSRF key, derived (not shared) from the keyring's audit key.
    form_key = hmac.new(keyring.audit_key(), b"staff sign-in forms", hashlib.sha256).digest()
    # LiveKit's webhooks (lkhooks): verified against the configured keys, recorded in SQL,
    # and only ever a hint to the session's authority to reconcile.
    livekit_keys = _webhook_keys(load_keys(settings.livekit_keys_file), livekit, settings)
    livekit_webhooks = LiveKitWebhooks(
        WebhookVerifier(livekit_keys),
        livekit_keys,
        SqlWebhookLedger(
            store.writer,
            database,
            session_of_room=session_named_by_room if livekit is None else livekit.session_for_room,
        ),
        services.audit,
        live.platform_hint,
    )
    return Runtime(
        services,
        store,
        keyring,
        hasher,
        alerts,
        platform,
        live,
        incidents,
        leader,
        attempts,
        notifications,
        webhook_http,
        redis,
        database=database,
        live_state=live_state,
        process_id=process_id,
        staff_auth=staff_auth,
        form_key=form_key,
        recordings=recordings,
        retention=retention,
        online_consent=online_consent,
        livekit_webhooks=livekit_webhooks,
        livekit=livekit,
        registration_lease=registration_lease,
        livekit_recorder=livekit_recorder,
        egress_uploads=egress_uploads,
    )


def _livekit(settings: Settings, clock: Clock) -> LiveKitPlatform | None:
    """LiveKit for the organisations named in the settings, or None (the relay for all).
    A URL without its key and secret is a configuration error, said at start-up."""
    if settings.livekit_url is None:
        return None
    if settings.livekit_api_key is None:
        raise SettingError("GATEWAY_LIVEKIT_API_KEY", "set when GATEWAY_LIVEKIT_URL is", None)
    if settings.livekit_api_secret_file is None:
        raise SettingError(
            "GATEWAY_LIVEKIT_API_SECRET_FILE", "set when GATEWAY_LIVEKIT_URL is", None
        )
    try:
        secret = settings.livekit_api_secret_file.read_text().strip()
    except OSError:
        secret = ""
    if not secret:
        raise SettingError(
            "GATEWAY_LIVEKIT_API_SECRET_FILE", "a readable file holding the API secret", None
        )
    return LiveKitPlatform(
        url=settings.livekit_url,
        api_key=settings.livekit_api_key,
        api_secret=secret,
        clock=clock,
        token_seconds=settings.livekit_token_seconds,
        timeout_seconds=settings.livekit_timeout_seconds,
    )


def _webhook_keys(
    configured: LiveKitKeys, livekit: LiveKitPlatform | None, settings: Settings
) -> LiveKitKeys:
    """The keys whose webhooks are accepted: the keys file's, and the LiveKit server the
    gateway itself uses (its webhooks come signed with the same API key), for the
    organisations it serves. One source of truth for that key: the platform's settings."""
    if livekit is None or livekit.api_key in configured.keys:
        return configured
    orgs = frozenset(settings.livekit_organisations)
    served = LiveKitKey(livekit.api_secret, None if "*" in orgs else orgs)
    return LiveKitKeys({**configured.keys, livekit.api_key: served})


def _media_origins(livekit_url: str) -> tuple[str, ...]:
    """The LiveKit server's origins a join page may connect to (its signalling websocket and
    the HTTP checks its client makes)."""
    parts = urlsplit(livekit_url)
    secure = parts.scheme in ("wss", "https")
    return (
        f"{'wss' if secure else 'ws'}://{parts.netloc}",
        f"{'https' if secure else 'http'}://{parts.netloc}",
    )


def _signin_mail(settings: Settings) -> SignInMail | None:
    if settings.smtp_host is None:
        return None
    security = cast(SmtpSecurity, settings.smtp_security)
    return SmtpSignInMail(
        SmtpTarget(settings.smtp_host, settings.smtp_port, settings.smtp_from, security)
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
    """Behind its own bearer token (GATEWAY_METRICS_TOKEN); absent without one."""
    settings = request.app[SETTINGS]
    token = settings.metrics_token
    if token is None:
        raise web.HTTPNotFound()
    if not bearer_matches(request, token):
        raise Refusal(ErrorCode.UNAUTHENTICATED, "The metrics token is required.")
    body = generate_latest(request.app[METRICS])
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4"})


RUNTIME = web.AppKey("runtime", Runtime)


async def _health(request: web.Request) -> web.Response:
    """Whether SQL and the live state answer, each within `PROBE_SECONDS`; 503 if either
    does not (a load balancer then sends joins elsewhere)."""
    runtime = request.app[RUNTIME]
    assert runtime.database is not None and runtime.live_state is not None
    sql, live_state = await asyncio.gather(
        _probe(runtime.database.ping()), _probe(runtime.live_state.ping())
    )
    up = sql and live_state
    return web.json_response(
        {
            "status": "ok" if up else "degraded",
            "sql": "ok" if sql else "unavailable",
            "live_state": "ok" if live_state else "unavailable",
        },
        status=200 if up else 503,
        headers=None if up else {"Retry-After": "2"},
    )


async def _probe(check: Awaitable[None]) -> bool:
    try:
        async with asyncio.timeout(PROBE_SECONDS):
            await check
    except (Unavailable, LiveStateUnavailable, TimeoutError):
        return False
    return True


def _registration(runtime: Runtime, settings: Settings) -> ProcessRegistry:
    """This serving process's entry among those on its database (see `domain/processes.py`)."""
    assert runtime.database is not None
    kind = LiveStateKind.REDIS if settings.redis_url else LiveStateKind.IN_PROCESS
    me = GatewayProcess(runtime.process_id, kind, socket.gethostname(), os.getpid())
    return ProcessRegistry(runtime.database, me, settings.live_heartbeat_seconds)


async def _keep_registered(registry: ProcessRegistry, lease: RegistrationLease | None) -> None:
    sent = time.monotonic()
    try:
        conflict = await registry.renew()
    except Unavailable:
        logging.getLogger(__name__).warning("could not renew this process's registration")
        return
    if conflict is None and lease is not None:
        lease.renewed(sent)
    if conflict is not None:  # our entry lapsed and a process with its own live state started
        logging.getLogger(__name__).critical("stopping: %s", conflict)
        os.kill(os.getpid(), signal.SIGTERM)  # run_app's graceful shutdown


class LiveLoops(Protocol):
    """What the periodic live jobs call (`LiveSessionService`)."""

    async def reconcile(self) -> None: ...
    async def heartbeat(self, ttl_seconds: float) -> None: ...
    async def sweep(self) -> None: ...


STOP_SECONDS = 5.0
# How often the leader delivers due notifications (and checks escalations).
OUTBOX_SECONDS = 1.0
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


def start_live_jobs(
    live: LiveLoops,
    leader: LeaderLock,
    settings: Settings,
    notifications: Notifications | None = None,
    *,
    recordings: RecordingsService | None = None,
    retention: RetentionService | None = None,
) -> LiveJobs:
    """Per process: reconciliation (supervision's safety net: lost events and elapsed grace
    periods are caught there; each process owns the relay rooms of whoever connected to it)
    and the heartbeat. Global, one process at a time under the leader lease: the sweep of
    presences left by processes that died (`LiveSessionService.sweep`)."""
    stop = asyncio.Event()
    own = InProcessLeaderLock()  # a process's own jobs: always its to run
    ttl = settings.live_heartbeat_seconds

    async def heartbeat() -> None:
        await live.heartbeat(ttl)

    tasks: tuple[asyncio.Task[None], ...] = (
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
    if recordings is not None and retention is not None:
        # One process at a time: recordings whose writer died are sealed (crash recovery),
        # then whatever is due is destroyed (retention, withdrawn consent); both idempotent.
        async def recordings_round() -> None:
            async def run() -> None:
                await recordings.recover()
                await retention.run_once()

            # A run by hand (`gateway retention run`) in progress: this round is skipped.
            await exclusively(leader, RETENTION_RUN_LEASE, RETENTION_RUN_LEASE_SECONDS, run)

        tasks = (
            *tasks,
            asyncio.create_task(
                run_periodically(
                    leader,
                    "recordings.retention",
                    settings.retention_seconds,
                    recordings_round,
                    stop,
                )
            ),
        )
    if notifications is not None:
        # One process at a time delivers (the outbox's own leases keep even an overlap from
        # sending a message twice).
        deliver = notifications.deliver_due
        outbox = run_periodically(
            leader, "notifications.deliver", OUTBOX_SECONDS, _run(deliver), stop
        )
        return LiveJobs(stop, (*tasks, asyncio.create_task(outbox)))
    return LiveJobs(stop, tasks)


# Raw errors of the dependencies that mean "down or too slow" (503, not 500): see
# `gateway.http.middleware.refusals`.
SQL_MODULES = ("sqlalchemy", "asyncpg", "aiosqlite", "sqlite3")
DEPENDENCY_ERROR_TABLE: DependencyErrors = (
    (
        (
            sqlalchemy.exc.OperationalError,
            sqlalchemy.exc.InterfaceError,
            sqlalchemy.exc.TimeoutError,  # no pooled connection within the pool's timeout
            sqlalchemy.exc.DisconnectionError,
        ),
        (),
        ErrorCode.DATABASE_UNAVAILABLE,
    ),
    # Whatever the driver says while the pool opens a connection (e.g. PostgreSQL's "not
    # accepting connections"): the database cannot be reached.
    ((sqlalchemy.exc.DBAPIError,), ("sqlalchemy.pool",), ErrorCode.DATABASE_UNAVAILABLE),
    ((OSError,), SQL_MODULES, ErrorCode.DATABASE_UNAVAILABLE),
    ((redis.exceptions.RedisError, LiveStateUnavailable), (), ErrorCode.LIVE_STATE_UNAVAILABLE),
    ((OSError,), ("redis",), ErrorCode.LIVE_STATE_UNAVAILABLE),
)
REFUSAL_AGGREGATE_SECONDS = 10.0  # how often closed windows of anonymous refusals are written


def start_audit_witness(runtime: Runtime, settings: Settings) -> LiveJobs:
    """One process at a time (leader lease) records the audit head outside the database."""
    key = runtime.keyring.audit_key()
    stop = asyncio.Event()
    tasks = tuple(
        asyncio.create_task(
            run_periodically(
                runtime.leader,
                name,
                WITNESS_SECONDS,
                AuditWitnessJob(runtime.store.writer.heads, witness, runtime.services.clock),
                stop,
            )
        )
        for name, witness in witnesses_for(settings.audit_witness, settings.keys_dir, key).items()
    )
    return LiveJobs(stop, tasks)


def _run(job: Callable[[], Awaitable[int]]) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        await job()

    return run


def build_app(settings: Settings, clock: Clock | None = None) -> web.Application:
    registry = CollectorRegistry()
    app = web.Application(
        middlewares=[
            request_context(registry),
            refusals,
            body_deadline(settings.read_timeout_seconds),
            authentication,
        ],
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS] = settings
    app[METRICS] = registry
    app[DEPENDENCY_ERRORS] = DEPENDENCY_ERROR_TABLE
    app.on_response_prepare.append(response_headers)
    # Answers aiohttp writes before any route is matched (a malformed request line or header)
    # bypass `on_response_prepare`; this is the default Server header they would carry.
    setattr(web_response, "SERVER_SOFTWARE", SERVER)  # noqa: B010

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        runtime = await build_runtime(settings, clock)
        registry = _registration(runtime, settings)
        try:  # before anything is served: a second process with its own live state stops here
            sent = time.monotonic()
            await registry.claim()
        except BaseException:
            await runtime.close()
            raise
        if runtime.registration_lease is not None:  # from now on, recordings need it renewed
            runtime.registration_lease.renewed(sent)
        app[RUNTIME] = runtime
        app[SERVICES] = runtime.services
        app[LIVE] = runtime.live
        app[ATTEMPTS] = runtime.attempts
        app[INCIDENTS] = runtime.incidents
        app[NOTIFICATIONS] = runtime.notifications
        assert runtime.livekit_webhooks is not None
        app[LIVEKIT_WEBHOOKS] = runtime.livekit_webhooks
        assert runtime.recordings is not None
        app[RECORDINGS] = runtime.recordings
        assert runtime.egress_uploads is not None
        app[EGRESS_UPLOADS] = runtime.egress_uploads
        app[REPORT_CONCERN] = IncidentConcernReporter(
            runtime.services.admission, runtime.incidents, runtime.attempts
        )
        assert runtime.staff_auth is not None
        app[STAFF_PAGES] = StaffPages(
            runtime.staff_auth, runtime.incidents, runtime.form_key, settings.public_url
        )
        assert runtime.online_consent is not None
        app[CONSENT_PAGES] = ConsentPages(runtime.online_consent, settings.public_url)
        assert runtime.database is not None
        app[DESK] = DeskService(
            runtime.store,
            runtime.incidents,
            runtime.services.clock,
            tuple(
                witnesses_for(
                    settings.audit_witness, settings.keys_dir, runtime.keyring.audit_key()
                ).values()
            ),
            recordings=SqlRecordingCatalogue(runtime.store.writer, runtime.database),
        )
        app[REVIEW] = ReviewService(
            runtime.recordings,
            SqlPlaybacks(runtime.store.writer, runtime.database),
            runtime.store,
            runtime.services.policies,
            runtime.services.clock,
            timeline=app[DESK].timeline,
            seekable=seekable_webm,
            seekable_up_to=SEEKABLE_UP_TO,
        )
        try:  # alive before the first join, so no sweep can take this process for dead
            await runtime.live.heartbeat(settings.live_heartbeat_seconds)
        except LiveStateUnavailable:
            logging.getLogger(__name__).warning("live state unavailable at start")
        jobs = start_live_jobs(
            runtime.live,
            runtime.leader,
            settings,
            runtime.notifications,
            recordings=runtime.recordings,
            retention=runtime.retention,
        )
        stop_renewing = asyncio.Event()
        renewing = asyncio.create_task(
            run_periodically(
                InProcessLeaderLock(),
                "process.registration",
                settings.live_heartbeat_seconds / 3,
                lambda: _keep_registered(registry, runtime.registration_lease),
                stop_renewing,
            )
        )
        # A registration that could not be renewed in time: the recordings stop themselves
        # (sealed as incomplete, the host told), frames or not.
        recording_fence = asyncio.create_task(
            run_periodically(
                InProcessLeaderLock(),
                "recording.registration_fence",
                settings.live_heartbeat_seconds / 6,
                runtime.live.recording.registration_check,
                stop_renewing,
            )
        )
        refusal_counts = asyncio.create_task(
            run_periodically(
                InProcessLeaderLock(),
                "audit.refusal_counts",
                REFUSAL_AGGREGATE_SECONDS,
                runtime.services.audit.flush,
                stop_renewing,
            )
        )
        witness = start_audit_witness(runtime, settings)
        nudges = asyncio.create_task(runtime.live.follow_nudges(), name="live-nudges")
        yield
        nudges.cancel()
        await asyncio.gather(nudges, return_exceptions=True)
        await app[DESK].close()
        await witness.close()
        stop_renewing.set()
        await renewing
        await recording_fence
        await refusal_counts
        await jobs.close()
        try:
            await runtime.services.audit.flush(everything=True)
        except Exception:
            logging.getLogger(__name__).exception("refusal counts could not be audited")
        try:  # an entry left behind only delays the next start by one lease period
            await registry.release()
        except Exception:
            logging.getLogger(__name__).warning("could not release this process's registration")
        await runtime.close()

    app.cleanup_ctx.append(lifetime)
    app[PUBLIC_PATHS] = PUBLIC_ROUTE_PATHS
    for route in ALL_ROUTES:
        app.router.add_route(route.method, route.path, route.handler)
    if settings.livekit_url is not None:
        app[MEDIA_ORIGINS] = _media_origins(settings.livekit_url)
    for method, path, handler in (
        *PAGE_ROUTES,
        *vendor_routes(settings.livekit_client_js),
        *STAFF_PAGE_ROUTES,
        *DESK_ROUTES,
        *RECORDING_ROUTES,
        *CONSENT_PAGE_ROUTES,
        *WEBHOOK_ROUTES,
        *EGRESS_UPLOAD_ROUTES,
    ):
        app.router.add_route(method, path, handler)
    app.router.add_get("/v1/openapi.json", _openapi)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/healthz", _health)
    return app


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line. Only fields we put in `extra` appear: no bodies, no tokens."""

    SAFE = ("method", "route", "status", "code", "request_id", "error")

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "at": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": _message(record),
        }
        for key in self.SAFE:
            if key in record.__dict__:
                entry[key] = record.__dict__[key]
        if record.exc_info:
            entry["error"] = repr(record.exc_info[1].__class__.__name__)
        return json.dumps(entry)


def _message(record: logging.LogRecord) -> str:
    """Our own messages as they are; others' as their template only: aiohttp fills in the
    client's address ("Error handling request from %s") and its access log writes it into the
    message itself. No policy asks for addresses in logs, so none is ever written."""
    if record.name == "gateway" or record.name.startswith("gateway."):
        return record.getMessage()
    if record.name == "aiohttp.access":
        return "access"
    return str(record.msg)


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLogFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiohttp's access log prints raw paths and headers; ours logs route templates instead.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
