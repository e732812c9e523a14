"""The order domain's text and ICC rules, without I/O: what is refused, and what is stored."""

from __future__ import annotations

import pytest
from mport_shared.events import OrderKind
from portal_api.orders.domain import (
    clean_details,
    clean_text,
    details_problem,
    fingerprint,
    icc_problem,
    luhn_valid,
    text_problem,
)

VALID_ICC = "8947080012345678900"
FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


@pytest.mark.parametrize(
    ("text", "code_point"),
    [
        ("Kari\ud800", "U+D800"),  # a lone surrogate, as json.loads makes of "\ud800"
        ("Kari\x00", "U+0000"),
        ("Kari\x1b[31m", "U+001B"),
        ("Kari\x7f", "U+007F"),
        ("Kari\x85", "U+0085"),  # NEL: a C1 control that str.split() would take for whitespace
        ("Kari\x0b", "U+000B"),
        ("Storgata\u202e1", "U+202E"),  # right-to-left override
        ("\u2066Oslo\u2069", "U+2066"),  # left-to-right isolate
        ("Kari\u200bNordmann", "U+200B"),  # zero-width space
        ("\ufeffKari", "U+FEFF"),  # byte order mark
        ("Kari\ue000", "U+E000"),  # private use
        ("Kari\U000e0001", "U+E0001"),  # language tag
        ("Kari\U0010ffff", "U+10FFFF"),  # a noncharacter, unassigned
    ],
)
def test_controls_format_characters_surrogates_and_private_use_are_refused(
    text: str, code_point: str
) -> None:
    problem = text_problem(text)
    assert problem is not None
    assert code_point in problem


@pytest.mark.parametrize(
    "text",
    [
        "Kari Nordmann",
        "Åse Ødegård-Æsøy",
        "Zoë O'Brien, c/o Müller & Søn",
        "Ολυμπία Παπαδοπούλου",
        "Дмитрий",
        "محمد",  # right-to-left letters are fine; only the invisible controls are not
        "李小龙",
        "Storgata 1, 0155 Oslo (bakgård) #3; «port» – nr. 2/4",
        "Storgata 1,\n0155\tOslo\r\n",  # typed or pasted into the address box: collapsed, not refused
        "Kari\u00a0Nordmann\u3000",  # no-break and ideographic spaces: collapsed
        "",
    ],
)
def test_letters_of_any_script_spaces_and_punctuation_are_taken(text: str) -> None:
    assert text_problem(text) is None


def test_the_problem_names_the_position_of_the_first_refused_character() -> None:
    assert text_problem("ab\x00\u202e") == "character 3 is U+0000, a control character, which is not allowed"


def test_details_problem_names_the_detail_and_can_always_be_encoded() -> None:
    value = details_problem({"delivery_name": "Kari", "delivery_address": "Storgata\u202e 1"})
    assert value is not None
    assert "'delivery_address'" in value
    assert "U+202E" in value
    key = details_problem({"icc\ud800": "1"})
    assert key is not None
    assert "detail name" in key
    key.encode()  # the name is shown escaped (repr), never as the surrogate itself
    assert details_problem({"delivery_name": "Kari Nordmann", "x": 1}) is None  # types are pydantic's


def test_clean_text_normalises_to_nfc_and_collapses_whitespace() -> None:
    decomposed = "A\u030ase  \u00a0Berg\n"
    assert clean_text(decomposed) == "Åse Berg"
    assert clean_text(decomposed) == clean_text("Åse Berg")


def test_cleaned_details_compare_equal_for_the_same_text_however_composed() -> None:
    composed = clean_details(OrderKind.SIM_ORDER, {"delivery_name": "Åse Berg", "delivery_address": "Ås"})
    decomposed = clean_details(
        OrderKind.SIM_ORDER, {"delivery_name": "A\u030ase  Berg", "delivery_address": "A\u030as"}
    )
    assert composed == decomposed
    assert fingerprint("bestill-sim", composed) == fingerprint("bestill-sim", decomposed)


def test_an_icc_is_cleaned_of_every_space() -> None:
    cleaned = clean_details(OrderKind.SIM_ACTIVATION, {"icc": " 8947 0800\u00a01234 5678 900 "})
    assert cleaned == {"icc": VALID_ICC}
    assert icc_problem(cleaned["icc"]) is None


@pytest.mark.parametrize("digits", [FULLWIDTH, ARABIC_INDIC], ids=["fullwidth", "arabic-indic"])
def test_an_icc_in_other_digits_than_0_to_9_is_refused(digits: dict[int, str]) -> None:
    icc = VALID_ICC.translate(digits)
    assert icc.isdigit()  # what Python's \d and int() would have taken
    assert icc_problem(icc) == "The SIM card's ICC number must be written with the digits 0-9 only."
    mixed = VALID_ICC[:-1] + VALID_ICC[-1].translate(digits)
    assert icc_problem(mixed) == "The SIM card's ICC number must be written with the digits 0-9 only."
    assert not luhn_valid(icc)


def test_the_icc_rules_that_were_there_stay() -> None:
    assert icc_problem(VALID_ICC) is None
    assert icc_problem("8947080012345678901") == "The SIM card's ICC number has a wrong check digit."
    assert icc_problem("12345") == "The SIM card's ICC number must be 19 or 20 digits."
    assert icc_problem("89470800123456789OO") == "The SIM card's ICC number must be 19 or 20 digits."
    assert icc_problem(VALID_ICC + "\n") == "The SIM card's ICC number must be 19 or 20 digits."
