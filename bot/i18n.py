"""The languages the bot speaks, and the sentences of `bot.texts` in one of them.

The sentences themselves live in `bot.texts` (English, the source); their translations live
in one gettext catalog per language, `bot/locales/<code>/LC_MESSAGES/bot.po`, managed with
Babel (`make translations`, README "Adding a sentence / adding a language"). A catalog is
compiled when first used: from its `bot.mo` when `pybabel compile` made one that is not older
than the `.po`, else from the `.po` itself in memory, so a fresh clone needs no build step and
a stale `.mo` is never read.

The language travels with the update (`BotContext.language`, `Texts`), never in a global:
two chats in different languages handled at the same moment each get their own.
"""

from __future__ import annotations

import functools
import gettext
import io
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from babel import Locale
from babel.dates import format_datetime, format_time
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from bot.clock import utcnow

logger = logging.getLogger(__name__)

LOCALES_DIR = Path(__file__).parent / "locales"
DOMAIN = "bot"


@dataclass(frozen=True, slots=True)
class Language:
    """A language the bot speaks: its catalog's code (`pt_BR`), its own name (on the
    /language buttons) and the Babel locale its dates and times follow."""

    code: str
    name: str
    dates: str

    @property
    def telegram_code(self) -> str:
        """The two-letter code Telegram's setMyCommands takes (`pt` for `pt_BR`)."""
        return self.code.split("_")[0].lower()


SOURCE = "en"
# Adding a language: its catalog under bot/locales and one line here (README).
LANGUAGES: tuple[Language, ...] = (
    # The source: British conventions, like its example number and the en-gb voice.
    Language("en", "English", "en_GB"),
    Language("es", "Español", "es"),
    Language("pt_BR", "Português (Brasil)", "pt_BR"),
    Language("ru", "Русский", "ru"),
    Language("de", "Deutsch", "de"),
)
_BY_CODE = {language.code: language for language in LANGUAGES}


def supported(code: str | None) -> str | None:
    """`code` if it is one of the bot's languages (as stored by /language), else None."""
    return code if code in _BY_CODE else None


def from_telegram(code: str | None) -> str:
    """The bot's language for a Telegram `language_code` (an IETF tag: `pt-br`, `es-419`,
    `de`): the language with that exact tag, else the first with its primary subtag (`pt` is
    Portuguese (Brazil)), else English."""
    if not code:
        return SOURCE
    tag = code.replace("_", "-").lower()
    for language in LANGUAGES:
        if language.code.replace("_", "-").lower() == tag:
            return language.code
    primary = tag.split("-")[0]
    for language in LANGUAGES:
        if language.telegram_code == primary:
            return language.code
    return SOURCE


@dataclass(frozen=True, slots=True)
class Plural:
    """A sentence with a count: its singular and plural source forms."""

    singular: str
    plural: str


def _catalog(code: str) -> gettext.NullTranslations:
    """The compiled catalog of a language (the source: no catalog, the sentences as written)."""
    if code == SOURCE:
        return gettext.NullTranslations()
    folder = LOCALES_DIR / code / "LC_MESSAGES"
    po, mo = folder / f"{DOMAIN}.po", folder / f"{DOMAIN}.mo"
    if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
        with mo.open("rb") as compiled:
            return gettext.GNUTranslations(compiled)
    with po.open("rb") as source:
        catalog = read_po(source, locale=code, domain=DOMAIN)
    buffer = io.BytesIO()
    # Fuzzy entries are not translations yet: the source sentence is shown instead.
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


class Texts:
    """The sentences of `bot.texts` in one language, filled in: `t(texts.VERIFIED,
    number=...)`, `t.plural(texts.TRIES, n)`, `t.time(moment)`."""

    __slots__ = ("_catalog", "_dates", "language")

    def __init__(self, language: Language) -> None:
        self.language = language.code
        self._catalog = _catalog(language.code)
        self._dates = Locale.parse(language.dates)

    def __call__(self, message: str, /, **values: object) -> str:
        """`message` (a sentence of `bot.texts`) in this language, placeholders filled in."""
        text = self._catalog.gettext(message)
        return text.format(**values) if values else text

    def plural(self, message: Plural, n: int, /, **values: object) -> str:
        """The form of a counted sentence for `n` in this language (`{n}` filled in)."""
        text = self._catalog.ngettext(message.singular, message.plural, n)
        return text.format(n=n, **values)

    def time(self, moment: datetime) -> str:
        """A moment for people, in UTC, as this language writes it: the time of day, with
        the date when it is not today."""
        moment = moment.astimezone(UTC)
        if moment.date() == utcnow().date():
            return format_time(moment, "medium", tzinfo=UTC, locale=self._dates)
        return format_datetime(moment, "medium", tzinfo=UTC, locale=self._dates)


@functools.cache
def texts_for(code: str) -> Texts:
    """The sentences in a language (English for a code the bot does not speak)."""
    return Texts(_BY_CODE.get(code) or _BY_CODE[SOURCE])


ENGLISH = texts_for(SOURCE)
