"""People's names as nicknames (RFC 8266) and look-alikes (UTS #39): tables and properties."""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.domain import names
from gateway.domain.errors import ErrorCode, Refusal
from gateway.domain.masking import (
    reserved_titles,
    session_display_name,
    validate_person_name,
)
from gateway.domain.models import SessionRole
from gateway.domain.names import (
    check_person_name,
    distinct_display_name,
    grapheme_count,
    lookalike_key,
    looks_like_reserved,
    single_script,
    skeleton,
)
from gateway.domain.policy import PolicyError, parse_policy
from gateway.domain.policy_text import render_policy

from .factories import DEFAULT_POLICY, DEFAULT_POLICY_TEXT, child, make_policy, staff

RESERVED = reserved_titles(DEFAULT_POLICY)
YAMADA_HANAKO = "\u5c71\u7530 \u82b1\u5b50"
YAMADA_HANAKO_KANA = "\u5c71\u7530 \u306f\u306a\u3053"
ANNA_CYRILLIC = "\u0410\u043d\u043d\u0430"
DIMITRA_GREEK = "\u0394\u03ae\u03bc\u03b7\u03c4\u03c1\u03b1"
RAM_DEVANAGARI = "\u0938\u094d\u0924\u0947 \u0930\u093e\u092e"
TEACHER_CYRILLIC = "\u0422\u0435\u0430\u0441\u04bb\u0435\u0433"  # Т е а с һ е г
SASHA_CYRILLIC = "\u0405\u0430\u0455\u04bb\u0430"  # Ѕ а ѕ һ а


def refused(name: str, reserved: tuple[str, ...] = RESERVED) -> str:
    with pytest.raises(Refusal) as caught:
        check_person_name(name, reserved)
    assert caught.value.code is ErrorCode.NAME_INVALID
    return caught.value.message


# -- accepted names, as stored -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        pytest.param("Sam Rivers", "Sam Rivers", id="plain"),
        pytest.param("  Sam   Rivers ", "Sam Rivers", id="spaces-collapsed-and-trimmed"),
        pytest.param("Se\u0301amus", "S\u00e9amus", id="nfc"),
        pytest.param("\uff33\uff41\uff4d", "Sam", id="full-width-folded"),
        pytest.param(
            "\u5c71\u7530\u3000\u82b1\u5b50", "\u5c71\u7530 \u82b1\u5b50", id="wide-space"
        ),
        pytest.param(
            "\u5c71\u7530 \u306f\u306a\u3053", "\u5c71\u7530 \u306f\u306a\u3053", id="jpan"
        ),
        pytest.param("Tanaka \u5c71\u7530", "Tanaka \u5c71\u7530", id="latin-with-han"),
        pytest.param("\uae40\ubbfc\uc900", "\uae40\ubbfc\uc900", id="hangul"),
        pytest.param("\u0645\u062d\u0645\u062f", "\u0645\u062d\u0645\u062f", id="arabic"),
        pytest.param(ANNA_CYRILLIC, ANNA_CYRILLIC, id="cyrillic"),
        pytest.param(
            "\u0394\u03ae\u03bc\u03b7\u03c4\u03c1\u03b1",
            "\u0394\u03ae\u03bc\u03b7\u03c4\u03c1\u03b1",
            id="greek",
        ),
        pytest.param(
            "\u0938\u094d\u0924\u0947 \u0930\u093e\u092e",
            "\u0938\u094d\u0924\u0947 \u0930\u093e\u092e",
            id="devanagari",
        ),
        pytest.param("Nguy\u1ec5n V\u0103n", "Nguy\u1ec5n V\u0103n", id="vietnamese-two-marks"),
        pytest.param("e\u0301\u0302\u0303\u0304", "\u00e9\u0302\u0303\u0304", id="four-marks"),
        pytest.param("\uff7b\uff91", "\u30b5\u30e0", id="half-width-katakana-folded"),
        pytest.param("St\uff0e John", "St. John", id="full-width-stop-folded"),
        pytest.param("Sam Host", "Sam Host", id="title-as-surname"),
        pytest.param("Hosta", "Hosta", id="title-inside-a-word"),
        pytest.param("x" * 100, "x" * 100, id="100-clusters"),
        pytest.param("a\u0301" * 100, "\u00e1" * 100, id="100-clusters-composed"),
    ],
)
def test_accepted_names_are_stored_enforced(raw: str, stored: str) -> None:
    assert check_person_name(raw, RESERVED) == stored


# -- refused names, each with the rule that failed ---------------------------------------------


@pytest.mark.parametrize(
    ("raw", "rule"),
    [
        # invisible, ignorable, format, bidi
        pytest.param("Sa\u034fm", names.INVISIBLE, id="U+034F-grapheme-joiner"),
        pytest.param("\u3164", names.INVISIBLE, id="U+3164-hangul-filler-alone"),
        pytest.param("Sam\u3164", names.INVISIBLE, id="U+3164-hangul-filler"),
        pytest.param("Sam\u115f", names.INVISIBLE, id="U+115F-choseong-filler"),
        pytest.param("Sam\u1160", names.INVISIBLE, id="U+1160-jungseong-filler"),
        pytest.param("Sam\uffa0", names.INVISIBLE, id="U+FFA0-halfwidth-filler"),
        pytest.param("Sa\u200bm", names.INVISIBLE, id="U+200B-zero-width-space"),
        pytest.param("Sa\u200cm", names.INVISIBLE, id="U+200C-zwnj"),
        pytest.param("Sa\u200dm", names.INVISIBLE, id="U+200D-zwj"),
        pytest.param("\u0915\u094d\u200d\u0937", names.INVISIBLE, id="zwj-after-virama"),
        pytest.param("Sam\u202eSREVIR", names.INVISIBLE, id="U+202E-rlo"),
        pytest.param("Sam\u2066x", names.INVISIBLE, id="U+2066-isolate"),
        pytest.param("Sam\u200e", names.INVISIBLE, id="U+200E-lrm"),
        pytest.param("\ufeffSam", names.INVISIBLE, id="U+FEFF-bom"),
        pytest.param("Sa\u2060m", names.INVISIBLE, id="U+2060-word-joiner"),
        pytest.param("Sam\u180e", names.INVISIBLE, id="U+180E-mongolian-vowel-separator"),
        pytest.param("Sam\u00ad", names.INVISIBLE, id="U+00AD-soft-hyphen"),
        pytest.param("Sam\u061c", names.INVISIBLE, id="U+061C-arabic-letter-mark"),
        pytest.param("Sam\u17b4", names.INVISIBLE, id="U+17B4-khmer-inherent-vowel"),
        pytest.param("Sam\u2062", names.INVISIBLE, id="U+2062-invisible-times"),
        pytest.param("Sam\ufe0f", names.INVISIBLE, id="U+FE0F-variation-selector"),
        pytest.param("Sam\U000e0041", names.INVISIBLE, id="U+E0041-tag-letter"),
        # control
        pytest.param("Sam\nRivers", names.CONTROL, id="newline"),
        pytest.param("Sam\tRivers", names.CONTROL, id="tab"),
        pytest.param("Sam\x00", names.CONTROL, id="nul"),
        pytest.param("Sam\x85", names.CONTROL, id="next-line"),
        pytest.param("Sam\u2028Rivers", names.CONTROL, id="line-separator"),
        # characters
        pytest.param("Sam\u00a0Rivers", names.CHARACTERS, id="no-break-space"),
        pytest.param("Sam1", names.CHARACTERS, id="digit"),
        pytest.param("Sam \u2168", names.CHARACTERS, id="roman-numeral"),
        pytest.param("Sam\u00b2", names.CHARACTERS, id="superscript-two"),
        pytest.param("Sam \U0001f600", names.CHARACTERS, id="emoji"),
        pytest.param("Sam <b>", names.CHARACTERS, id="markup"),
        pytest.param("Sam\ue000", names.CHARACTERS, id="private-use"),
        pytest.param("Sam\u2800", names.CHARACTERS, id="braille-blank"),
        pytest.param("Sam\u115a", names.CHARACTERS, id="archaic-jamo-is-not-a-filler"),
        pytest.param("Sam\uff11", names.CHARACTERS, id="full-width-digit"),
        pytest.param("'-.", names.NO_LETTER, id="no-letter"),
        pytest.param("", names.EMPTY, id="empty"),
        pytest.param("   ", names.EMPTY, id="spaces"),
        # marks and length
        pytest.param("Zalgo" + "\u0301" * 100, names.TOO_MANY_MARKS, id="hundred-accents"),
        pytest.param("e\u0301\u0302\u0303\u0304\u0305", names.TOO_MANY_MARKS, id="five-marks"),
        pytest.param("e\u0301\u0301", names.REPEATED_MARK, id="same-mark-twice"),
        pytest.param("x" * 101, names.TOO_LONG, id="101-clusters"),
        pytest.param("q\u0301\u0302\u0303" * 60, names.TOO_LONG, id="over-200-code-points"),
        pytest.param("x" * 5000, names.TOO_LONG, id="huge"),
        # mixed scripts
        pytest.param("S\u0430m", names.MIXED_SCRIPTS, id="latin-cyrillic-a"),
        pytest.param("\u03a3am", names.MIXED_SCRIPTS, id="latin-greek-sigma"),
        pytest.param(
            "Sam \u0410\u043d\u043d\u0430", names.MIXED_SCRIPTS, id="latin-cyrillic-words"
        ),
        pytest.param("Sam \u00b5", names.MIXED_SCRIPTS, id="micro-sign-becomes-greek"),
        pytest.param("Ali \u0639\u0644\u064a", names.MIXED_SCRIPTS, id="latin-arabic"),
        # reserved titles and their look-alikes
        pytest.param("Teacher", names.RESERVED, id="teacher"),
        pytest.param("host", names.RESERVED, id="host-lower-case"),
        pytest.param("Safeguarding Lead", names.RESERVED, id="safeguarding-lead"),
        pytest.param("Safeguarding-Lead", names.RESERVED, id="safeguarding-lead-hyphen"),
        pytest.param("D.S.L.", names.RESERVED, id="dsl-with-stops"),
        pytest.param("Host Smith", names.RESERVED, id="begins-with-title"),
        pytest.param("Safeguarding Lead Jones", names.RESERVED, id="begins-with-two-word-title"),
        pytest.param("H0st", names.RESERVED, id="zero-for-o"),
        pytest.param("\uff28\uff2f\uff33\uff34", names.RESERVED, id="full-width"),
        pytest.param("H\u043est", names.RESERVED, id="cyrillic-o"),
        pytest.param("\u0397OST", names.RESERVED, id="greek-eta"),
        pytest.param("\u0422\u0435\u0430cher", names.RESERVED, id="cyrillic-tea-cher"),
        pytest.param(
            "\u0422\u0435\u0430\u0441\u04bb\u0435\u0433", names.RESERVED, id="all-cyrillic"
        ),
        pytest.param("H\u00f4st", names.RESERVED, id="accented"),
        pytest.param("Student", names.RESERVED, id="gateway-label"),
        pytest.param("Viewer", names.RESERVED, id="gateway-label-viewer"),
    ],
)
def test_refused_names_say_which_rule_failed(raw: str, rule: str) -> None:
    message = refused(raw)
    assert message == rule
    assert message.isprintable()
    if raw.strip():
        assert raw.strip() not in message


def test_reserved_titles_come_from_the_policy() -> None:
    """A title the policy adds is refused; one it drops is accepted again."""
    custom = make_policy(names={"reserved": ["Coach", "Teacher"]})
    with pytest.raises(Refusal):
        validate_person_name("C\u043e\u0430ch Carter", custom)  # Cyrillic o and a
    assert validate_person_name("Coach Carter", DEFAULT_POLICY) == "Coach Carter"
    assert validate_person_name("Moderator", custom) == "Moderator"
    with pytest.raises(Refusal):
        validate_person_name("Moderator", DEFAULT_POLICY)
    # The gateway's own labels stay reserved whatever the policy lists.
    with pytest.raises(Refusal):
        validate_person_name("Tutor", make_policy(names={"reserved": []}))


@pytest.mark.parametrize(
    ("reserved", "reason"),
    [
        pytest.param('["Host", "host"]', "listed twice", id="duplicate"),
        pytest.param('[""]', "1 to 64", id="empty"),
        pytest.param('["Ho\\nst"]', "printable", id="control"),
        pytest.param('["123"]', "no letter", id="no-letter"),
        pytest.param('"Host"', "tuple", id="not-a-list"),
    ],
)
def test_policy_names_section_is_validated(reserved: str, reason: str) -> None:
    text, replaced = re.subn(
        r"^reserved = \[.*?\]$",
        lambda _: f"reserved = {reserved}",
        DEFAULT_POLICY_TEXT,
        flags=re.S | re.M,
    )
    assert replaced == 1
    with pytest.raises(PolicyError) as caught:
        parse_policy(text)
    assert caught.value.key.startswith("names.reserved")
    assert reason in caught.value.reason


def test_default_policy_reserves_the_observed_titles_and_says_so() -> None:
    for title in ("Teacher", "Host", "Safeguarding Lead", "DSL", "Admin", "Moderator"):
        assert title in DEFAULT_POLICY.names.reserved
        assert f'"{title}"' in render_policy(DEFAULT_POLICY)
    coach = render_policy(make_policy(names={"reserved": ["Coach"]}))
    assert '"Coach", "Tutor", "Observer", "Student", "Guardian", "Viewer"' in coach
    assert '"Teacher"' not in coach


# -- look-alikes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("one", "other"),
    [
        pytest.param("Host", "\uff28\uff4f\uff53\uff54", id="full-width"),
        pytest.param("Host", "H\u043est", id="cyrillic-o"),
        pytest.param("Host", "H0ST", id="zero-and-case"),
        pytest.param("Host", "\u0397\u039f\u0405\u03a4", id="greek-and-cyrillic-capitals"),
        pytest.param("Sasha", SASHA_CYRILLIC, id="whole-script-cyrillic"),
        pytest.param("Sam R.", "SAM R", id="case-and-stop"),
        pytest.param("Zoe", "Zo\u00eb", id="accent"),
        pytest.param("Anne-Marie", "Anne Marie", id="hyphen"),
        pytest.param("m", "rn", id="rn-m"),
    ],
)
def test_look_alikes_share_a_key(one: str, other: str) -> None:
    assert lookalike_key(one) == lookalike_key(other)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        pytest.param("Sam", "Sām Rivers", id="more-letters"),
        pytest.param("Sam R.", "Sam T.", id="other-initial"),
        pytest.param("Host", "Hosta", id="longer"),
        pytest.param("Student 1", "Student 2", id="numbers"),
        pytest.param("\u5c71\u7530", "\u5ddd\u7530", id="han"),
    ],
)
def test_different_names_have_different_keys(one: str, other: str) -> None:
    assert lookalike_key(one) != lookalike_key(other)


def test_skeleton_maps_to_prototypes() -> None:
    assert skeleton("p\u0430ypal") == skeleton("paypal")
    assert skeleton(SASHA_CYRILLIC) == skeleton("Sasha")
    assert skeleton("Sam") == "Sarn"  # 'm' and 'rn' look alike: both go to the prototype


@pytest.mark.parametrize(
    ("text", "single"),
    [
        ("Sam", True),
        ("\u0410\u043d\u043d\u0430", True),
        ("S\u0430m", False),
        ("\u5c71\u7530 \u306f\u306a\u3053 Hana", True),
        ("\uae40 Kim \u91d1", True),
        ("\uae40 \u3042", False),  # Hangul with Hiragana: no writing system uses both
        ("Anna-Maria O'Neil.", True),
    ],
)
def test_single_script(text: str, single: bool) -> None:
    assert single_script(text) is single


def test_looks_like_reserved_checks_the_first_words_only() -> None:
    assert looks_like_reserved("Head Teacher Jones", ("Head Teacher",))
    assert not looks_like_reserved("Jones Head Teacher", ("Head Teacher",))
    assert not looks_like_reserved("Host", ())


# -- distinct display names in a session -------------------------------------------------------


@pytest.mark.parametrize(
    ("candidate", "taken", "shown"),
    [
        pytest.param("Sam R.", [], "Sam R.", id="alone"),
        pytest.param("Sam R.", ["Ada H.", "Tina T."], "Sam R.", id="nobody-alike"),
        pytest.param("Sam R.", ["Sam R."], "Sam R. (2)", id="same"),
        pytest.param("Sam R.", ["SAM R"], "Sam R. (2)", id="case"),
        pytest.param("Sam R.", ["Sam R.", "Sam R. (2)"], "Sam R. (3)", id="third"),
        pytest.param(
            "\u0405\u0430\u0455\u04bb\u0430 \u041a.",
            ["Sasha K."],
            "\u0405\u0430\u0455\u04bb\u0430 \u041a. (2)",
            id="cyrillic",
        ),
        pytest.param("Zo\u00eb", ["Zoe"], "Zo\u00eb (2)", id="accent"),
    ],
)
def test_distinct_display_name(candidate: str, taken: list[str], shown: str) -> None:
    assert distinct_display_name(candidate, taken) == shown


def test_session_display_name_is_distinct_and_never_a_title() -> None:
    sam = child(name="Sam Rivers")
    sam_too = child(name="Sam Rowe", id="child_2")
    first = session_display_name(sam, SessionRole.CHILD, DEFAULT_POLICY, 1, [])
    second = session_display_name(sam_too, SessionRole.CHILD, DEFAULT_POLICY, 2, [first])
    assert (first, second) == ("Sam R.", "Sam R. (2)")
    # Registered before "Coach" was reserved: shown by role and number instead.
    coach = staff(name="Coach Carter")
    policy = make_policy(names={"reserved": ["Coach"]})
    assert session_display_name(coach, SessionRole.OBSERVER, policy, 2, []) == "Observer 2"
    assert session_display_name(coach, SessionRole.OBSERVER, DEFAULT_POLICY, 2, []) == "Coach C."


def test_display_name_of_a_very_long_first_name_fits_the_roster() -> None:
    long_first = "a\u0301\u0302" * 99
    shown = session_display_name(
        child(name=f"{long_first} Rivers"), SessionRole.CHILD, DEFAULT_POLICY, 1, []
    )
    assert grapheme_count(shown) <= 43 and len(shown) <= 120 - len(" (999)")
    assert shown.endswith(" R.")


# -- properties --------------------------------------------------------------------------------

_any_text = st.text(max_size=40)
_name_like = st.text(
    st.characters(categories=["Lu", "Ll", "Lo", "Mn", "Zs", "Cf", "Cc", "Nd", "Po", "Pd"]),
    max_size=30,
)


def _check(text: str) -> str | None:
    try:
        return check_person_name(text, RESERVED)
    except Refusal as refusal:
        assert refusal.code is ErrorCode.NAME_INVALID
        assert refusal.message.isprintable()
        if len(text.strip()) > 2:
            assert text.strip() not in refusal.message
        return None


@given(st.one_of(_any_text, _name_like))
def test_an_accepted_name_is_clean_and_stable(text: str) -> None:
    stored = _check(text)
    if stored is None:
        return
    assert check_person_name(stored, RESERVED) == stored  # idempotent
    assert unicodedata.is_normalized("NFKC", stored)
    assert stored == stored.strip() and "  " not in stored
    assert 1 <= grapheme_count(stored) <= names.MAX_NAME_CLUSTERS
    assert len(stored) <= names.MAX_NAME_CODE_POINTS
    assert any(unicodedata.category(c)[0] == "L" for c in stored)
    for char in stored:
        assert unicodedata.category(char) not in ("Cc", "Cf", "Zl", "Zp", "Co", "Cn", "Cs")
        assert char == " " or unicodedata.category(char) != "Zs"
    assert single_script(stored)
    assert not looks_like_reserved(stored, RESERVED)


@given(st.text(st.characters(categories=["Ll", "Lu"], max_codepoint=0x7F), min_size=1))
def test_a_cyrillic_or_greek_look_alike_has_the_same_key(latin: str) -> None:
    swaps = str.maketrans("aceopxyABCEHKMOPTX", "асеорхуАВСЕНКМОРТХ")
    assert lookalike_key(latin.translate(swaps)) == lookalike_key(latin)
    greek = str.maketrans("ABEHIKMNOPTXYZ", "ΑΒΕΗΙΚΜΝΟΡΤΧΥΖ")
    assert lookalike_key(latin.translate(greek)) == lookalike_key(latin)


@given(_any_text, st.lists(_any_text, max_size=8))
def test_a_distinct_display_name_looks_like_nobody_on_the_roster(
    candidate: str, taken: list[str]
) -> None:
    shown = distinct_display_name(candidate, taken)
    assert shown.startswith(candidate)
    assert lookalike_key(shown) not in {lookalike_key(t) for t in taken}
    if lookalike_key(candidate) not in {lookalike_key(t) for t in taken}:
        assert shown == candidate
