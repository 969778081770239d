"""Typed, frozen settings: the only place that reads the environment.

| variable                 | default                                   |
|--------------------------|-------------------------------------------|
| GATEWAY_DATABASE_URL     | sqlite+aiosqlite:///var/gateway.db        |
| GATEWAY_REDIS_URL        | unset: live state kept in this process    |
| GATEWAY_POLICY           | policies/default.toml                     |
| GATEWAY_KEYS_DIR         | var/keys (signing and audit keys, 0700)   |
| GATEWAY_PUBLIC_URL       | http://127.0.0.1:8080 (used in invite links) |
| GATEWAY_PROCESS_URL      | GATEWAY_PUBLIC_URL (where browsers reach THIS process: joins are |
|                          | sent to the process that owns the session)                       |
| GATEWAY_MAX_BODY_BYTES   | 65536                                     |
| GATEWAY_LOG_LEVEL        | INFO                                      |
| GATEWAY_RECONCILE_SECONDS| 3 (supervision re-checked against the relay) |
| GATEWAY_LIVE_HEARTBEAT_SECONDS | 10 (a process silent this long is dead; renewed every third) |
| GATEWAY_LIVE_SWEEP_SECONDS | 5 (one process removes dead processes' presences this often) |
| GATEWAY_ICE_SERVERS      | [] (JSON list of {urls, username, credential}; no public STUN) |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = "sqlite+aiosqlite:///var/gateway.db"
    redis_url: str | None = None
    policy_path: Path = Path("policies/default.toml")
    keys_dir: Path = Path("var/keys")
    public_url: str = "http://127.0.0.1:8080"
    process_url: str = ""  # empty: the public URL
    max_body_bytes: int = 65536
    log_level: str = "INFO"
    issuer: str = "safeguarding-gateway"
    reconcile_seconds: float = 3.0
    ice_servers_json: str = "[]"
    media_disconnect_seconds: float = 10.0
    live_heartbeat_seconds: float = 10.0
    live_sweep_seconds: float = 5.0

    def __post_init__(self) -> None:
        for name in ("reconcile_seconds", "live_heartbeat_seconds", "live_sweep_seconds"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive")
        if not self.process_url:
            object.__setattr__(self, "process_url", self.public_url)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        defaults = cls()
        return cls(
            database_url=env.get("GATEWAY_DATABASE_URL", defaults.database_url),
            redis_url=env.get("GATEWAY_REDIS_URL") or None,
            policy_path=Path(env.get("GATEWAY_POLICY", str(defaults.policy_path))),
            keys_dir=Path(env.get("GATEWAY_KEYS_DIR", str(defaults.keys_dir))),
            public_url=env.get("GATEWAY_PUBLIC_URL", defaults.public_url).rstrip("/"),
            process_url=env.get("GATEWAY_PROCESS_URL", "").rstrip("/"),
            max_body_bytes=int(env.get("GATEWAY_MAX_BODY_BYTES", defaults.max_body_bytes)),
            log_level=env.get("GATEWAY_LOG_LEVEL", defaults.log_level),
            reconcile_seconds=float(
                env.get("GATEWAY_RECONCILE_SECONDS", defaults.reconcile_seconds)
            ),
            ice_servers_json=env.get("GATEWAY_ICE_SERVERS", defaults.ice_servers_json),
            live_heartbeat_seconds=float(
                env.get("GATEWAY_LIVE_HEARTBEAT_SECONDS", defaults.live_heartbeat_seconds)
            ),
            live_sweep_seconds=float(
                env.get("GATEWAY_LIVE_SWEEP_SECONDS", defaults.live_sweep_seconds)
            ),
        )
