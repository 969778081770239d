"""The small HS256 codec agrees with PyJWT, the reference, both ways, and refuses what it must."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.adapters.compact_hs256 import (
    BadSignature,
    MalformedToken,
    RefusedAlgorithm,
    _mac,
    header_of,
    sign,
    verified_payload,
)

KEY = b"k" * 32
OTHER = b"o" * 32

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
# Not the registered claims PyJWT checks by itself (it refuses e.g. a non-integer "iat").
REGISTERED = {"iat", "exp", "nbf", "iss", "aud", "sub", "jti"}
claim_names = st.text(min_size=1, max_size=12).filter(lambda name: name not in REGISTERED)
claims = st.dictionaries(claim_names, json_values, max_size=8)


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def forged(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    return ".".join(
        [b64(json.dumps(header).encode()), b64(json.dumps(payload).encode()), b64(signature)]
    )


@given(claims)
def test_pyjwt_reads_what_we_sign(payload: dict[str, Any]) -> None:
    token = sign(payload, KEY, kid="k1")
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT", "kid": "k1"}
    assert jwt.decode(token, KEY, algorithms=["HS256"], options={"verify_aud": False}) == payload


@given(claims)
def test_we_read_what_pyjwt_signs(payload: dict[str, Any]) -> None:
    token = jwt.encode(payload, KEY, algorithm="HS256", headers={"kid": "k1"})
    assert header_of(token)["kid"] == "k1"
    assert verified_payload(token, KEY) == payload


def test_another_key_or_any_edit_breaks_the_signature() -> None:
    token = sign({"jti": "a" * 32, "exp": 10}, KEY)
    with pytest.raises(BadSignature):
        verified_payload(token, OTHER)
    header, payload, signature = token.split(".")
    edited = b64(json.dumps({"jti": "b" * 32, "exp": 10}, separators=(",", ":")).encode())
    with pytest.raises(BadSignature):
        verified_payload(f"{header}.{edited}.{signature}", KEY)
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    with pytest.raises(BadSignature):
        verified_payload(f"{header}.{payload}.{flipped}", KEY)


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "none", "typ": "JWT"},
        {"alg": "None"},
        {"alg": "HS384"},
        {"alg": "RS256"},
        {"typ": "JWT"},
        {"alg": "HS256", "crit": ["exp"]},
    ],
)
def test_other_algorithms_and_critical_extensions_are_refused(header: dict[str, Any]) -> None:
    token = forged(header, {"jti": "x"}, b"\0" * 32)
    with pytest.raises(RefusedAlgorithm):
        header_of(token)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "a.b",
        "a.b.c.d",
        sign({"a": 1}, KEY) + "=",  # padding is not base64url as JWS uses it
        sign({"a": 1}, KEY).replace(".", ". ", 1),
        "é" + sign({"a": 1}, KEY),
        forged({"alg": "HS256"}, {"a": 1})[:-1] + "..x",
        b64(b"[1]") + "." + b64(b"{}") + "." + b64(b"\0" * 32),  # header not an object
        b64(b"{not json") + "." + b64(b"{}") + "." + b64(b"\0" * 32),
        b64(b"\xff\xfe") + "." + b64(b"{}") + "." + b64(b"\0" * 32),
    ],
)
def test_malformed_tokens_are_refused_before_any_key_is_chosen(token: str) -> None:
    with pytest.raises(MalformedToken):
        header_of(token)


def test_a_payload_that_is_not_an_object_or_a_short_signature_is_malformed() -> None:
    header = b64(json.dumps({"alg": "HS256"}).encode())
    body = b64(b"[1, 2]")
    signature = hmac.digest(KEY, f"{header}.{body}".encode(), hashlib.sha256)
    with pytest.raises(MalformedToken):
        verified_payload(f"{header}.{body}.{b64(signature)}", KEY)
    with pytest.raises(MalformedToken):
        verified_payload(f"{header}.{b64(b'{}')}.{b64(signature[:31])}", KEY)


@given(st.binary(max_size=200), st.binary(max_size=3000))
def test_the_mac_is_rfc_2104_hmac_sha256(key: bytes, data: bytes) -> None:
    assert _mac(key, data) == hmac.digest(key, data, hashlib.sha256)


def _respellings(part: str) -> list[str]:
    """Other spellings of the last base64url character that Python's decoder reads as the same
    bytes: only the unused trailing bits differ."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    pad = "=" * (-len(part) % 4)
    same = base64.urlsafe_b64decode(part + pad)
    return [
        part[:-1] + c
        for c in alphabet
        if c != part[-1] and base64.urlsafe_b64decode(part[:-1] + c + pad) == same
    ]


def test_a_signature_has_one_spelling_as_in_pyjwt() -> None:
    token = sign({"jti": "a" * 32, "exp": 10}, KEY)
    header, payload, signature = token.split(".")
    others = _respellings(signature)
    assert others  # 32 bytes leave 2 unused bits: 3 other spellings
    for other in others:
        variant = f"{header}.{payload}.{other}"
        # Python's decoder reads it as the very same signature ...
        assert base64.urlsafe_b64decode(other + "=") == base64.urlsafe_b64decode(signature + "=")
        # ... the reference refuses it, and so does the gateway: one token, one text
        with pytest.raises(jwt.DecodeError):
            jwt.decode(variant, KEY, algorithms=["HS256"])
        with pytest.raises(MalformedToken):
            verified_payload(variant, KEY)


@pytest.mark.parametrize("which", [0, 1])
def test_header_and_payload_must_be_canonical_too(which: int) -> None:
    # lengths vary with the key id and the claims: find a token whose part has unused bits
    tokens = [sign({"pad": "x" * n}, KEY, kid="k" * n) for n in range(3)]
    parts = next(t.split(".") for t in tokens if _respellings(t.split(".")[which]))
    parts[which] = _respellings(parts[which])[0]
    # the payload's text is signed, so its respelling also breaks the signature
    with pytest.raises((MalformedToken, BadSignature)):
        header_of(".".join(parts)) if which == 0 else verified_payload(".".join(parts), KEY)


@pytest.mark.parametrize("suffix", ["=", "==", "%3D"])
def test_padding_or_escapes_are_refused(suffix: str) -> None:
    token = sign({"a": 1}, KEY)
    with pytest.raises(MalformedToken):
        verified_payload(token + suffix, KEY)


def test_a_remembered_header_is_no_pass_for_the_token_it_comes_with() -> None:
    genuine = sign({"who": "host"}, KEY, kid="k1")
    assert header_of(genuine)["kid"] == "k1"  # now remembered
    head = genuine.split(".")[0]
    tampered = ".".join([head, b64(json.dumps({"who": "intruder"}).encode()), b64(b"x" * 32)])
    assert header_of(tampered) == {"alg": "HS256", "typ": "JWT", "kid": "k1"}
    with pytest.raises(BadSignature):
        verified_payload(tampered, KEY)
    header_of(genuine)["kid"] = "changed"  # a caller's copy, not the memory
    assert header_of(genuine)["kid"] == "k1"


def test_headers_anyone_sends_cannot_grow_the_memory_or_sneak_past_it() -> None:
    from gateway.adapters import compact_hs256

    for i in range(500):
        header_of(forged({"alg": "HS256", "kid": f"k{i}"}, {}, b"s" * 32))
    assert len(compact_hs256._headers) <= 64
    refused = forged({"alg": "none", "kid": "k1"}, {})
    for _ in range(2):  # a refused header is never remembered as accepted
        with pytest.raises(RefusedAlgorithm):
            header_of(refused)
