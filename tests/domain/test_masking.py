"""Masked identities and display names (R3)."""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.domain.errors import ErrorCode, Refusal
from gateway.domain.masking import (
    display_name,
    display_style,
    new_masked_identity,
    validate_person_name,
)
from gateway.domain.models import PersonKind, SessionRole
from gateway.domain.policy import NameStyle

from .factories import DEFAULT_POLICY, child, guardian, make_policy, staff


def test_masked_identity_shape() -> None:
    ident = new_masked_identity(bytes(range(16)))
    assert re.fullmatch(r"p_[a-z2-7]+", ident)
    assert ident == "p_aaaqeayeaudaocajbifqydiob4"


def test_masked_identity_differs_with_bytes() -> None:
    assert new_masked_identity(b"\x00" * 10) != new_masked_identity(b"\x00" * 9 + b"\x01")


@pytest.mark.parametrize("n", [0, 1, 9])
def test_masked_identity_needs_ten_bytes(n: int) -> None:
    with pytest.raises(ValueError, match="at least 10"):
        new_masked_identity(b"\x01" * n)


@given(st.binary(min_size=10, max_size=64))
def test_masked_identity_is_opaque_and_injective(data: bytes) -> None:
    ident = new_masked_identity(data)
    assert re.fullmatch(r"p_[a-z2-7]+", ident)
    assert new_masked_identity(data) == ident
    assert "=" not in ident


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        pytest.param("Sam Rivers", "Sam Rivers", id="plain"),
        pytest.param("  Sam Rivers  ", "Sam Rivers", id="stripped"),
        pytest.param("Siobhán O'Neill", "Siobhán O'Neill", id="accent-apostrophe"),
        pytest.param("Se\u0301amus", "S\u00e9amus", id="nfc-normalised"),
        pytest.param("Anne-Marie St. John", "Anne-Marie St. John", id="hyphen-period"),
        pytest.param("D\u2019Arcy", "D\u2019Arcy", id="typographic-apostrophe"),
        pytest.param("王小明", "王小明", id="cjk"),
        pytest.param("محمد", "محمد", id="arabic"),
        pytest.param("x" * 100, "x" * 100, id="100-chars"),
    ],
)
def test_valid_names(raw: str, clean: str) -> None:
    assert validate_person_name(raw) == clean


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("", id="empty"),
        pytest.param("   ", id="spaces-only"),
        pytest.param("x" * 101, id="101-chars"),
        pytest.param("Sam\nRivers", id="newline"),
        pytest.param("Sam\tRivers", id="tab"),
        pytest.param("Sam\x00", id="nul"),
        pytest.param("Sam\u202eSREVIR", id="bidi-override-rlo"),
        pytest.param("Sam\u202a", id="bidi-lre"),
        pytest.param("Sam\u2066x", id="bidi-isolate"),
        pytest.param("Sa\u200bm", id="zero-width-space"),
        pytest.param("Sa\u200dm", id="zero-width-joiner"),
        pytest.param("\ufeffSam", id="bom"),
        pytest.param("Sa\u2060m", id="word-joiner"),
        pytest.param("Sam\u2028Rivers", id="line-separator"),
        pytest.param("Sam\u2029Rivers", id="paragraph-separator"),
        pytest.param("Sam <script>", id="markup"),
        pytest.param("Sam1", id="digit"),
        pytest.param("sam@example.org", id="email"),
        pytest.param("Sam\u00a0Rivers", id="nbsp"),
        pytest.param("'-.", id="no-letter"),
        pytest.param("Sam 😀", id="emoji"),
    ],
)
def test_invalid_names(raw: str) -> None:
    with pytest.raises(Refusal) as caught:
        validate_person_name(raw)
    assert caught.value.code is ErrorCode.NAME_INVALID
    assert "Sam" not in caught.value.message
    if raw.strip():
        assert raw not in caught.value.message


@pytest.mark.parametrize(
    ("name", "role", "style", "ordinal", "shown"),
    [
        pytest.param("Sam Rivers", SessionRole.CHILD, "first_name_initial", 1, "Sam R.", id="fni"),
        pytest.param(
            "Sam Alex Rivers", SessionRole.CHILD, "first_name_initial", 1, "Sam R.", id="fni-middle"
        ),
        pytest.param("Sam", SessionRole.CHILD, "first_name_initial", 1, "Sam", id="fni-one-word"),
        pytest.param(
            "Sam O'Brien", SessionRole.CHILD, "first_name_initial", 1, "Sam O.", id="fni-apostrophe"
        ),
        pytest.param(
            "Sam 'Brien", SessionRole.CHILD, "first_name_initial", 1, "Sam B.", id="fni-lead-punct"
        ),
        pytest.param(
            "Zoë Ångström", SessionRole.CHILD, "first_name_initial", 1, "Zoë Å.", id="fni-accents"
        ),
        pytest.param(
            "Zoe A\u030angstrom",
            SessionRole.CHILD,
            "first_name_initial",
            1,
            "Zoe \u00c5.",
            id="fni-decomposed",
        ),
        pytest.param("Sam Rivers", SessionRole.CHILD, "first_name", 1, "Sam", id="first-name"),
        pytest.param("Sam Rivers", SessionRole.CHILD, "role_number", 3, "Student 3", id="student"),
        pytest.param("Sam Rivers", SessionRole.VIEWER, "role_number", 3, "Viewer 3", id="viewer"),
        pytest.param("Sam Rivers", SessionRole.OBSERVER, "role_number", 2, "Observer 2", id="obs"),
        pytest.param("Sam Rivers", SessionRole.HOST, "role_number", 1, "Tutor 1", id="tutor"),
        pytest.param("Sam Rivers", SessionRole.GUARDIAN, "role_number", 2, "Guardian 2", id="g"),
        pytest.param("", SessionRole.CHILD, "first_name_initial", 4, "Student 4", id="no-name"),
        pytest.param("   ", SessionRole.CHILD, "first_name", 4, "Student 4", id="blank-name"),
    ],
)
def test_display_name(
    name: str, role: SessionRole, style: NameStyle, ordinal: int, shown: str
) -> None:
    assert display_name(child(name=name), role, style, ordinal) == shown


def test_display_name_never_shows_email_or_dob() -> None:
    s = staff(name="Robin Tutor")
    styles: tuple[NameStyle, ...] = ("first_name_initial", "first_name", "role_number")
    shown = [display_name(s, SessionRole.HOST, style, 1) for style in styles]
    assert shown == ["Robin T.", "Robin", "Tutor 1"]
    kid = child(name="Sam Rivers")
    assert "2016" not in display_name(kid, SessionRole.CHILD, "first_name_initial", 1)


def test_display_name_ordinal_is_one_based() -> None:
    with pytest.raises(ValueError, match="1-based"):
        display_name(child(), SessionRole.CHILD, "role_number", 0)


@pytest.mark.parametrize(
    ("role", "kind", "style"),
    [
        pytest.param(SessionRole.VIEWER, PersonKind.CHILD, "viewers", id="child-viewer"),
        pytest.param(SessionRole.VIEWER, PersonKind.GUARDIAN, "viewers", id="guardian-viewer"),
        pytest.param(SessionRole.CHILD, PersonKind.CHILD, "children", id="child"),
        pytest.param(SessionRole.HOST, PersonKind.STAFF, "adults", id="host"),
        pytest.param(SessionRole.OBSERVER, PersonKind.STAFF, "adults", id="observer"),
        pytest.param(SessionRole.GUARDIAN, PersonKind.GUARDIAN, "adults", id="guardian"),
    ],
)
def test_display_style(role: SessionRole, kind: PersonKind, style: str) -> None:
    policy = make_policy(
        display_names={
            "adults": "first_name",
            "children": "first_name_initial",
            "viewers": "role_number",
        }
    )
    expected = {"adults": "first_name", "children": "first_name_initial", "viewers": "role_number"}
    assert display_style(policy, role, kind) == expected[style]
    assert display_style(DEFAULT_POLICY, SessionRole.VIEWER, kind) == "role_number"


# -- properties --------------------------------------------------------------------------------


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


_letters = st.characters(categories=["Lu", "Ll", "Lo"])
_word = st.text(_letters, min_size=1, max_size=12)


@given(
    first=_word,
    middles=st.lists(_word, max_size=2),
    surname=st.text(_letters, min_size=2, max_size=15),
    role=st.sampled_from(list(SessionRole)),
    style=st.sampled_from(["first_name_initial", "first_name", "role_number"]),
    ordinal=st.integers(min_value=1, max_value=500),
)
def test_display_name_never_contains_surname_beyond_initial(
    first: str,
    middles: list[str],
    surname: str,
    role: SessionRole,
    style: NameStyle,
    ordinal: int,
) -> None:
    first, surname = _nfc(first), _nfc(surname)
    middles = [_nfc(m) for m in middles]
    name = " ".join([first, *middles, surname])
    person = guardian(name=name)
    shown = display_name(person, role, style, ordinal)
    # Only the first given name and, at most, the first letter of the surname are shown.
    if style == "first_name_initial":
        assert shown == f"{first} {surname[0]}."
    elif style == "first_name":
        assert shown == first
    else:
        assert re.fullmatch(r"(Tutor|Observer|Student|Guardian|Viewer) \d+", shown)
    if surname not in first:
        assert surname not in shown
    for middle in middles:
        if middle not in first and middle not in surname[:1]:
            assert middle not in shown
