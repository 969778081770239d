"""Organisations (tenants) and their API keys. Keys are shown once and stored hashed."""

from __future__ import annotations

import hashlib
import secrets
import uuid

from gateway.domain.audit import AuditEvent
from gateway.domain.errors import ErrorCode, Refusal
from gateway.services.policies import PolicyBook
from gateway.services.ports import Organisation, Store

KEY_PREFIX = "sgw_"


def hash_api_key(key: str) -> str:
    # Keys carry 256 bits of randomness, so a fast hash is enough (no password stretching).
    return hashlib.sha256(key.encode()).hexdigest()


def new_id() -> str:
    return uuid.uuid4().hex


class OrganisationService:
    def __init__(self, store: Store, policies: PolicyBook) -> None:
        self._store = store
        self._policies = policies

    async def create(self, name: str, policy_path: str | None = None) -> tuple[Organisation, str]:
        name = name.strip()
        if not 1 <= len(name) <= 200 or not name.isprintable():
            raise Refusal(ErrorCode.BODY_INVALID, "An organisation name is 1 to 200 characters.")
        self._policies.for_path(policy_path)  # refuse an invalid policy file up front
        org = Organisation(id=new_id(), name=name, policy_path=policy_path)
        key, key_id = KEY_PREFIX + secrets.token_urlsafe(32), new_id()
        await self._store.add_organisation(
            org,
            key_id,
            hash_api_key(key),
            [
                AuditEvent(
                    "organisation.created",
                    actor="operator",
                    org_id=org.id,
                    data={"key_id": key_id, "policy": self._policies.for_path(policy_path).label},
                )
            ],
        )
        return org, key

    async def authenticate(self, key: str) -> Organisation | None:
        if not key.startswith(KEY_PREFIX) or len(key) > 200:
            return None
        return await self._store.organisation_for_key(hash_api_key(key))

    async def rotate_key(self, org_id: str) -> str:
        """Issue a new key and revoke every older one."""
        if await self._store.organisation(org_id) is None:
            raise Refusal(ErrorCode.NOT_FOUND, "No such organisation.")
        key, key_id = KEY_PREFIX + secrets.token_urlsafe(32), new_id()
        event = AuditEvent("api_key.rotated", "operator", org_id, data={"key_id": key_id})
        await self._store.add_api_key(org_id, key_id, hash_api_key(key), [event])
        revoked = AuditEvent("api_key.revoked", "operator", org_id, data={"except": key_id})
        await self._store.revoke_api_keys(org_id, key_id, [revoked])
        return key

    async def revoke_keys(self, org_id: str) -> int:
        if await self._store.organisation(org_id) is None:
            raise Refusal(ErrorCode.NOT_FOUND, "No such organisation.")
        event = AuditEvent("api_key.revoked", "operator", org_id, data={"except": None})
        return await self._store.revoke_api_keys(org_id, None, [event])
