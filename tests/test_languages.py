"""The bot speaks the user's language: the catalogs are complete, whole logins happen in
Spanish and Russian (replies, buttons, menus and the code's SMS), /language chooses one that
lasts until /forget, and a language the bot does not speak is English."""

from __future__ import annotations

import asyncio
import re
import string
from collections.abc import Callable
from pathlib import Path
from typing import Any

import phonenumbers
import pytest
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import bot
from bot import i18n
from bot.db.models import ChatLanguage
from bot.demo.sandbox import FakeGateway, FakeTelegram, FakeVerify
from bot.login.verification import verify_locale
from bot.telegram.handlers.login import announce_fallbacks
from tests.helpers import Chat, Clock, stop_bot

BOT_DIR = Path(bot.__file__).parent
# What `make translations` extracts (Makefile): N_ for sentences, plural for counted ones.
KEYWORDS = {"N_": None, "plural": (1, 2)}


def source_messages() -> dict[str, tuple[str, ...]]:
    """Every sentence bot/texts.py marks, as pybabel extracts it: msgid -> its forms."""
    found: dict[str, tuple[str, ...]] = {}
    for _, message, _, _ in extract_from_file(
        "python", str(BOT_DIR / "texts.py"), keywords=KEYWORDS
    ):
        forms = (message,) if isinstance(message, str) else tuple(message)
        found[forms[0]] = forms
    return found


def placeholders(text: str) -> set[str]:
    """The named `{placeholders}` of a sentence."""
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


TRANSLATED = [language.code for language in i18n.LANGUAGES if language.code != i18n.SOURCE]


def test_the_languages_are_english_spanish_portuguese_russian_and_german() -> None:
    assert [language.code for language in i18n.LANGUAGES] == ["en", "es", "pt_BR", "ru", "de"]


@pytest.mark.parametrize("code", TRANSLATED)
def test_every_sentence_is_translated_with_exactly_its_placeholders(code: str) -> None:
    with (BOT_DIR / "locales" / code / "LC_MESSAGES" / "bot.po").open("rb") as po:
        catalog = read_po(po, locale=code)
    sources = source_messages()
    assert len(sources) > 100
    problems: list[str] = []
    for msgid, forms in sources.items():
        message = catalog.get(msgid)
        if message is None:
            problems.append(f"missing: {msgid!r}")
            continue
        if message.fuzzy:
            problems.append(f"fuzzy: {msgid!r}")
        string = message.string
        translations = (string,) if isinstance(string, str) else tuple(string or ())
        if len(forms) > 1 and len(translations) != catalog.num_plurals:
            problems.append(
                f"{len(translations)} plural forms, not {catalog.num_plurals}: {msgid!r}"
            )
        for translation in translations:
            if not translation or not translation.strip():
                problems.append(f"empty: {msgid!r}")
            elif placeholders(translation) != placeholders(forms[-1]):
                problems.append(f"placeholders {placeholders(translation)}: {msgid!r}")
            elif translation.startswith("\n") != msgid.startswith("\n"):
                problems.append(f"leading line breaks differ: {msgid!r}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("code", TRANSLATED)
def test_example_numbers_in_the_translations_are_valid(code: str) -> None:
    with (BOT_DIR / "locales" / code / "LC_MESSAGES" / "bot.po").open("rb") as po:
        catalog = read_po(po, locale=code)
    examples = [
        match.group(0).strip()
        for message in catalog
        if message.id and isinstance(message.string, str)
        for match in re.finditer(r"(\+|00)[1-9][\d \-]{6,}\d", message.string)
    ]
    assert examples
    for example in examples:
        international = "+" + example.removeprefix("00") if example.startswith("00") else example
        number = phonenumbers.parse(international, None)
        assert phonenumbers.is_valid_number(number), example


def test_a_placeholder_gone_missing_or_added_fails_the_catalog_test() -> None:
    assert placeholders("Sent to {number}, expires {expires}") == {"number", "expires"}
    assert placeholders("Enviado, caduca {expires}") != placeholders("Sent to {number} {expires}")
    assert placeholders("Enviado a {number} {code}") != placeholders("Sent to {number}")


@pytest.mark.parametrize(
    ("language_code", "spoken"),
    [
        ("es", "es"),
        ("es-419", "es"),
        ("es-MX", "es"),
        ("pt-br", "pt_BR"),
        ("pt", "pt_BR"),
        ("pt-PT", "pt_BR"),
        ("ru", "ru"),
        ("de-AT", "de"),
        ("en-US", "en"),
        ("zh-hans", "en"),
        ("", "en"),
        (None, "en"),
    ],
)
def test_telegram_language_codes_map_to_a_spoken_language(
    language_code: str | None, spoken: str
) -> None:
    assert i18n.from_telegram(language_code) == spoken


@pytest.mark.parametrize(
    ("language", "region", "locale"),
    [
        ("es", "ES", "es-es"),
        ("es", "MX", "es-mx"),
        ("es", "AR", "es-mx"),
        ("es", "US", "es-us"),
        ("es", "GB", "es-es"),
        ("pt_BR", "BR", "pt-br"),
        ("pt_BR", "PT", "pt-pt"),
        ("pt_BR", "GB", "pt-br"),
        ("ru", "RU", "ru-ru"),
        ("ru", "GB", "ru-ru"),
        ("de", "AT", "de-de"),
        ("en", "GB", "en-gb"),
        ("en", "US", "en-us"),
        ("en", "AU", "en-gb"),
        # A language Verify has no locale for: English, never an error.
        ("nl", "NL", "en-gb"),
        ("nl", "US", "en-us"),
        ("es", "001", "es-es"),
    ],
)
def test_verify_locale_follows_the_language_and_the_numbers_region(
    language: str, region: str, locale: str
) -> None:
    assert verify_locale(language, region).value == locale


def start_locales(verify: FakeVerify) -> list[str | None]:
    """The `locale` of every Verify start, in order."""
    return [call.json_body.get("locale") for call in verify.calls("start")]


def menu(tg: FakeTelegram, language_code: str | None = None) -> dict[str, str]:
    return {c["command"]: c["description"] for c in tg.commands(language_code)}


async def test_a_whole_login_in_spanish(tg: FakeTelegram, verify: FakeVerify, bot: Any) -> None:
    chat = Chat(tg, 1001, language_code="es")

    asked = await chat.say("/login")
    assert asked.startswith("Envíame tu número de teléfono con el prefijo del país")
    keyboard = tg.current_keyboard(chat.id)
    assert keyboard is not None
    assert keyboard["keyboard"][0][0]["text"] == "Compartir mi número de teléfono"

    (sent,) = await chat.send("+34 612 34 56 78")
    assert sent.text.startswith(
        "Un código de 6 dígitos va de camino a +34 612 34 56 78 por SMS; si no llega, "
        "recibirás una llamada. Envíame aquí el código. Caduca a las "
    )
    assert "¿No te ha llegado el código? Puedes pedir uno nuevo, o una llamada," in sent.text
    assert [text for text, _ in sent.inline_buttons] == [
        "Enviar un código nuevo",
        "Llamarme en su lugar",
    ]
    assert start_locales(verify) == ["es-es"]

    wrong = "1" * 6 if verify.last_code() != "1" * 6 else "2" * 6
    assert await chat.say(wrong) == "Ese código no es correcto. Te quedan 2 intentos."
    assert await chat.say(verify.last_code()) == "Has iniciado sesión como +34 612 34 56 78."
    whoami = await chat.say("/whoami")
    assert re.fullmatch(
        r"Has iniciado sesión como \+34 612 34 56 78 \(desde [\d:]+ UTC, "
        r"demostrado con un código por SMS\)\.",
        whoami,
    ), whoami
    assert await chat.say("/logout") == (
        "Has cerrado la sesión. +34 612 34 56 78 ya no está vinculado a este chat."
    )

    # Nothing the user read was English.
    for message in tg.messages(chat.id):
        assert not re.search(r"\b(the|you|your|is|are|send)\b", message.text), message.text


async def test_a_mexican_number_in_spanish_gets_mexican_spanish(
    tg: FakeTelegram, verify: FakeVerify, bot: Any
) -> None:
    chat = Chat(tg, 1001, language_code="es-419")
    await chat.send("/login")
    await chat.number("+52 55 1234 5678")
    assert start_locales(verify) == ["es-mx"]


async def test_a_whole_login_in_russian_with_the_menus_set_per_language(
    tg: FakeTelegram, verify: FakeVerify, bot: Any
) -> None:
    chat = Chat(tg, 1001, language_code="ru")

    assert (await chat.say("/login")).startswith(
        "Отправьте мне свой номер телефона с кодом страны, например +7 912 345-67-89"
    )
    sent = await chat.number("+7 912 345-67-89")
    assert sent.startswith("Код из 6 цифр отправляется на +7 912 345-67-89 по SMS; ")
    assert start_locales(verify) == ["ru-ru"]
    assert await chat.say("12") == (
        "Код состоит из 6 цифр, например 123456. Пришлите только цифры."
    )
    assert await chat.say(verify.last_code()) == "Вы вошли с номером +7 912 345-67-89."
    assert await chat.say("привет") == (
        "Вы вошли с номером +7 912 345-67-89. /whoami показывает ваш вход, /logout завершает его."
    )

    # The menus: one per language, and English for everyone else.
    assert menu(tg, "ru")["login"] == "Войти по номеру телефона"
    assert menu(tg, "ru")["language"] == "Выбрать язык"
    assert menu(tg, "es")["language"] == "Elige tu idioma"
    assert menu(tg, "pt")["language"] == "Escolha o seu idioma"
    assert menu(tg, "de")["language"] == "Sprache wählen"
    assert menu(tg, "en")["language"] == "Choose your language"
    assert menu(tg)["language"] == "Choose your language"
    for code in ("ru", "es", "pt", "de", "en"):
        assert list(menu(tg, code)) == list(menu(tg)), code
    calls = tg.calls_to("setMyCommands")
    assert sorted(call.get("language_code") or "" for call in calls) == [
        "",
        "de",
        "en",
        "es",
        "pt",
        "ru",
    ]


async def test_two_chats_at_the_same_moment_each_get_their_own_language(
    tg: FakeTelegram, bot: Any
) -> None:
    spanish = Chat(tg, 1001, language_code="es")
    german = Chat(tg, 1002, "Bea", "bea", language_code="de")
    for _ in range(5):
        tg.send_text(spanish.id, "/cancel")
        tg.send_text(german.id, "/cancel")
    answers = await asyncio.gather(
        tg.wait_for_messages(spanish.id, 5, timeout=10),
        tg.wait_for_messages(german.id, 5, timeout=10),
    )
    assert {m.text for m in answers[0]} == {"No hay ningún inicio de sesión en curso."}
    assert {m.text for m in answers[1]} == {"Es läuft keine Anmeldung."}


async def test_an_unsupported_telegram_language_gets_english(
    tg: FakeTelegram, verify: FakeVerify, bot: Any
) -> None:
    chat = Chat(tg, 1001, language_code="zh-hans")
    assert (await chat.say("/help")).startswith(
        "I log you in with your phone number, no password needed."
    )
    await chat.send("/login")
    await chat.number("+44 7400 123123")
    assert start_locales(verify) == ["en-gb"]


async def choose(tg: FakeTelegram, chat: Chat, name: str) -> str:
    """Send /language, press the button with that language's name; the message's new text."""
    (offer,) = await chat.send("/language")
    tg.click(offer, name)
    await tg.wait_for(lambda: tg.messages(chat.id)[-1].edited)
    return tg.messages(chat.id)[-1].text


async def test_language_changes_at_once_survives_a_restart_and_forget_removes_it(
    tg: FakeTelegram,
    verify: FakeVerify,
    start_bot: Callable[..., Any],
    db: async_sessionmaker[AsyncSession],
) -> None:
    first = await start_bot()
    chat = Chat(tg, 1001, language_code="en")
    (offer,) = await chat.send("/language")
    assert offer.text == "I speak English with you. Choose another language:"
    assert [text for text, _ in offer.inline_buttons] == [
        "English",
        "Español",
        "Português (Brasil)",
        "Русский",
        "Deutsch",
    ]
    tg.click(offer, "Русский")
    await tg.wait_for(lambda: tg.messages(chat.id)[-1].edited)
    assert tg.messages(chat.id)[-1].text == (
        "Теперь я говорю с вами по-русски, и коды для входа тоже приходят на русском."
    )
    assert (await chat.say("/help")).startswith("Я выполняю вход по вашему номеру телефона")
    async with db() as session:
        stored = await session.get(ChatLanguage, chat.id)
        assert stored is not None
        assert stored.language == "ru"

    await stop_bot(first)
    await start_bot()
    assert (await chat.say("/login")).startswith("Отправьте мне свой номер телефона")
    # The SMS follows the chosen language, whatever Telegram's is.
    await chat.number("+44 7400 123123")
    assert start_locales(verify) == ["ru-ru"]
    await chat.say("/cancel")

    (confirm,) = await chat.send("/forget")
    tg.click(confirm, "Да, стереть всё")
    await tg.wait_for(lambda: tg.messages(chat.id)[-1].edited)
    assert tg.messages(chat.id)[-1].text == "Done: everything I stored about this chat is erased."
    assert (await chat.say("/help")).startswith("I log you in with your phone number")
    async with db() as session:
        assert await session.get(ChatLanguage, chat.id) is None


async def test_choosing_again_replaces_the_language(tg: FakeTelegram, bot: Any) -> None:
    chat = Chat(tg, 1001, language_code="ru")
    assert await choose(tg, chat, "Deutsch") == (
        "Ab jetzt spreche ich Deutsch mit dir, und deine Anmeldecodes kommen auch auf Deutsch."
    )
    assert await choose(tg, chat, "Português (Brasil)") == (
        "A partir de agora eu falo português com você, e os seus códigos de login também "
        "chegam em português."
    )
    assert await chat.say("/cancel") == "Não há nenhum login em andamento."


async def test_a_forged_language_button_changes_nothing(
    tg: FakeTelegram, bot: Any, db: async_sessionmaker[AsyncSession]
) -> None:
    chat = Chat(tg, 1001, language_code="de")
    (offer,) = await chat.send("/language")
    tg.press_button(chat.id, offer.message_id, "language:xx", strict=False)
    await tg.wait_idle()
    assert not tg.messages(chat.id)[-1].edited
    async with db() as session:
        assert await session.get(ChatLanguage, chat.id) is None
    assert await chat.say("/cancel") == "Es läuft keine Anmeldung."


async def test_a_gateway_login_in_german_falls_back_to_a_german_sms_by_itself(
    tg: FakeTelegram,
    gateway: FakeGateway,
    verify: FakeVerify,
    start_bot: Callable[..., Any],
    gateway_settings: dict[str, Any],
    clock: Clock,
) -> None:
    application = await start_bot(**gateway_settings)
    chat = Chat(tg, 1001, language_code="de")
    await chat.send("/login")
    (sent,) = await chat.send("+49 1512 3456789")
    assert "als Telegram-Nachricht von „Verification Codes“" in sent.text
    assert [text for text, _ in sent.inline_buttons] == ["Neuen Code schicken", "Lieber per SMS"]
    assert sent.text.endswith(
        "\n\nKein Code? Mit den Schaltflächen unten kannst du einen neuen anfordern oder eine SMS."
    )

    # The sweeper has no update to take the language from: the login's own.
    clock.advance(201)
    assert await announce_fallbacks(application) == 1
    told = await tg.next_reply(chat.id)
    assert told.text.startswith(
        "Der Telegram-Code wurde nicht rechtzeitig benutzt, deshalb ist ein neuer Code "
        "unterwegs an +49 1512 3456789, per SMS; falls sie nicht ankommt, wirst du angerufen;"
    )
    assert start_locales(verify) == ["de-de"]


async def test_send_by_sms_instead_speaks_the_chats_language(
    tg: FakeTelegram,
    gateway: FakeGateway,
    verify: FakeVerify,
    start_bot: Callable[..., Any],
    gateway_settings: dict[str, Any],
) -> None:
    await start_bot(**gateway_settings)
    chat = Chat(tg, 1001, language_code="pt-br")
    await chat.send("/login")
    sent = (await chat.send("+55 11 96123-4567"))[0]
    tg.click(sent, "Prefiro por SMS")
    told = await tg.next_reply(chat.id)
    assert told.text.startswith(
        "Um novo código está a caminho de +55 11 96123-4567 por SMS; se não chegar, você vai "
        "receber uma ligação; o código do Telegram não funciona mais."
    )
    assert start_locales(verify) == ["pt-br"]
