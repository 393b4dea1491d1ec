"""The sandbox fakes (bot.demo.sandbox) behave like the real services, as seen by the real clients:
python-telegram-bot for FakeTelegram and the vonage SDK (over HTTPS) for FakeVerify."""

from __future__ import annotations

import asyncio
import base64
import datetime as dtm
import ssl
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from telegram.error import BadRequest, Conflict, Forbidden, InvalidToken, NetworkError, RetryAfter
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)
from vonage import Auth, HttpClientOptions, Vonage
from vonage_http_client.errors import AuthenticationError, HttpRequestError, NotFoundError
from vonage_verify import SmsChannel, VerifyRequest, VoiceChannel

from bot.demo.sandbox import (
    Delivery,
    FakeTelegram,
    FakeVerify,
    SandboxCA,
    SentMessage,
    reply_markup_buttons,
)

TOKEN = "123456:ABC-sandbox"
ALICE = 4201
NUMBER = "447700900123"


# --------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(token=TOKEN, bot_username="LoginTestBot") as fake:
        fake.user(ALICE, first_name="Alice", username="alice")
        yield fake


@pytest.fixture
async def bot(tg: FakeTelegram) -> AsyncIterator[Bot]:
    async with Bot(TOKEN, base_url=tg.base_url, base_file_url=tg.base_file_url) as b:
        yield b


@pytest.fixture
async def vf() -> AsyncIterator[FakeVerify]:
    async with FakeVerify(api_key="key", api_secret="secret") as fake:
        yield fake


def _vonage(fake: FakeVerify, auth: Auth | None = None, timeout: int = 5) -> Vonage:
    return Vonage(
        auth or Auth(api_key="key", api_secret="secret"),
        HttpClientOptions(api_host=fake.host, timeout=timeout),
    )


def _close(client: Vonage) -> None:
    client.http_client._session.close()


@pytest.fixture
def vonage_client(vf: FakeVerify, monkeypatch: pytest.MonkeyPatch) -> Iterator[Vonage]:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(vf.ca_path))
    client = _vonage(vf)
    yield client
    _close(client)


def _request(*channels: type[SmsChannel] | type[VoiceChannel], to: str = NUMBER) -> VerifyRequest:
    return VerifyRequest(
        brand="LoginBot", workflow=[c(to=to) for c in channels or (SmsChannel,)], code_length=6
    )


async def _start(client: Vonage, request: VerifyRequest) -> str:
    response = await asyncio.to_thread(client.verify.start_verification, request)
    return str(response.request_id)


async def _check(client: Vonage, request_id: str, code: str) -> Any:
    return await asyncio.to_thread(client.verify.check_code, request_id, code)


# --------------------------------------------------------------------------------------
# TLS helper
# --------------------------------------------------------------------------------------


def test_ca_writes_pem_and_cleans_up() -> None:
    with SandboxCA() as ca:
        path = ca.ca_path
        assert path.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
        assert ca.server_ssl_context().minimum_version == ssl.TLSVersion.TLSv1_2
    assert ca.closed
    assert not path.exists()
    with pytest.raises(RuntimeError):
        _ = ca.ca_path


# --------------------------------------------------------------------------------------
# FakeTelegram through python-telegram-bot
# --------------------------------------------------------------------------------------


async def test_get_me(bot: Bot, tg: FakeTelegram) -> None:
    me = await bot.get_me()
    assert me.is_bot
    assert me.username == "LoginTestBot"
    assert me.id == 123456
    assert me.can_join_groups is True
    assert bot.username == "LoginTestBot"
    assert tg.calls[0].method == "getMe"


async def test_send_message_with_contact_keyboard(bot: Bot, tg: FakeTelegram) -> None:
    markup = ReplyKeyboardMarkup(
        [[KeyboardButton("Share my phone number", request_contact=True)], ["Cancel"]],
        one_time_keyboard=True,
        resize_keyboard=True,
    )
    message = await bot.send_message(ALICE, "Please share your number", reply_markup=markup)
    assert message.text == "Please share your number"
    assert message.chat.id == ALICE
    assert message.from_user is not None
    assert message.from_user.is_bot
    assert message.reply_markup is None  # only inline keyboards are echoed back

    sent = await tg.next_reply(ALICE)
    assert sent.message_id == message.message_id
    assert sent.keyboard_kind == "reply"
    assert sent.requests_contact
    assert sent.buttons == ["Share my phone number", "Cancel"]
    assert reply_markup_buttons(sent) == sent.buttons
    assert tg.reply_markup_buttons(sent.reply_markup) == sent.buttons
    assert sent.reply_markup is not None
    assert sent.reply_markup["keyboard"][0][0] == {
        "text": "Share my phone number",
        "request_contact": True,
    }
    assert tg.current_keyboard(ALICE) == sent.reply_markup
    # the parameters are decoded: reply_markup arrived as a JSON string in a form body
    method, params = tg.calls[-1]
    assert method == "sendMessage"
    assert params["reply_markup"]["one_time_keyboard"] is True
    assert params["chat_id"] == str(ALICE)

    await bot.send_message(ALICE, "Done", reply_markup=ReplyKeyboardRemove())
    assert tg.current_keyboard(ALICE) is None
    assert [m.plain_text for m in tg.drain(ALICE)] == ["Done"]
    assert tg.drain(ALICE) == []


async def test_unknown_chat_and_empty_text(bot: Bot, tg: FakeTelegram) -> None:
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await bot.send_message(999, "hello")
    with pytest.raises(BadRequest, match=r"(?i)text is empty"):
        await bot.send_message(ALICE, " ")


async def test_inline_keyboard_edit_press_and_delete(bot: Bot, tg: FakeTelegram) -> None:
    keyboard = InlineKeyboardMarkup(
        [[InlineKeyboardButton("Resend", callback_data="resend")]],
    )
    message = await bot.send_message(
        ALICE, "Code sent to <b>+44…123</b>", parse_mode="HTML", reply_markup=keyboard
    )
    assert message.text == "Code sent to +44…123"
    assert message.reply_markup == keyboard
    sent = await tg.next_reply(ALICE)
    assert sent.inline_buttons == [("Resend", "resend")]
    assert sent.callback_data("Resend") == "resend"

    query_id = tg.press_button(ALICE, sent.message_id, "resend")
    with pytest.raises(ValueError, match="no inline button"):
        tg.press_button(ALICE, sent.message_id, "forged")
    updates = await bot.get_updates(timeout=1)
    assert len(updates) == 1
    query = updates[0].callback_query
    assert query is not None
    assert query.id == query_id
    assert query.data == "resend"
    assert query.message is not None
    assert query.message.message_id == sent.message_id
    assert await query.answer("Sending again")
    assert tg.callback_answers[-1].text == "Sending again"
    assert tg.callback_answers[-1].data == "resend"
    with pytest.raises(BadRequest, match=r"(?i)query is too old"):
        await query.answer()

    await bot.edit_message_text("New code sent", ALICE, sent.message_id)
    assert sent.edited
    assert sent.text == "New code sent"
    assert sent.history
    assert sent.reply_markup is None  # editing text without markup drops the inline keyboard
    with pytest.raises(BadRequest, match=r"(?i)not modified"):
        await bot.edit_message_text("New code sent", ALICE, sent.message_id)
    await bot.edit_message_reply_markup(ALICE, sent.message_id, reply_markup=keyboard)
    assert sent.keyboard_kind == "inline"

    user_message = tg.send_text(ALICE, "123456")
    assert await bot.delete_message(ALICE, user_message)
    assert await bot.delete_message(ALICE, sent.message_id)
    assert tg.deleted(ALICE) == {user_message, sent.message_id}
    assert sent.deleted
    assert tg.messages(ALICE, include_deleted=False) == []
    with pytest.raises(BadRequest, match=r"(?i)not found"):
        await bot.delete_message(ALICE, sent.message_id)
    with pytest.raises(BadRequest, match=r"(?i)not found"):
        await bot.delete_message(ALICE, 9999)


async def test_get_updates_sees_login_command(bot: Bot, tg: FakeTelegram) -> None:
    message_id = tg.send_text(ALICE, "/login")
    updates = await bot.get_updates(timeout=1)
    assert [u.update_id for u in updates] == [updates[0].update_id]
    message = updates[0].message
    assert message is not None
    assert message.message_id == message_id
    assert message.text == "/login"
    assert message.from_user is not None
    assert message.from_user.first_name == "Alice"
    assert message.chat.type == "private"
    assert message.chat.id == ALICE
    assert message.entities[0].type == "bot_command"
    assert message.entities[0].length == len("/login")
    handler: CommandHandler[Any, None] = CommandHandler("login", _noop)
    assert handler.check_update(updates[0])

    # not confirmed yet: still delivered; confirmed by a later offset: gone
    assert len(await bot.get_updates()) == 1
    assert await bot.get_updates(offset=updates[0].update_id + 1) == ()
    assert tg.pending_updates == 0

    # a group message addressed to the bot
    tg.send_text(-100500, "/login@LoginTestBot", user_id=ALICE, chat_type="supergroup")
    group = (await bot.get_updates(offset=updates[0].update_id + 1))[0].message
    assert group is not None
    assert group.chat.type == "supergroup"
    assert group.entities[0].length == len("/login@LoginTestBot")


async def _noop(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    return None


async def test_long_poll_wakes_on_update_and_stop_is_quick(bot: Bot, tg: FakeTelegram) -> None:
    started = time.monotonic()
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.1)
    tg.send_contact(ALICE, "+447700900123")
    updates = await poll
    assert time.monotonic() - started < 2
    contact = updates[0].message.contact if updates[0].message else None
    assert contact is not None
    assert contact.user_id == ALICE
    assert contact.phone_number == "+447700900123"

    # an empty long poll returns [] once the timeout passes ...
    started = time.monotonic()
    assert await bot.get_updates(offset=updates[0].update_id + 1, timeout=1) == ()
    assert 0.9 < time.monotonic() - started < 2
    # a second poller terminates the first one, like Telegram does
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.1)
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{tg.base_url}{TOKEN}/getUpdates", data={"timeout": "0"}) as response,
    ):
        assert (await response.json())["result"] == []
    with pytest.raises(Conflict, match="terminated by other getUpdates"):
        await poll
    # ... or as soon as the server stops
    poll = asyncio.create_task(bot.get_updates(timeout=30))
    await asyncio.sleep(0.1)
    started = time.monotonic()
    await tg.stop()
    assert time.monotonic() - started < 1.5
    assert await poll == ()  # a pending long poll is answered with [] on stop


async def test_other_user_updates(bot: Bot, tg: FakeTelegram) -> None:
    tg.send_contact(ALICE, "447700900999", contact_user_id=None, first_name="Bob")
    tg.send_sticker(ALICE)
    tg.send_photo(ALICE, caption="me")
    tg.send_location(ALICE)
    tg.send_voice(ALICE)
    text_id = tg.send_text(ALICE, "hello", forward_from=777)
    tg.edit_text(ALICE, text_id, "/start")
    updates = await bot.get_updates()
    messages = [u.effective_message for u in updates]
    assert all(m is not None for m in messages)
    assert updates[0].message
    assert updates[0].message.contact
    assert updates[0].message.contact.user_id is None
    assert updates[1].message
    assert updates[1].message.sticker
    assert updates[2].message
    assert updates[2].message.photo
    assert updates[2].message.caption == "me"
    assert updates[3].message
    assert updates[3].message.location
    assert updates[4].message
    assert updates[4].message.voice
    assert updates[5].message
    assert updates[5].message.forward_origin is not None
    edited = updates[6].edited_message
    assert edited is not None
    assert edited.text == "/start"
    assert edited.edit_date is not None
    assert updates[-1].update_id - updates[0].update_id == 6
    # The edit changed the message, not the update that first brought it.
    assert updates[5].message.text == "hello"


async def test_send_update_delivers_an_update_as_given(bot: Bot, tg: FakeTelegram) -> None:
    tg.send_text(ALICE, "/login")
    (taken,) = tg.take_updates()
    del taken["message"]["from"]
    assert tg.send_update(taken) == taken["update_id"]
    new_id = tg.send_update({"callback_query": {"id": "7", "chat_instance": "x"}})
    first, second = await bot.get_updates()
    assert first.update_id == taken["update_id"]
    assert first.message is not None
    assert first.message.text == "/login"
    assert first.effective_user is None
    assert second.update_id == new_id > first.update_id
    with pytest.raises(ValueError, match="numeric update_id"):
        tg.send_update({"update_id": "x"})


async def test_blocked_user_and_injected_faults(
    bot: Bot, tg: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    tg.block_user(ALICE)
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(ALICE, "hi")
    tg.unblock_user(ALICE)

    tg.fail_next("sendMessage", 429, retry_after=3)
    with pytest.raises(RetryAfter) as excinfo:
        await bot.send_message(ALICE, "hi")
    assert excinfo.value.retry_after == dtm.timedelta(seconds=3)
    assert (await bot.send_message(ALICE, "hi")).text == "hi"

    tg.fail_next("sendmessage", 500, times=2)
    for _ in range(2):
        with pytest.raises(NetworkError):
            await bot.send_message(ALICE, "hi")
    tg.fail_next(None, 403, "Forbidden: user is deactivated")
    with pytest.raises(Forbidden, match="deactivated"):
        await bot.get_me()
    assert len(tg.messages(ALICE)) == 1


async def test_dropped_and_held_calls_until_the_faults_are_cleared(
    bot: Bot, tg: FakeTelegram
) -> None:
    tg.drop_next("getUpdates", times=None)
    for _ in range(3):
        with pytest.raises(NetworkError):
            await bot.get_updates(timeout=0)
    assert (await bot.send_message(ALICE, "other methods still work")).text

    tg.clear_faults()
    tg.hang_next("getUpdates", times=None)
    held = asyncio.create_task(bot.get_updates(timeout=0, read_timeout=10))
    await asyncio.sleep(0.3)
    assert not held.done()  # no answer, as from an unreachable network
    tg.send_text(ALICE, "hello")
    tg.clear_faults()  # released: answered normally
    (update,) = await asyncio.wait_for(held, 2)
    assert update.message is not None
    assert update.message.text == "hello"

    tg.hang_next("sendMessage")
    held_send = asyncio.create_task(bot.send_message(ALICE, "hi", read_timeout=10))
    await asyncio.sleep(0.3)
    await tg.stop()  # a held call is dropped when the server stops
    with pytest.raises(NetworkError):
        await held_send


async def test_wrong_token_and_raw_http(tg: FakeTelegram) -> None:
    with pytest.raises(InvalidToken):  # initialize() calls getMe; PTB shuts down on failure
        async with Bot("999:WRONG", base_url=tg.base_url):
            pass  # pragma: no cover
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{tg.url}/bot999:WRONG/getMe") as response:
            assert response.status == 401
            assert await response.json() == {
                "ok": False,
                "error_code": 401,
                "description": "Unauthorized",
            }
        async with http.post(f"{tg.base_url}{TOKEN}/fooBar") as response:
            assert response.status == 404
            assert (await response.json())["description"] == "Not Found"
        async with http.get(f"{tg.base_file_url}{TOKEN}/photos/x.jpg") as response:
            assert response.status == 404
        async with http.get(f"{tg.base_url}{TOKEN}/getme") as response:
            assert (await response.json())["result"]["username"] == "LoginTestBot"
        body = {"chat_id": ALICE, "text": "json", "reply_markup": {"remove_keyboard": True}}
        async with http.post(f"{tg.base_url}{TOKEN}/sendMessage", json=body) as response:
            assert (await response.json())["result"]["text"] == "json"
        form = aiohttp.FormData({"chat_id": str(ALICE), "text": "multipart"})
        form.add_field("document", b"abc", filename="a.txt")
        async with http.post(f"{tg.base_url}{TOKEN}/sendMessage", data=form) as response:
            assert response.status == 200
    assert tg.calls_to("sendMessage")[-1]["document"]["size"] == 3
    assert [m.text for m in tg.drain(ALICE)] == ["json", "multipart"]


async def test_commands_and_webhook(bot: Bot, tg: FakeTelegram) -> None:
    assert await bot.delete_webhook()
    info = await bot.get_webhook_info()
    assert info.url == ""
    assert await bot.set_my_commands([("login", "Log in with your phone")])
    commands = await bot.get_my_commands()
    assert [(c.command, c.description) for c in commands] == [("login", "Log in with your phone")]
    assert await bot.delete_my_commands()
    assert await bot.get_my_commands() == ()
    assert await bot.send_chat_action(ALICE, "typing")


async def test_next_reply_timeout_lists_what_was_sent(bot: Bot, tg: FakeTelegram) -> None:
    await bot.send_message(ALICE, "first")
    assert (await tg.next_reply(ALICE)).text == "first"
    with pytest.raises(TimeoutError, match=r"no new bot message.*'first'"):
        await tg.next_reply(ALICE, timeout=0.1)


async def test_application_end_to_end(tg: FakeTelegram) -> None:
    """A PTB Application polling the fake: command -> keyboard -> contact -> button."""

    async def login(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        button = KeyboardButton("Share phone", request_contact=True)
        await update.effective_message.reply_text(
            "Share your phone", reply_markup=ReplyKeyboardMarkup([[button]])
        )

    async def contact(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        assert update.effective_message.contact
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Cancel", callback_data="c")]])
        await update.effective_message.reply_text(
            f"Code sent to {update.effective_message.contact.phone_number}",
            reply_markup=keyboard,
        )

    async def cancel(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        await query.answer()
        await query.edit_message_text("Cancelled")

    seen: list[SentMessage] = []
    tg.on_message = seen.append
    app: Application[Any, Any, Any, Any, Any, Any] = (
        ApplicationBuilder()
        .token(TOKEN)
        .base_url(tg.base_url)
        .base_file_url(tg.base_file_url)
        .build()
    )
    app.add_handler(CommandHandler("login", login))
    app.add_handler(MessageHandler(filters.CONTACT, contact))
    app.add_handler(CallbackQueryHandler(cancel))
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=10)
        try:
            tg.send_text(ALICE, "/login")
            prompt = await tg.next_reply(ALICE)
            assert prompt.requests_contact
            tg.send_contact(ALICE, "447700900123")
            code_sent = await tg.next_reply(ALICE)
            assert code_sent.text == "Code sent to 447700900123"
            tg.click(code_sent, "Cancel")
            await tg.wait_for(lambda: code_sent.edited, what="edit")
            assert code_sent.text == "Cancelled"
            await tg.wait_idle(timeout=5)
            assert tg.pending_updates == 0
            assert len(tg.callback_answers) == 1
        finally:
            started = time.monotonic()
            await app.updater.stop()
            await app.stop()
            assert time.monotonic() - started < 3
    # on_message saw both messages and the edit
    assert [m.message_id for m in seen] == [
        prompt.message_id,
        code_sent.message_id,
        code_sent.message_id,
    ]


# --------------------------------------------------------------------------------------
# FakeVerify through the vonage SDK (HTTPS, REQUESTS_CA_BUNDLE)
# --------------------------------------------------------------------------------------


async def test_verify_happy_path_wrong_code_and_reuse(
    vf: FakeVerify, vonage_client: Vonage
) -> None:
    request_id = await _start(vonage_client, _request(SmsChannel, VoiceChannel))
    assert [(d.channel, d.to) for d in vf.deliveries] == [("sms", NUMBER)]
    delivery = vf.deliveries[0]
    assert delivery.request_id == request_id
    assert len(delivery.code) == 6
    assert delivery.code.isdigit()
    assert delivery.text == f"Your LoginBot code is {delivery.code}"
    assert vf.last_code("+" + NUMBER) == delivery.code
    assert vf.calls("start")[0].json_body["workflow"][1] == {"channel": "voice", "to": NUMBER}

    wrong = "000000" if delivery.code != "000000" else "111111"
    with pytest.raises(HttpRequestError) as excinfo:
        await _check(vonage_client, request_id, wrong)
    assert excinfo.value.response.status_code == 400
    assert excinfo.value.response.json()["title"] == "Invalid Code"

    result = await _check(vonage_client, request_id, vf.last_code())
    assert result.status == "completed"
    assert result.request_id == request_id
    assert vf.active_requests() == []

    with pytest.raises(NotFoundError) as not_found:
        await _check(vonage_client, request_id, delivery.code)
    assert not_found.value.response.status_code == 404
    assert request_id in not_found.value.response.json()["detail"]

    # one kept-alive TLS connection served every call
    assert [c.status for c in vf.requests] == [202, 400, 200, 404]
    assert len({c.client_port for c in vf.requests}) == 1


async def test_verify_conflict_cancel_and_next_workflow(
    vf: FakeVerify, vonage_client: Vonage
) -> None:
    heard: list[str] = []

    async def on_delivery(delivery: Delivery) -> None:  # coroutine hooks are supported
        await asyncio.sleep(0)
        heard.append(delivery.channel)

    vf.on_delivery = on_delivery
    first = await _start(vonage_client, _request(SmsChannel, VoiceChannel))
    with pytest.raises(HttpRequestError) as excinfo:
        await _start(vonage_client, _request(SmsChannel))
    assert excinfo.value.response.status_code == 409
    body = excinfo.value.response.json()
    assert body["request_id"] == first
    assert body["detail"] == "Concurrent verifications to the same number are not allowed."

    await asyncio.to_thread(vonage_client.verify.trigger_next_workflow, first)
    voice = vf.deliveries[-1]
    assert voice.channel == "voice"
    assert voice.code == vf.deliveries[0].code
    assert voice.text == f"Call to {NUMBER}: your LoginBot code is {voice.code}"
    with pytest.raises(HttpRequestError) as no_more:
        await asyncio.to_thread(vonage_client.verify.trigger_next_workflow, first)
    assert no_more.value.response.status_code == 409
    assert no_more.value.response.json()["detail"] == "There are no more workflows"

    await asyncio.sleep(0.01)
    assert heard == ["sms", "voice"]
    await asyncio.to_thread(vonage_client.verify.cancel_verification, first)
    assert vf.requests[-1].method == "DELETE"
    assert vf.requests[-1].status == 204
    with pytest.raises(NotFoundError):
        await _check(vonage_client, first, voice.code)
    with pytest.raises(NotFoundError):
        await asyncio.to_thread(vonage_client.verify.cancel_verification, first)
    # the number is free again
    second = await _start(vonage_client, _request(SmsChannel))
    vf.expire(second)
    with pytest.raises(NotFoundError):
        await _check(vonage_client, second, vf.last_code())
    third = await _start(vonage_client, _request(SmsChannel))
    vf.advance_time(vf.ttl_seconds)
    assert vf.active_requests() == []
    with pytest.raises(NotFoundError):
        await _check(vonage_client, third, vf.last_code())


async def test_verify_too_many_wrong_codes(vf: FakeVerify, vonage_client: Vonage) -> None:
    request_id = await _start(vonage_client, _request(SmsChannel))
    code = vf.last_code()
    wrong = "999999" if code != "999999" else "888888"
    statuses = []
    for _ in range(3):
        with pytest.raises(HttpRequestError) as excinfo:
            await _check(vonage_client, request_id, wrong)
        statuses.append(excinfo.value.response.status_code)
    assert statuses == [400, 400, 410]
    with pytest.raises(HttpRequestError) as gone:
        await _check(vonage_client, request_id, code)
    assert gone.value.response.status_code == 410
    assert "Workflow terminated" in gone.value.response.json()["detail"]


async def test_verify_bad_credentials(vf: FakeVerify, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(vf.ca_path))
    client = _vonage(vf, Auth(api_key="key", api_secret="wrong"))
    try:
        with pytest.raises(AuthenticationError) as excinfo:
            await _start(client, _request(SmsChannel))
    finally:
        _close(client)
    assert excinfo.value.response.status_code == 401
    assert excinfo.value.response.json()["title"] == "Unauthorized"
    assert vf.deliveries == []
    assert vf.requests[0].status == 401


async def test_verify_jwt_auth(monkeypatch: pytest.MonkeyPatch) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    async with FakeVerify(application_id="app-1") as fake:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(fake.ca_path))
        good = _vonage(fake, Auth(application_id="app-1", private_key=pem))
        bad = _vonage(fake, Auth(application_id="app-2", private_key=pem))
        try:
            await _start(good, _request(SmsChannel))
            with pytest.raises(AuthenticationError):
                await _start(bad, _request(SmsChannel, to="447700900124"))
        finally:
            _close(good)
            _close(bad)
        ca_path = fake.ca_path
    assert not ca_path.exists()  # the fake's own CA is cleaned up on stop


async def test_verify_drop_and_hang(vf: FakeVerify, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(vf.ca_path))
    client = _vonage(vf, timeout=1)
    try:
        request_id = await _start(client, _request(SmsChannel))
        vf.drop_next()
        with pytest.raises(requests.exceptions.ConnectionError):
            await _check(client, request_id, vf.last_code())
        assert vf.requests[-1].status is None
        # the pool recovers with a new connection
        vf.hang_next(3, path_kind="check")
        started = time.monotonic()
        with pytest.raises(requests.exceptions.Timeout):
            await _check(client, request_id, vf.last_code())
        assert time.monotonic() - started < 2
        vf.fail_next(503, path_kind="check")
        with pytest.raises(HttpRequestError) as excinfo:
            await _check(client, request_id, vf.last_code())
        assert excinfo.value.response.status_code == 503
        assert (await _check(client, request_id, vf.last_code())).status == "completed"
    finally:
        _close(client)


async def test_verify_drop_after_processing_takes_effect_and_loses_the_answer(
    vf: FakeVerify,
) -> None:
    body = {"brand": "B", "workflow": [{"channel": "sms", "to": NUMBER}]}

    def post(path: str, json: Any) -> requests.Response:
        return requests.post(
            f"{vf.url}{path}", json=json, auth=("key", "secret"), verify=str(vf.ca_path), timeout=5
        )

    vf.drop_next(path_kind="start", mode="close", processed=True)
    with pytest.raises(requests.exceptions.ConnectionError):
        await asyncio.to_thread(post, "/v2/verify", body)
    (started,) = vf.active_requests()  # Vonage acted on it ...
    assert [d.request_id for d in vf.deliveries] == [started.request_id]
    assert vf.calls("start")[0].status is None  # ... and the answer never left
    # without `processed`, a dropped request leaves no trace
    vf.drop_next(path_kind="check")
    with pytest.raises(requests.exceptions.ConnectionError):
        await asyncio.to_thread(post, f"/v2/verify/{started.request_id}", {"code": "000000"})
    assert vf.verification(started.request_id).wrong_attempts == 0


async def test_verify_drop_all_breaks_every_matching_request_until_cleared(
    vf: FakeVerify, vonage_client: Vonage
) -> None:
    request_id = await _start(vonage_client, _request(SmsChannel))
    vf.drop_all("check", mode="close")
    for _ in range(2):
        with pytest.raises(requests.exceptions.ConnectionError):
            await _check(vonage_client, request_id, vf.last_code())
    assert vf.verification(request_id).status == "active"
    vf.clear_faults()
    assert (await _check(vonage_client, request_id, vf.last_code())).status == "completed"


async def test_stock_sdk_resends_a_dropped_start_and_meets_its_own_409(
    vf: FakeVerify, vonage_client: Vonage
) -> None:
    # Why the bot's VerifyClient turns the SDK's resend off: out of the box, a start whose
    # connection dropped after Vonage acted is sent again, and the resend gets 409.
    vf.drop_next(path_kind="start", mode="close", processed=True)
    with pytest.raises(HttpRequestError) as excinfo:
        await _start(vonage_client, _request(SmsChannel))
    assert excinfo.value.response.status_code == 409
    assert [call.status for call in vf.calls("start")] == [None, 409]
    assert len(vf.deliveries) == 1


async def test_verify_validation_and_latency_over_raw_https(vf: FakeVerify) -> None:
    auth = "Basic " + base64.b64encode(b"key:secret").decode()
    headers = {"Authorization": auth}
    connector = aiohttp.TCPConnector(ssl=vf.ca.client_ssl_context(), limit=0)
    async with aiohttp.ClientSession(vf.url, connector=connector, headers=headers) as http:
        async with http.post("/v2/verify", json={"workflow": []}) as response:
            assert response.status == 422
            names = {p["name"] for p in (await response.json())["invalid_parameters"]}
            assert {"brand", "workflow"} <= names
        bad_to = {"brand": "B", "workflow": [{"channel": "sms", "to": "12"}]}
        async with http.post("/v2/verify", json=bad_to) as response:
            assert response.status == 422
        vf.invalid_numbers.add("447700900666")
        invalid = {"brand": "B", "workflow": [{"channel": "sms", "to": "447700900666"}]}
        async with http.post("/v2/verify", json=invalid) as response:
            assert response.status == 422
            assert (await response.json())["detail"] == "Invalid phone number"
        async with http.post("/v2/verify/nope/next_workflow") as response:
            assert response.status == 404

        vf.latency = 0.5
        started = time.monotonic()

        async def one(i: int) -> int:
            body = {"brand": "B", "workflow": [{"channel": "sms", "to": f"4477009{i:05d}"}]}
            async with http.post("/v2/verify", json=body) as response:
                return response.status

        statuses = await asyncio.gather(*(one(i) for i in range(100)))
        elapsed = time.monotonic() - started
    assert statuses == [202] * 100
    assert 0.5 <= elapsed < 2.0, elapsed
    assert len(vf.active_requests()) == 100
