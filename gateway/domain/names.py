"""People's names, checked as nicknames (RFC 8266, PRECIS) and for look-alikes (UTS #39).

A child, a member of staff or a guardian is shown to others by a name derived from the one
registered (masking.py). A name that is invisible, that stacks a hundred accents, that mixes
alphabets so it reads as another name, or that reads as a role title ("Teacher", "Host") lets
someone pass for someone else in front of children. So a registered name is:

1. enforced with the PRECIS Nickname profile (RFC 8266, `precis-i18n`): width and
   compatibility forms folded by NFKC (full-width "ＨＯＳＴ" becomes "HOST"), spaces collapsed
   and trimmed; control characters, default-ignorable and invisible code points (U+034F,
   U+200B, U+202E and the other bidi controls, Hangul fillers U+115F/U+1160/U+3164/U+FFA0 ...)
   and unassigned code points refused;
2. limited to letters, combining marks, spaces, apostrophes, hyphens and full stops, before and
   after that mapping: of the non-ASCII spaces only the full-width one is folded, the others
   (no-break, thin, ...) are refused rather than silently turned into spaces;
3. bounded: at most MAX_MARKS_PER_CLUSTER non-spacing marks on one letter and no mark repeated
   (UTS #39 section 5.4), at most MAX_NAME_CLUSTERS grapheme clusters (`regex` \\X) and
   MAX_NAME_CODE_POINTS code points (the stored column's width);
4. written in one script, or Latin with Han/Kana/Hangul/Bopomofo (UTS #39 section 5.2 "Highly
   Restrictive"), so Latin cannot be mixed with Cyrillic or Greek look-alikes;
5. not, and not beginning with, a reserved role title, compared by `lookalike_key`: case-folded
   UTS #39 confusable skeleton, so "H0st", "ＨＯＳＴ" and "Hоst" (Cyrillic o) are all "host".

Sources of the tables: the PRECIS derived properties are computed by `precis-i18n` from
Python's `unicodedata`; the confusable prototypes (confusables.txt) and the script of each
character (Scripts.txt) are the Unicode Consortium's files as shipped by
`confusable-homoglyphs`. The only hand-written lists are the few punctuation marks a name
may carry and the UTS #39 script combinations below.

Refusals are Refusal(NAME_INVALID) with a message naming the rule, never the name.
"""

from __future__ import annotations

import functools
import itertools
import unicodedata
from collections.abc import Iterable

import precis_i18n
import regex
from confusable_homoglyphs import categories, confusables  # type: ignore[import-untyped]

from gateway.domain.errors import ErrorCode, Refusal

MAX_NAME_CLUSTERS = 100  # what a reader counts as characters
MAX_NAME_CODE_POINTS = 200  # the width of the stored name column
MAX_INPUT_CODE_POINTS = 1000  # longer input is refused before any work is done on it
MAX_MARKS_PER_CLUSTER = 4  # UTS #39 5.4: "more than 4 nonspacing marks" is suspicious

_NICKNAME = precis_i18n.get_profile("NicknameCasePreserved")
_GRAPHEME = regex.compile(r"\X")
# Punctuation a name may carry besides letters, marks and spaces: apostrophes, hyphens, full stop.
_NAME_PUNCTUATION = frozenset("'\u2019-\u2010.")
_NONSPACING = frozenset({"Mn", "Me"})
# Hangul fillers as PRECIS sees them after width mapping (U+3164 and U+FFA0 become U+1160).
_HANGUL_FILLERS = frozenset({"\u115f", "\u1160"})
_IGNORED_SCRIPTS = frozenset({"COMMON", "INHERITED"})
# UTS #39 5.2 "Highly Restrictive": one script, or Latin with one of these CJK writing systems.
_HIGHLY_RESTRICTIVE = (
    frozenset({"LATIN", "HAN", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "HAN", "BOPOMOFO"}),
    frozenset({"LATIN", "HAN", "HANGUL"}),
)
_SUFFIX_LIMIT = 1000

EMPTY = "a name cannot be empty"
TOO_LONG = f"a name can be at most {MAX_NAME_CLUSTERS} characters long"
CONTROL = "a name cannot contain control characters such as line breaks or tabs"
INVISIBLE = (
    "a name cannot contain invisible or formatting characters "
    "(such as zero-width, filler or text-direction characters)"
)
UNASSIGNED = "a name cannot contain characters that Unicode has not assigned"
CHARACTERS = "a name may contain only letters, spaces, apostrophes, hyphens and full stops"
NO_LETTER = "a name must contain at least one letter"
TOO_MANY_MARKS = f"a name can have at most {MAX_MARKS_PER_CLUSTER} accents or marks on one letter"
REPEATED_MARK = "a name cannot repeat the same accent or mark on one letter"
MIXED_SCRIPTS = (
    "a name must be written in one alphabet (or Latin with Chinese, Japanese or Korean "
    "characters), so that look-alike letters such as Latin and Cyrillic cannot be mixed"
)
RESERVED = (
    "a name cannot be, or begin with, a role title (such as a staff role) "
    "or anything that looks like one"
)

# precis-i18n's reasons ("DISALLOWED/<kind>") -> which rule failed.
_PRECIS_REASONS = {
    "empty": EMPTY,
    "controls": CONTROL,
    "precis_ignorable_properties": INVISIBLE,
    "old_hangul_jamo": INVISIBLE,  # only for the Hangul fillers, see check_person_name
    "zero_width_joiner": INVISIBLE,  # PRECIS context rules failed: a join control out of place
    "zero_width_nonjoiner": INVISIBLE,
    "unassigned": UNASSIGNED,
}


def _refuse(message: str) -> Refusal:
    return Refusal(ErrorCode.NAME_INVALID, message)


def check_person_name(name: str, reserved_titles: Iterable[str] = ()) -> str:
    """The name as it is stored and shown, or Refusal(NAME_INVALID) naming the rule broken.

    The result is the PRECIS Nickname enforcement of `name` (NFKC, so also NFC; spaces
    collapsed and trimmed). `reserved_titles` are the role titles no name may be or begin with.
    """
    if len(name) > MAX_INPUT_CODE_POINTS:
        raise _refuse(TOO_LONG)
    if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in name):
        raise _refuse(CONTROL)
    try:
        enforced = _NICKNAME.enforce(name)
    except UnicodeEncodeError as exc:
        kind = str(exc.reason).removeprefix("DISALLOWED/")
        if kind == "old_hangul_jamo" and exc.object[exc.start : exc.end] not in _HANGUL_FILLERS:
            kind = "other"  # a visible archaic jamo, not a filler
        raise _refuse(_PRECIS_REASONS.get(kind, CHARACTERS)) from None
    # Join controls allowed by PRECIS in context are still invisible.
    if any(unicodedata.category(c) == "Cf" for c in enforced):
        raise _refuse(INVISIBLE)
    if looks_like_reserved(enforced, reserved_titles):
        raise _refuse(RESERVED)
    # Raw and enforced alike: only width forms are mapped (full-width "Ｓａｍ" is "Sam"); a
    # non-breaking space is refused, not silently mapped, and NFKC cannot turn a refused
    # character (a Roman numeral, a superscript digit) into letters.
    if not all(_allowed(c) or _width_form(c) for c in name) or not all(map(_allowed, enforced)):
        raise _refuse(CHARACTERS)
    if not any(unicodedata.category(c)[0] == "L" for c in enforced):
        raise _refuse(NO_LETTER)
    _check_marks(enforced)
    if len(enforced) > MAX_NAME_CODE_POINTS or grapheme_count(enforced) > MAX_NAME_CLUSTERS:
        raise _refuse(TOO_LONG)
    if not single_script(enforced):
        raise _refuse(MIXED_SCRIPTS)
    return enforced


def _allowed(char: str) -> bool:
    return unicodedata.category(char)[0] in "LM" or char == " " or char in _NAME_PUNCTUATION


def _width_form(char: str) -> bool:
    """A full-width or half-width form, which PRECIS width mapping folds to its usual form."""
    return unicodedata.decomposition(char).startswith(("<wide>", "<narrow>"))


def graphemes(text: str) -> list[str]:
    """The user-perceived characters (extended grapheme clusters, UAX #29) of `text`."""
    return list(_GRAPHEME.findall(text))


def grapheme_count(text: str) -> int:
    return len(graphemes(text))


def _check_marks(text: str) -> None:
    """UTS #39 5.4 on the NFD form: at most MAX_MARKS_PER_CLUSTER non-spacing marks on one
    letter, and never the same mark twice in a row."""
    for cluster in graphemes(unicodedata.normalize("NFD", text)):
        marks = [c for c in cluster if unicodedata.category(c) in _NONSPACING]
        if len(marks) > MAX_MARKS_PER_CLUSTER:
            raise _refuse(TOO_MANY_MARKS)
        for before, after in itertools.pairwise(cluster):
            if before == after and before in marks:
                raise _refuse(REPEATED_MARK)


def scripts_of(text: str) -> frozenset[str]:
    """The scripts (Unicode Scripts.txt names, upper case) of the characters of `text`,
    without Common (spaces, punctuation) and Inherited (combining marks)."""
    return frozenset(categories.alias(c) for c in text) - _IGNORED_SCRIPTS


def single_script(text: str) -> bool:
    """UTS #39 "Highly Restrictive": one script, or Latin with Han and Kana, Bopomofo or
    Hangul (how Japanese, Chinese and Korean names are written alongside Latin)."""
    scripts = scripts_of(text)
    return len(scripts) <= 1 or any(scripts <= allowed for allowed in _HIGHLY_RESTRICTIVE)


# -- look-alikes -------------------------------------------------------------------------------


def _strip_direction_marks(text: str) -> str:
    # confusable-homoglyphs wraps right-to-left characters in LRMs for display.
    return text.replace("\u200e", "").replace("\u200f", "")


def _confusable_pairs() -> dict[str, frozenset[str]]:
    """confusables.txt as an undirected graph: each source character is linked to its
    prototype. The prototype of a source is the only node of its star with more than one
    neighbour, or the multi-character node; a star of two single characters has no way to tell
    which is which, and either serves as the representative."""
    neighbours: dict[str, set[str]] = {}
    for key, found in confusables.confusables_data.items():
        left = _strip_direction_marks(key)
        for glyph in found:
            right = _strip_direction_marks(glyph["c"])
            if left and right and left != right:
                neighbours.setdefault(left, set()).add(right)
                neighbours.setdefault(right, set()).add(left)
    return {node: frozenset(linked) for node, linked in neighbours.items()}


_CONFUSABLE = _confusable_pairs()


@functools.lru_cache(maxsize=8192)
def _prototype(char: str) -> str:
    """The representative of `char` among the characters it is confusable with."""
    linked = _CONFUSABLE.get(char)
    if not linked or len(linked) > 1:
        return char  # not confusable, or a prototype with several look-alikes
    (other,) = linked
    if len(other) > 1 or len(_CONFUSABLE.get(other, ())) > 1:
        return other  # a source: its prototype is the star's centre
    return min(char, other)  # a star of two: a fixed choice


def skeleton(text: str) -> str:
    """The UTS #39 skeleton: NFD, each character replaced by its confusable prototype, NFD.
    Two strings with the same skeleton look alike. For comparison only, never for display."""
    mapped = []
    for char in unicodedata.normalize("NFD", text):
        prototype = _prototype(char)
        if len(prototype) > 1:
            prototype = "".join(_prototype(c) for c in prototype)
        mapped.append(prototype)
    return unicodedata.normalize("NFD", "".join(mapped))


@functools.lru_cache(maxsize=16384)  # a roster's names are compared at every enrolment
def lookalike_key(text: str) -> str:
    """What a reader takes `text` to say: compatibility-folded, skeleton and case-fold repeated
    until stable ("H0ST" -> "HOST" -> "host"), then only letters and digits, accents dropped
    ("Hôst" reads as "host" too). Equal keys mean the texts look alike."""
    key = unicodedata.normalize("NFKC", text)
    for _ in range(4):
        folded = skeleton(key).casefold()
        if folded == key:
            break
        key = folded
    return "".join(
        c for c in unicodedata.normalize("NFD", key) if unicodedata.category(c)[0] in "LN"
    )


def looks_like_reserved(name: str, reserved_titles: Iterable[str]) -> bool:
    """Whether `name`, or its first words (which are what is shown), look like a title."""
    reserved = _title_keys(tuple(reserved_titles))
    if not reserved:
        return False
    words = name.split()
    return lookalike_key(name) in reserved or any(
        lookalike_key(" ".join(words[:count])) in reserved for count in range(1, len(words))
    )


@functools.lru_cache(maxsize=64)
def _title_keys(titles: tuple[str, ...]) -> frozenset[str]:
    return frozenset(key for key in (lookalike_key(t) for t in titles) if key)


def distinct_display_name(candidate: str, taken: Iterable[str]) -> str:
    """`candidate`, or `candidate (2)`, `(3)`, ... : the first that does not look like any of
    `taken` (the display names already in the session), so two people never look the same."""
    taken_keys = {lookalike_key(name) for name in taken}
    if lookalike_key(candidate) not in taken_keys:
        return candidate
    for number in range(2, _SUFFIX_LIMIT):
        numbered = f"{candidate} ({number})"
        if lookalike_key(numbered) not in taken_keys:
            return numbered
    raise ValueError("no distinct display name left")  # a roster has far fewer people
