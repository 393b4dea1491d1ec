"""Phone numbers: parsing what users type, the E.164 form we store, the region a number
belongs to, and the masked and hashed forms that are all logs and counters ever see."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

import phonenumbers

# The region phonenumbers gives numbers that belong to no country (+800, +870, +882...).
NON_GEOGRAPHIC = phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY

# Digits, spaces and the usual punctuation of written numbers; anything longer than this is
# not a phone number and is not worth handing to the parser.
_MAX_INPUT = 40


@dataclass(frozen=True, slots=True)
class PhoneNumber:
    """A valid number in E.164 form (`+447400123123`) with its country calling code and its
    region: the ISO 3166 alpha-2 code phonenumbers reports (`GB`; `JE` for Jersey's +44 7797,
    `JM` for +1 876), or `NON_GEOGRAPHIC`."""

    e164: str
    country_code: int
    region: str

    @property
    def digits(self) -> str:
        """E.164 without the `+`: what Vonage's `to` field takes."""
        return self.e164[1:]

    @property
    def masked(self) -> str:
        """A form safe for logs: `+44******123`."""
        return mask(self.e164)


def parse(text: str) -> PhoneNumber | None:
    """The number a user typed, in any common international form, or None if it is not a
    valid number. `00` is read as the international prefix; a number without a country code
    is refused, since we cannot know which country the user means."""
    raw = text.strip()
    if not raw or len(raw) > _MAX_INPUT:
        return None
    if not all(ch.isdigit() or ch in "+ -().\u00a0/" for ch in raw):
        return None
    compact = "".join(ch for ch in raw if ch.isdigit() or ch == "+")
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    elif not compact.startswith("+"):
        # Telegram's shared contacts carry the number without its `+`.
        compact = "+" + compact
    if compact.count("+") != 1:
        return None
    try:
        number = phonenumbers.parse(compact, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    digits = e164[1:]
    if not (7 <= len(digits) <= 15 and digits[0] != "0"):
        # Valid for phonenumbers but not E.164 as Verify takes it (7 to 15 digits).
        return None
    return PhoneNumber(
        e164=e164,
        country_code=int(number.country_code or 0),
        region=phonenumbers.region_code_for_number(number) or NON_GEOGRAPHIC,
    )


def parse_e164(e164: str) -> PhoneNumber:
    """A number we stored ourselves (already valid E.164)."""
    number = parse(e164)
    if number is None:
        raise ValueError("not a valid stored E.164 number")
    return number


def is_region(code: str) -> bool:
    """Whether `code` is an ISO 3166 alpha-2 region phonenumbers knows numbers of (`JM`)."""
    return code in phonenumbers.SUPPORTED_REGIONS


def region_calling_code(region: str) -> int:
    """The country calling code of a region (`JM`: 1; 0 for a region phonenumbers does not
    know)."""
    return int(phonenumbers.country_code_for_region(region))


def pretty(e164: str) -> str:
    """The international written form for people: `+44 7400 123123`."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def mask(e164: str) -> str:
    """Keep the country code and the last three digits: `+44******123`. The number of stars
    is fixed, so the mask does not tell the number's length either."""
    try:
        country = str(phonenumbers.parse(e164, None).country_code)
    except phonenumbers.NumberParseException:
        return "+******"
    digits = e164.lstrip("+")
    if len(digits) < len(country) + 6:
        return f"+{country}******"
    return f"+{country}******{digits[-3:]}"


def number_hash(e164: str, *, key: bytes) -> str:
    """A keyed hash of a number, so counters and records can be matched without keeping it."""
    return hmac.new(key, e164.encode(), hashlib.sha256).hexdigest()
