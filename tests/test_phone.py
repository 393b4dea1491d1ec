"""Phone numbers without the bot: what counts as a number a user typed, the E.164 form we
store, the written form users read, and the masked and hashed forms logs and counters see."""

from __future__ import annotations

import pytest

from bot.login import phone
from bot.login.phone import PhoneNumber


@pytest.mark.parametrize(
    ("typed", "e164", "country_code", "region"),
    [
        ("+44 7400 123123", "+447400123123", 44, "GB"),
        ("+447400123123", "+447400123123", 44, "GB"),
        ("0044 7400 123123", "+447400123123", 44, "GB"),  # 00: the international prefix
        ("447400123123", "+447400123123", 44, "GB"),  # a shared contact carries no `+`
        ("+44-7400-123.123", "+447400123123", 44, "GB"),
        ("+44 7400/123123", "+447400123123", 44, "GB"),
        ("+44\u00a07400\u00a0123123", "+447400123123", 44, "GB"),  # no-break spaces
        ("  +44 7400 123123\n", "+447400123123", 44, "GB"),
        ("+1 (201) 555-0123", "+12015550123", 1, "US"),
        ("+49 151 23456789", "+4915123456789", 49, "DE"),
    ],
)
def test_common_written_forms_parse_to_e164_with_the_country_code(
    typed: str, e164: str, country_code: int, region: str
) -> None:
    assert phone.parse(typed) == PhoneNumber(e164=e164, country_code=country_code, region=region)


@pytest.mark.parametrize(
    ("typed", "region"),
    [
        ("+1 876 210 1234", "JM"),  # Jamaica shares +1 with the US and Canada
        ("+1 809 555 0123", "DO"),
        ("+1 416 555 0123", "CA"),
        ("+44 7797 900123", "JE"),  # Jersey, Guernsey and the Isle of Man share +44 with the UK
        ("+44 7781 123456", "GG"),
        ("+44 7624 123456", "IM"),
        ("+881 6 1234 56789", phone.NON_GEOGRAPHIC),  # a satellite phone belongs to no country
    ],
)
def test_the_region_tells_apart_countries_that_share_a_calling_code(
    typed: str, region: str
) -> None:
    number = phone.parse(typed)
    assert number is not None
    assert number.region == region


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "   ",
        "hello",
        "07400 123123",  # national form: which country is meant cannot be known
        "+44 7400",  # too short to be a number
        "+999 1234567",  # no such country code
        "+44 7400 123123 ext 5",  # letters
        "++447400123123",
        "+44 7400 123123 +1",
        "+44 7400 123123; DROP TABLE",
        "１２３４５６７８９０",  # fullwidth digits pass isdigit() but are not a valid number
    ],
)
def test_anything_else_is_not_a_number(typed: str) -> None:
    assert phone.parse(typed) is None


def test_input_longer_than_a_written_number_is_refused_before_parsing() -> None:
    # The same valid number, padded inside with spaces to exactly 40 and then 41 characters.
    fits = "+44" + " " * (40 - len("+447400123123")) + "7400123123"
    too_long = "+44" + " " * (41 - len("+447400123123")) + "7400123123"
    assert len(fits) == 40
    assert len(too_long) == 41
    assert phone.parse(fits) is not None
    assert phone.parse(too_long) is None


def test_digits_are_e164_without_the_plus_as_vonage_takes_them() -> None:
    number = phone.parse("+44 7400 123123")
    assert number is not None
    assert number.digits == "447400123123"


def test_a_stored_number_reads_back_and_a_corrupt_one_is_an_error() -> None:
    assert phone.parse_e164("+447400123123") == PhoneNumber("+447400123123", 44, "GB")
    with pytest.raises(ValueError, match=r"not a valid stored E\.164 number"):
        phone.parse_e164("+4412")


@pytest.mark.parametrize(
    ("e164", "written"),
    [
        ("+447400123123", "+44 7400 123123"),
        ("+12015550123", "+1 201-555-0123"),
        ("", ""),  # no number known: nothing to show
        ("not a number", "not a number"),
    ],
)
def test_pretty_is_the_international_written_form_or_the_input_unchanged(
    e164: str, written: str
) -> None:
    assert phone.pretty(e164) == written


@pytest.mark.parametrize(
    ("e164", "masked"),
    [
        ("+447400123123", "+44******123"),
        ("+12015550123", "+1******123"),
        ("+4915123456789", "+49******789"),
        ("+441234", "+44******"),  # too short to show its last digits safely
        ("nonsense", "+******"),
    ],
)
def test_mask_keeps_only_the_country_code_and_the_last_three_digits(e164: str, masked: str) -> None:
    assert phone.mask(e164) == masked


def test_the_mask_does_not_tell_the_numbers_length() -> None:
    short, long = phone.mask("+4915123456"), phone.mask("+4915123456789")
    assert len(short) == len(long)


def test_a_parsed_number_masks_itself_the_same_way() -> None:
    number = phone.parse("+44 7400 123123")
    assert number is not None
    assert number.masked == phone.mask(number.e164) == "+44******123"


def test_number_hash_matches_the_same_number_and_key_and_hides_the_number() -> None:
    first = phone.number_hash("+447400123123", key=b"k1")
    assert first == phone.number_hash("+447400123123", key=b"k1")
    assert first != phone.number_hash("+447400123124", key=b"k1")
    assert first != phone.number_hash("+447400123123", key=b"k2")
    assert "447400123123" not in first
    assert len(first) == 64
    assert set(first) <= set("0123456789abcdef")
