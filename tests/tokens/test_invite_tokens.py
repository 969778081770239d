"""Invite tokens (R1, R2): genuine ones verify; forged, expired, early and odd ones are refused."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.adapters import compact_hs256
from gateway.adapters.invite_tokens import InviteTokens, device_hash, device_token
from gateway.adapters.keys import KeyRing
from gateway.domain.errors import ErrorCode, Refusal
from gateway.domain.invite_token import MAX_TOKEN_CHARS, invite_claims_from

from ._craft import (
    DROP,
    ISSUER,
    LATER,
    NOW,
    b64url,
    hs_token,
    invite_claims,
    new_id,
    segment,
    unsigned_token,
)


@pytest.fixture
def ring() -> KeyRing:
    return KeyRing.generate()


@pytest.fixture
def tokens(ring: KeyRing) -> InviteTokens:
    return InviteTokens(ring, ISSUER)


def header(ring: KeyRing, **overrides: Any) -> dict[str, Any]:
    kid, _ = ring.signing_key()
    value: dict[str, Any] = {"alg": "HS256", "typ": "JWT", "kid": kid}
    value.update(overrides)
    return {k: v for k, v in value.items() if v is not DROP}


def signed(ring: KeyRing, claims: dict[str, Any], **header_overrides: Any) -> str:
    """A token signed correctly with the ring's current key (only the content is wrong)."""
    _, secret = ring.signing_key()
    return hs_token(header(ring, **header_overrides), claims, secret)


def refused(tokens: InviteTokens, token: str, now: datetime = NOW) -> Refusal:
    with pytest.raises(Refusal) as caught:
        tokens.verify(token, now)
    refusal = caught.value
    # messages never echo the token or any part of it
    for part in token.split("."):
        if len(part) >= 8:
            assert part not in refusal.message
            assert part not in str(refusal)
    return refusal


# --- genuine -----------------------------------------------------------------------------------


def test_minted_invite_verifies_with_opaque_ids_only(tokens: InviteTokens, ring: KeyRing) -> None:
    invite_id, session_id, org_id = new_id(), new_id(), new_id()
    token = tokens.mint(invite_id, session_id, org_id, expires_at=LATER, now=NOW)

    claims = tokens.verify(token, NOW)

    assert claims.invite_id == invite_id
    assert claims.session_id == session_id
    assert claims.org_id == org_id
    assert claims.issuer == ISSUER
    assert claims.expires_at == LATER
    assert claims.not_before == NOW
    head = jwt.get_unverified_header(token)
    assert head["alg"] == "HS256"
    assert head["kid"] == ring.signing_key()[0]
    payload = jwt.decode(token, options={"verify_signature": False})
    assert set(payload) == {"typ", "iss", "aud", "jti", "sid", "org", "iat", "nbf", "exp"}
    assert payload["typ"] == "invite"
    assert payload["aud"] == "gateway:join"


def test_valid_until_the_last_second(tokens: InviteTokens) -> None:
    token = tokens.mint(new_id(), new_id(), new_id(), expires_at=LATER, now=NOW)
    assert tokens.verify(token, LATER - timedelta(microseconds=1)).expires_at == LATER


def test_mint_refuses_what_verify_would_refuse(tokens: InviteTokens) -> None:
    with pytest.raises(ValueError, match="expire after"):
        tokens.mint(new_id(), new_id(), new_id(), expires_at=NOW, now=NOW)
    with pytest.raises(ValueError, match="malformed"):
        tokens.mint("an id with spaces", new_id(), new_id(), expires_at=LATER, now=NOW)
    with pytest.raises(ValueError, match="naive"):
        tokens.mint(new_id(), new_id(), new_id(), expires_at=LATER, now=datetime(2026, 1, 1))


# --- time --------------------------------------------------------------------------------------


def test_expired(tokens: InviteTokens) -> None:
    token = tokens.mint(new_id(), new_id(), new_id(), expires_at=LATER, now=NOW)
    assert refused(tokens, token, now=LATER).code is ErrorCode.INVITE_EXPIRED
    assert refused(tokens, token, now=LATER + timedelta(days=3)).code is ErrorCode.INVITE_EXPIRED


def test_not_yet_valid(tokens: InviteTokens) -> None:
    token = tokens.mint(new_id(), new_id(), new_id(), expires_at=LATER, now=NOW)
    refusal = refused(tokens, token, now=NOW - timedelta(seconds=1))
    assert refusal.code is ErrorCode.INVITE_INVALID
    assert "not valid yet" in refusal.message


def test_nbf_in_future_signed_by_us(tokens: InviteTokens, ring: KeyRing) -> None:
    start = int((NOW + timedelta(hours=1)).timestamp())
    token = signed(ring, invite_claims(nbf=start))
    assert refused(tokens, token).code is ErrorCode.INVITE_INVALID
    assert tokens.verify(token, NOW + timedelta(hours=1)).not_before == NOW + timedelta(hours=1)


# --- signature, algorithm, key id --------------------------------------------------------------


def test_forged_with_another_key_under_a_known_kid(tokens: InviteTokens, ring: KeyRing) -> None:
    token = hs_token(header(ring), invite_claims(), secrets.token_bytes(32))
    refusal = refused(tokens, token)
    assert refusal.code is ErrorCode.INVITE_INVALID
    assert "signature" in refusal.message


def test_tampered_payload(tokens: InviteTokens) -> None:
    token = tokens.mint(new_id(), new_id(), new_id(), expires_at=LATER, now=NOW)
    head, _, signature = token.split(".")
    other = invite_claims(exp=int((LATER + timedelta(days=365)).timestamp()))
    assert refused(tokens, f"{head}.{segment(other)}.{signature}").code is ErrorCode.INVITE_INVALID


def test_alg_none(tokens: InviteTokens, ring: KeyRing) -> None:
    kid, _ = ring.signing_key()
    for alg in ("none", "None", "NONE"):
        token = unsigned_token({"alg": alg, "typ": "JWT", "kid": kid}, invite_claims())
        refusal = refused(tokens, token)
        assert refusal.code is ErrorCode.INVITE_INVALID
        assert "algorithm" in refusal.message


def test_alg_none_with_a_signature_attached(tokens: InviteTokens, ring: KeyRing) -> None:
    good = tokens.mint(new_id(), new_id(), new_id(), expires_at=LATER, now=NOW)
    _, body, signature = good.split(".")
    token = f"{segment(header(ring, alg='none'))}.{body}.{signature}"
    assert refused(tokens, token).code is ErrorCode.INVITE_INVALID


@pytest.mark.parametrize("alg", ["HS384", "HS512"])
def test_other_hmac_algorithm_with_the_right_secret(
    tokens: InviteTokens, ring: KeyRing, alg: str
) -> None:
    _, secret = ring.signing_key()
    token = hs_token(header(ring, alg=alg), invite_claims(), secret)
    refusal = refused(tokens, token)
    assert refusal.code is ErrorCode.INVITE_INVALID
    assert "algorithm" in refusal.message


def test_rs256(tokens: InviteTokens, ring: KeyRing) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    kid, _ = ring.signing_key()
    token = jwt.encode(invite_claims(), private, algorithm="RS256", headers={"kid": kid})
    assert refused(tokens, token).code is ErrorCode.INVITE_INVALID


def test_hs256_header_over_rs256_signature(tokens: InviteTokens, ring: KeyRing) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rs = jwt.encode(invite_claims(), private, algorithm="RS256")
    _, body, signature = rs.split(".")
    token = f"{segment(header(ring))}.{body}.{signature}"
    assert refused(tokens, token).code is ErrorCode.INVITE_INVALID


def test_unknown_kid(tokens: InviteTokens) -> None:
    secret = secrets.token_bytes(32)
    token = hs_token({"alg": "HS256", "kid": "k-attacker"}, invite_claims(), secret)
    refusal = refused(tokens, token)
    assert refusal.code is ErrorCode.INVITE_INVALID
    assert "unknown key" in refusal.message


def test_missing_kid(tokens: InviteTokens, ring: KeyRing) -> None:
    refusal = refused(tokens, signed(ring, invite_claims(), kid=DROP))
    assert refusal.code is ErrorCode.INVITE_INVALID
    assert "no signing key" in refusal.message


@pytest.mark.parametrize("kid", [None, 7, ["k"], {"k": 1}, ""])
def test_malformed_kid(tokens: InviteTokens, ring: KeyRing, kid: object) -> None:
    assert refused(tokens, signed(ring, invite_claims(), kid=kid)).code is ErrorCode.INVITE_INVALID


# --- claims ------------------------------------------------------------------------------------


def test_wrong_audience(tokens: InviteTokens, ring: KeyRing) -> None:
    for aud in ("gateway:media", "someone-else", ["gateway:join"], ["gateway:join", "x"]):
        refusal = refused(tokens, signed(ring, invite_claims(aud=aud)))
        assert refusal.code is ErrorCode.INVITE_INVALID, aud
        assert "audience" in refusal.message


def test_wrong_issuer(tokens: InviteTokens, ring: KeyRing) -> None:
    refusal = refused(tokens, signed(ring, invite_claims(iss="https://elsewhere.test")))
    assert refusal.code is ErrorCode.INVITE_INVALID
    assert "issuer" in refusal.message


def test_other_issuer_instance_refuses(ring: KeyRing) -> None:
    token = InviteTokens(ring, "https://a.test").mint(new_id(), new_id(), new_id(), LATER, NOW)
    with pytest.raises(Refusal) as caught:
        InviteTokens(ring, "https://b.test").verify(token, NOW)
    assert caught.value.code is ErrorCode.INVITE_INVALID


@pytest.mark.parametrize("typ", ["media", "INVITE", "", 1, None])
def test_wrong_typ(tokens: InviteTokens, ring: KeyRing, typ: object) -> None:
    refusal = refused(tokens, signed(ring, invite_claims(typ=typ)))
    assert refusal.code is ErrorCode.INVITE_INVALID


@pytest.mark.parametrize("claim", ["typ", "iss", "aud", "jti", "sid", "org", "iat", "nbf", "exp"])
def test_missing_claim(tokens: InviteTokens, ring: KeyRing, claim: str) -> None:
    refusal = refused(tokens, signed(ring, invite_claims(**{claim: DROP})))
    assert refusal.code is ErrorCode.INVITE_INVALID
    assert f"'{claim}'" in refusal.message


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"exp": "2099-01-01"}, id="exp-string"),
        pytest.param({"exp": 1.5e12}, id="exp-float"),
        pytest.param({"exp": True}, id="exp-bool"),
        pytest.param({"exp": 10**20}, id="exp-huge"),
        pytest.param({"nbf": -1}, id="nbf-negative"),
        pytest.param({"iat": int(LATER.timestamp()) + 1}, id="iat-after-exp"),
        pytest.param({"jti": 12345}, id="jti-int"),
        pytest.param({"jti": ""}, id="jti-empty"),
        pytest.param({"jti": "x" * 129}, id="jti-long"),
        pytest.param({"sid": "a b"}, id="sid-space"),
        pytest.param({"org": None}, id="org-null"),
    ],
)
def test_ill_typed_claims(tokens: InviteTokens, ring: KeyRing, overrides: dict[str, Any]) -> None:
    assert (
        refused(tokens, signed(ring, invite_claims(**overrides))).code is ErrorCode.INVITE_INVALID
    )


# --- garbage -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    [
        "",
        "garbage",
        "a.b",
        "a.b.c",
        "a.b.c.d",
        "....",
        "eyJhbGciOiJIUzI1NiJ9.%%%.abc",
        "\u00e9.\u00e9.\u00e9",
        b64url(b"not json") + "." + b64url(b"{}") + ".",
        b64url(b"[1,2]") + "." + b64url(b"{}") + ".",
        segment({"alg": "HS256"}) + "." + b64url(b"not json") + ".sig",
    ],
)
def test_garbage(tokens: InviteTokens, token: str) -> None:
    assert refused(tokens, token).code is ErrorCode.INVITE_INVALID


def test_non_object_payload_with_valid_signature(tokens: InviteTokens, ring: KeyRing) -> None:
    _, secret = ring.signing_key()
    good = hs_token(header(ring), invite_claims(), secret)
    head = good.split(".")[0]
    body = b64url(json.dumps([1, 2, 3]).encode())
    signature = b64url(hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest())
    assert refused(tokens, f"{head}.{body}.{signature}").code is ErrorCode.INVITE_INVALID


def test_over_long_token_refused_before_parsing(
    tokens: InviteTokens, ring: KeyRing, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The length check comes before the production codec reads anything: a token that is
    both over-long and unparseable is refused as too long, and the codec is never entered."""
    token = signed(ring, invite_claims(pad="x" * MAX_TOKEN_CHARS))
    assert len(token) > MAX_TOKEN_CHARS
    garbage = "%" * 8 + token  # not even base64url: the codec would call it malformed

    entered: list[str] = []
    real_header_of = compact_hs256.header_of
    real_payload = compact_hs256.verified_payload

    def header_of(raw: str) -> dict[str, Any]:
        entered.append("header_of")
        return real_header_of(raw)

    def verified_payload(raw: str, key: bytes) -> dict[str, Any]:
        entered.append("verified_payload")
        return real_payload(raw, key)

    monkeypatch.setattr(compact_hs256, "header_of", header_of)
    monkeypatch.setattr(compact_hs256, "verified_payload", verified_payload)
    for over_long in (token, garbage):
        refusal = refused(tokens, over_long)
        assert refusal.code is ErrorCode.INVITE_INVALID
        assert "too long" in refusal.message
    assert entered == []
    # The same spies do see a token of ordinary length: the check above is not vacuous.
    assert tokens.verify(signed(ring, invite_claims()), NOW).issuer == ISSUER
    assert entered == ["header_of", "verified_payload"]


def test_token_at_the_size_limit_is_parsed(tokens: InviteTokens, ring: KeyRing) -> None:
    base = len(signed(ring, invite_claims(pad="")))
    # each padding char adds 4/3 base64 chars; find the longest padding that fits
    pad = 0
    while len(signed(ring, invite_claims(pad="x" * (pad + 1)))) <= MAX_TOKEN_CHARS:
        pad += 1
    token = signed(ring, invite_claims(pad="x" * pad))
    assert base < len(token) <= MAX_TOKEN_CHARS
    assert tokens.verify(token, NOW).issuer == ISSUER


def test_not_a_string(tokens: InviteTokens) -> None:
    with pytest.raises(Refusal) as caught:
        tokens.verify(b"abc.def.ghi", NOW)  # type: ignore[arg-type]
    assert caught.value.code is ErrorCode.INVITE_INVALID


# --- rotation ----------------------------------------------------------------------------------


def test_rotation_old_kid_verifies_new_kid_signs(tokens: InviteTokens, ring: KeyRing) -> None:
    old_kid, _ = ring.signing_key()
    before = tokens.mint(new_id(), new_id(), new_id(), expires_at=LATER, now=NOW)

    new_kid = ring.rotate_signing_key()
    after = tokens.mint(new_id(), new_id(), new_id(), expires_at=LATER, now=NOW)

    assert new_kid != old_kid
    assert jwt.get_unverified_header(before)["kid"] == old_kid
    assert jwt.get_unverified_header(after)["kid"] == new_kid
    assert tokens.verify(before, NOW).issuer == ISSUER
    assert tokens.verify(after, NOW).issuer == ISSUER

    ring.remove_signing_key(old_kid)
    refusal = refused(tokens, before)
    assert refusal.code is ErrorCode.INVITE_INVALID
    assert "unknown key" in refusal.message
    assert tokens.verify(after, NOW).issuer == ISSUER


def test_old_token_relabelled_with_new_kid_is_refused(tokens: InviteTokens, ring: KeyRing) -> None:
    before = tokens.mint(new_id(), new_id(), new_id(), expires_at=LATER, now=NOW)
    new_kid = ring.rotate_signing_key()
    _, body, signature = before.split(".")
    token = f"{segment(header(ring, kid=new_kid))}.{body}.{signature}"
    assert refused(tokens, token).code is ErrorCode.INVITE_INVALID


# --- domain claims directly --------------------------------------------------------------------


def test_domain_expiry_boundary() -> None:
    claims = invite_claims()
    assert invite_claims_from(claims, issuer=ISSUER, now=LATER - timedelta(seconds=1))
    with pytest.raises(Refusal) as caught:
        invite_claims_from(claims, issuer=ISSUER, now=LATER)
    assert caught.value.code is ErrorCode.INVITE_EXPIRED


def test_domain_refuses_naive_now() -> None:
    with pytest.raises(ValueError, match="naive"):
        invite_claims_from(invite_claims(), issuer=ISSUER, now=datetime(2026, 3, 2, 10))


# --- device cookie -----------------------------------------------------------------------------


def test_device_token_and_hash() -> None:
    first, second = device_token(), device_token()
    assert first != second
    assert len(first) >= 43  # 32 bytes, URL-safe base64
    assert all(c.isalnum() or c in "-_" for c in first)
    digest = device_hash(first)
    assert len(digest) == 64
    assert int(digest, 16) >= 0
    assert digest == device_hash(first)
    assert digest != device_hash(second)
    assert first not in digest


def test_repr_hides_keys(tokens: InviteTokens, ring: KeyRing) -> None:
    _, secret = ring.signing_key()
    for text in (repr(tokens), str(tokens)):
        assert secret.hex() not in text
        assert b64url(secret) not in text


def test_expiry_in_other_time_zone(tokens: InviteTokens) -> None:
    tz = timezone(timedelta(hours=5))
    token = tokens.mint(new_id(), new_id(), new_id(), expires_at=LATER.astimezone(tz), now=NOW)
    assert tokens.verify(token, NOW.astimezone(tz)).expires_at == LATER.astimezone(UTC)
