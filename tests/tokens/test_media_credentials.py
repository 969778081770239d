"""Media credentials: short-lived, explicit grants, nothing else accepted in their place."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import jwt
import pytest

from gateway.adapters.invite_tokens import InviteTokens, MediaCredentials
from gateway.adapters.keys import KeyRing
from gateway.domain.errors import ErrorCode, Refusal
from gateway.domain.invite_token import MAX_MEDIA_TTL_SECONDS

from ._craft import ISSUER, LATER, NOW, hs_token, new_id, unsigned_token

GRANTS = {"can_publish": False, "can_subscribe": True}


@pytest.fixture
def ring() -> KeyRing:
    return KeyRing.generate()


@pytest.fixture
def media(ring: KeyRing) -> MediaCredentials:
    return MediaCredentials(ring, ISSUER)


def media_claims(**overrides: Any) -> dict[str, Any]:
    iat = int(NOW.timestamp())
    claims: dict[str, Any] = {
        "typ": "media",
        "iss": ISSUER,
        "aud": "gateway:media",
        "jti": new_id(),
        "sid": new_id(),
        "sub": "p-" + new_id()[:12],
        "grants": GRANTS,
        "iat": iat,
        "nbf": iat,
        "exp": iat + 60,
    }
    claims.update(overrides)
    return claims


def refused(media: MediaCredentials, token: str, at: Any = NOW) -> Refusal:
    with pytest.raises(Refusal) as caught:
        media.verify(token, at)
    assert caught.value.code is ErrorCode.CREDENTIAL_INVALID
    return caught.value


def test_valid(media: MediaCredentials) -> None:
    session_id = new_id()
    token = media.mint(session_id, "p-7f3a", GRANTS, NOW)
    claims = media.verify(token, NOW + timedelta(seconds=59))
    assert claims.session_id == session_id
    assert claims.identity == "p-7f3a"
    assert dict(claims.grants) == GRANTS
    assert claims.expires_at == NOW + timedelta(seconds=60)
    assert len(claims.credential_id) == 32
    # each credential is distinct, so the caller can enforce single use by jti
    assert media.verify(media.mint(session_id, "p-7f3a", GRANTS, NOW), NOW).credential_id != (
        claims.credential_id
    )
    with pytest.raises(TypeError):
        claims.grants["can_publish"] = True  # type: ignore[index]


def test_expired(media: MediaCredentials) -> None:
    token = media.mint(new_id(), "p-1", GRANTS, NOW, ttl_seconds=30)
    assert "expired" in refused(media, token, NOW + timedelta(seconds=30)).message


def test_not_yet_valid(media: MediaCredentials) -> None:
    token = media.mint(new_id(), "p-1", GRANTS, NOW)
    refused(media, token, NOW - timedelta(seconds=1))


def test_invite_token_is_not_a_media_credential(ring: KeyRing, media: MediaCredentials) -> None:
    invite = InviteTokens(ring, ISSUER).mint(new_id(), new_id(), new_id(), LATER, NOW)
    refused(media, invite)


def test_wrong_typ_even_with_the_media_key(ring: KeyRing, media: MediaCredentials) -> None:
    token = hs_token({"alg": "HS256"}, media_claims(typ="invite"), ring.media_key())
    assert "type" in refused(media, token).message


def test_media_credential_is_not_an_invite(ring: KeyRing, media: MediaCredentials) -> None:
    token = media.mint(new_id(), "p-1", GRANTS, NOW)
    with pytest.raises(Refusal) as caught:
        InviteTokens(ring, ISSUER).verify(token, NOW)
    assert caught.value.code is ErrorCode.INVITE_INVALID


def test_wrong_audience(ring: KeyRing, media: MediaCredentials) -> None:
    token = hs_token({"alg": "HS256"}, media_claims(aud="gateway:join"), ring.media_key())
    refused(media, token)


def test_forged_and_alg_none(ring: KeyRing, media: MediaCredentials) -> None:
    refused(media, hs_token({"alg": "HS256"}, media_claims(), b"k" * 32))
    refused(media, hs_token({"alg": "HS256"}, media_claims(), ring.signing_key()[1]))
    refused(media, unsigned_token({"alg": "none"}, media_claims()))
    refused(media, hs_token({"alg": "HS512"}, media_claims(), ring.media_key()))


def test_overlong_lifetime_refused(ring: KeyRing, media: MediaCredentials) -> None:
    iat = int(NOW.timestamp())
    long_lived = media_claims(exp=iat + MAX_MEDIA_TTL_SECONDS + 1)
    refused(media, hs_token({"alg": "HS256"}, long_lived, ring.media_key()))
    with pytest.raises(ValueError):
        media.mint(new_id(), "p-1", GRANTS, NOW, ttl_seconds=MAX_MEDIA_TTL_SECONDS + 1)
    with pytest.raises(ValueError):
        media.mint(new_id(), "p-1", GRANTS, NOW, ttl_seconds=0)


@pytest.mark.parametrize("grants", [None, [1, 2], "all", {1: True}])
def test_malformed_grants(ring: KeyRing, media: MediaCredentials, grants: object) -> None:
    # {1: True} becomes {"1": true} in JSON: valid shape, so only the first three are refused
    token = hs_token({"alg": "HS256"}, media_claims(grants=grants), ring.media_key())
    if isinstance(grants, dict):
        assert dict(media.verify(token, NOW).grants) == {"1": True}
    else:
        refused(media, token)


def test_missing_claims(ring: KeyRing, media: MediaCredentials) -> None:
    for claim in ("typ", "jti", "sid", "sub", "grants", "exp"):
        claims = media_claims()
        del claims[claim]
        refusal = refused(media, hs_token({"alg": "HS256"}, claims, ring.media_key()))
        assert f"'{claim}'" in refusal.message


def test_token_is_hs256_without_personal_data(media: MediaCredentials) -> None:
    token = media.mint("s1", "p-1", GRANTS, NOW)
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    payload = jwt.decode(token, options={"verify_signature": False})
    assert set(payload) == {"typ", "iss", "aud", "jti", "sid", "sub", "grants", "iat", "nbf", "exp"}
