"""A wire-level fake of the Telegram Bot API, for tests and the interactive demo.

Point python-telegram-bot at it with ``Bot(token, base_url=fake.base_url,
base_file_url=fake.base_file_url)`` (or the same options on ``ApplicationBuilder``). The fake
speaks HTTP on ``127.0.0.1`` and answers ``/bot<token>/<method>`` like Telegram does: a JSON
envelope ``{"ok": true, "result": ...}`` or ``{"ok": false, "error_code": N, "description":
"..."}`` with the same HTTP status.

Simulated people talk to the bot through :meth:`FakeTelegram.send_text` and friends (each
enqueues an update that the bot receives through ``getUpdates``); what the bot sends back is
recorded as :class:`SentMessage` objects, which tests consume with
:meth:`FakeTelegram.next_reply` and the demo observes through :attr:`FakeTelegram.on_message`.

Request parameters: PTB posts ``application/x-www-form-urlencoded`` bodies whose nested values
(``reply_markup``, ``entities``, ...) are JSON strings; those are decoded, scalars keep their
string form (``"42"``, ``"true"``). JSON bodies keep their JSON types. Query parameters of GET
requests are treated like form fields.

Like the server itself, the test/demo API is not thread-safe: call it from the event loop the
fake runs in (from another thread, go through ``loop.call_soon_threadsafe``).
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import itertools
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from aiohttp import web

from ._server import LOCALHOST, SandboxServer

__all__ = [
    "ApiCall",
    "CallbackAnswer",
    "FakeTelegram",
    "FakeUser",
    "SentMessage",
    "reply_markup_buttons",
]

logger = logging.getLogger(__name__)

ChatType = Literal["private", "group", "supergroup", "channel"]

_MAX_TEXT = 4096
_MAX_CALLBACK_DATA = 64
# Telegram's default when allowed_updates was never given.
_NOT_DEFAULT_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
# Form fields that are plain text and never JSON-decoded even if they look like JSON.
_TEXT_FIELDS = frozenset(
    {
        "text",
        "caption",
        "callback_data",
        "callback_query_id",
        "inline_message_id",
        "url",
        "description",
        "short_description",
        "name",
        "title",
        "query",
        "address",
        "first_name",
        "last_name",
        "phone_number",
        "question",
        "explanation",
        "emoji",
        "parse_mode",
        "language_code",
        "action",
        "chat_id",
        "from_chat_id",
        "secret_token",
        "ip_address",
        "custom_title",
        "payload",
    }
)
_INLINE_ACTIONS = (
    "callback_data",
    "url",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "callback_game",
    "pay",
    "web_app",
    "copy_text",
)
_FORBIDDEN_BLOCKED = "Forbidden: bot was blocked by the user"
_DEFAULT_DESCRIPTIONS: dict[int, str] = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running",
    420: "Flood",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
}


# ---------------------------------------------------------------------------------------
# data classes
# ---------------------------------------------------------------------------------------


@dataclass
class FakeUser:
    """A simulated Telegram user (their private chat with the bot has ``chat_id == id``)."""

    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = "en"
    is_bot: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The Bot API ``User`` object."""
        data: dict[str, Any] = {"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        return data


def _normalise_button(button: Any) -> dict[str, Any]:
    if isinstance(button, str):
        return {"text": button}
    if isinstance(button, Mapping):
        return dict(button)
    return {"text": str(button)}


def reply_markup_buttons(markup: Mapping[str, Any] | SentMessage | None) -> list[str]:
    """Texts of all buttons of a reply markup (reply or inline keyboard), row by row.

    Accepts the markup dict itself or a :class:`SentMessage`. Anything without buttons
    (``None``, ``remove_keyboard``, ``force_reply``) gives ``[]``.
    """
    if isinstance(markup, SentMessage):
        markup = markup.reply_markup
    if not markup:
        return []
    rows = markup.get("inline_keyboard") or markup.get("keyboard") or []
    return [_normalise_button(b).get("text", "") for row in rows for b in row]


@dataclass(eq=False)
class SentMessage:
    """A message the bot sent, as currently known (edits and deletion update it in place).

    ``text`` is what the bot passed (including HTML/Markdown markup if a ``parse_mode`` was
    used); :attr:`plain_text` is the text as a user would see it. ``reply_markup`` is the
    decoded JSON the bot sent, or ``None``.
    """

    chat_id: int
    message_id: int
    text: str
    reply_markup: dict[str, Any] | None = None
    edited: bool = False
    deleted: bool = False
    parse_mode: str | None = None
    entities: list[Any] | None = None
    reply_to_message_id: int | None = None
    date: int = 0
    edit_date: int | None = None
    #: earlier versions of ``text`` (oldest first), one entry per text edit
    history: list[str] = field(default_factory=list)
    #: the decoded parameters of the ``sendMessage`` call
    params: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def plain_text(self) -> str:
        """``text`` with HTML / Markdown markup removed (best effort), as Telegram shows it."""
        return _strip_markup(self.text, self.parse_mode)

    @property
    def keyboard_kind(self) -> Literal["inline", "reply", "remove", "force_reply"] | None:
        """Which kind of ``reply_markup`` the message carries."""
        markup = self.reply_markup
        if not markup:
            return None
        if "inline_keyboard" in markup:
            return "inline"
        if "keyboard" in markup:
            return "reply"
        if markup.get("remove_keyboard"):
            return "remove"
        if markup.get("force_reply"):
            return "force_reply"
        return None

    @property
    def button_rows(self) -> list[list[dict[str, Any]]]:
        """Keyboard rows with every button as a dict (plain string buttons become
        ``{"text": ...}``)."""
        markup = self.reply_markup or {}
        rows = markup.get("inline_keyboard") or markup.get("keyboard") or []
        return [[_normalise_button(b) for b in row] for row in rows]

    @property
    def buttons(self) -> list[str]:
        """All button texts, row by row (see :func:`reply_markup_buttons`)."""
        return reply_markup_buttons(self.reply_markup)

    @property
    def inline_buttons(self) -> list[tuple[str, str | None]]:
        """``(text, callback_data)`` of every inline button (``None`` for URL buttons etc.)."""
        if self.keyboard_kind != "inline":
            return []
        return [
            (b.get("text", ""), b.get("callback_data")) for row in self.button_rows for b in row
        ]

    def button(self, text: str) -> dict[str, Any]:
        """The button whose text equals ``text`` (or contains it, if none is equal)."""
        flat = [b for row in self.button_rows for b in row]
        for candidates in (
            [b for b in flat if b.get("text") == text],
            [b for b in flat if text in str(b.get("text", ""))],
        ):
            if candidates:
                return candidates[0]
        raise LookupError(f"no button {text!r} on message {self.message_id}; has {self.buttons}")

    def callback_data(self, text: str) -> str:
        """``callback_data`` of the inline button labelled ``text``."""
        data = self.button(text).get("callback_data")
        if not isinstance(data, str):
            raise LookupError(f"button {text!r} of message {self.message_id} has no callback_data")
        return data

    @property
    def requests_contact(self) -> bool:
        """True if a reply-keyboard button asks for the user's phone number."""
        return self.keyboard_kind == "reply" and any(
            b.get("request_contact") for row in self.button_rows for b in row
        )

    def describe(self) -> str:
        """One line for logs and error messages."""
        flags = "".join(
            f" [{flag}]" for flag, on in (("edited", self.edited), ("deleted", self.deleted)) if on
        )
        buttons = f" buttons={self.buttons}" if self.buttons else ""
        return f"#{self.message_id}{flags} {self.plain_text!r}{buttons}"


class ApiCall(NamedTuple):
    """One Bot API request: the canonical method name and its decoded parameters."""

    method: str
    params: dict[str, Any]


@dataclass
class CallbackAnswer:
    """An ``answerCallbackQuery`` call, matched to the button press it answers."""

    callback_query_id: str
    text: str | None
    show_alert: bool
    url: str | None
    cache_time: int | None
    chat_id: int | None
    message_id: int | None
    data: str | None


FaultKind = Literal["fail", "drop", "hang"]


@dataclass
class _Fault:
    method: str | None  # lower case, None = any method
    kind: FaultKind
    remaining: int | None  # None: every call until clear_faults()
    status: int = 0
    description: str = ""
    retry_after: int | None = None


@dataclass
class _CallbackQuery:
    chat_id: int
    message_id: int
    data: str | None
    answered: bool = False


class _ApiError(Exception):
    def __init__(self, status: int, description: str, parameters: dict[str, Any] | None = None):
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters


_MISSING: Any = object()


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------


def _strip_markup(text: str, parse_mode: str | None) -> str:
    mode = (parse_mode or "").lower()
    if mode == "html":
        return html.unescape(re.sub(r"<[^>]*>", "", text))
    if mode not in ("markdown", "markdownv2"):
        return text
    markers = "*_`~|" if mode == "markdownv2" else "*_`"
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if ch == "]" and text[i + 1 : i + 2] == "(":
            end = text.find(")", i)
            i = end + 1 if end != -1 else len(text)
            continue
        if ch not in markers and ch != "[":
            out.append(ch)
        i += 1
    return "".join(out)


def _decode_value(key: str, value: str) -> Any:
    if key in _TEXT_FIELDS:
        return value
    stripped = value.strip()
    if stripped[:1] in ("[", "{"):
        try:
            return json.loads(stripped)
        except ValueError:
            return value
    return value


def _times(times: int | None) -> int | None:
    if times is not None and times < 1:
        raise ValueError("times must be >= 1 (or None: until clear_faults)")
    return times


def _as_int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise _ApiError(400, f"Bad Request: invalid {name} specified")
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        raise _ApiError(400, f"Bad Request: invalid {name} specified") from None


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("true", "1")


def _as_float(value: Any, name: str) -> float:
    try:
        return float(str(value).strip())
    except ValueError:
        raise _ApiError(400, f"Bad Request: invalid {name} specified") from None


def _update_type(update: Mapping[str, Any]) -> str:
    return next((key for key in update if key != "update_id"), "")


def _check_markup(markup: Any) -> dict[str, Any] | None:
    """Validate a decoded reply_markup roughly like Telegram does."""
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise _ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in markup:
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise _ApiError(400, "Bad Request: can't parse inline keyboard markup JSON object")
        for row in rows:
            for button in row:
                if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                    raise _ApiError(400, "Bad Request: can't parse inline keyboard button")
                if not any(key in button for key in _INLINE_ACTIONS):
                    raise _ApiError(
                        400,
                        "Bad Request: can't parse inline keyboard button: "
                        "Text buttons are unallowed in the inline keyboard",
                    )
                data = button.get("callback_data")
                if data is not None and (
                    not isinstance(data, str)
                    or not data
                    or len(data.encode("utf-8")) > _MAX_CALLBACK_DATA
                ):
                    raise _ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
        return markup
    if "keyboard" in markup:
        rows = markup["keyboard"]
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise _ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
        for row in rows:
            for button in row:
                text = button if isinstance(button, str) else None
                if isinstance(button, dict):
                    text = button.get("text")
                if not isinstance(text, str) or not text:
                    raise _ApiError(400, "Bad Request: keyboard button text is empty")
        return markup
    if markup.get("remove_keyboard") or markup.get("force_reply"):
        return markup
    raise _ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")


# ---------------------------------------------------------------------------------------
# the server
# ---------------------------------------------------------------------------------------


class FakeTelegram(SandboxServer):
    """A fake Telegram Bot API server for one bot.

    Args:
        token: the bot token requests must carry (others get 401 Unauthorized).
        bot_username: the bot's ``username`` (no ``@``).
        bot_id: the bot's user id; defaults to the numeric prefix of ``token``.
        bot_first_name: the bot's display name.
        port: TCP port, 0 (default) for a random free one.

    The bot can only message chats Telegram would know: a user registered with :meth:`user`
    or any chat that sent an update (else 400 "chat not found"; set :attr:`strict_chats`
    to False to allow any chat id).

    Hooks (plain functions or coroutine functions; exceptions are logged, not raised):
        :attr:`on_message` gets every :class:`SentMessage` when it is sent or edited,
        :attr:`on_delete` gets ``chat_id, message_id`` for every deleteMessage,
        :attr:`on_callback_answer` gets every :class:`CallbackAnswer`.
    """

    #: quiet period :meth:`wait_idle` requires (seconds without an API call)
    idle_quiet: float = 0.05
    #: longest single wait inside a long-polling ``getUpdates`` (keeps ``stop()`` quick)
    poll_slice: float = 0.5

    def __init__(
        self,
        token: str = "123456:TEST-TOKEN",  # noqa: S107
        *,
        bot_username: str = "LoginTestBot",
        bot_id: int | None = None,
        bot_first_name: str = "Login Test Bot",
        port: int = 0,
    ) -> None:
        super().__init__(port=port)
        if bot_id is None:
            prefix = token.split(":", 1)[0]
            bot_id = int(prefix) if prefix.isdigit() else 1
        self.token = token
        self.bot_username = bot_username.lstrip("@")
        self.bot_id = bot_id
        self.bot_first_name = bot_first_name
        #: chats need to be known (a user registered / an update seen) to be messaged
        self.strict_chats = True

        self.on_message: Callable[[SentMessage], Awaitable[None] | None] | None = None
        self.on_delete: Callable[[int, int], Awaitable[None] | None] | None = None
        self.on_callback_answer: Callable[[CallbackAnswer], Awaitable[None] | None] | None = None

        #: every API call, in arrival order
        self.calls: list[ApiCall] = []
        #: every answerCallbackQuery
        self.callback_answers: list[CallbackAnswer] = []
        self.users: dict[int, FakeUser] = {}

        self._chats: dict[int, dict[str, Any]] = {}
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(100_001)
        self._message_ids: dict[int, itertools.count[int]] = {}
        self._bot_messages: dict[int, dict[int, SentMessage]] = {}
        self._user_messages: dict[int, dict[int, dict[str, Any]]] = {}
        self._deleted: dict[int, set[int]] = {}
        self._cursor: dict[int, int] = {}
        self._callback_queries: dict[str, _CallbackQuery] = {}
        self._callback_ids = itertools.count(1)
        self._faults: list[_Fault] = []
        self._release = asyncio.Event()  # set (and replaced) by clear_faults()
        self._blocked: set[int] = set()
        self._commands: dict[str, list[Any]] = {}
        self._webhook_url = ""
        self._allowed_updates: set[str] | None = None
        self._poll_generation = 0
        self._inflight = 0
        self._last_activity = time.monotonic()
        self._handlers: dict[str, Callable[[dict[str, Any]], Any]] = {
            "getMe": self._get_me,
            "getUpdates": self._get_updates,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "setMyCommands": self._set_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "getMyCommands": self._get_my_commands,
            "sendMessage": self._send_message,
            "editMessageText": self._edit_message_text,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "deleteMessage": self._delete_message,
            "answerCallbackQuery": self._answer_callback_query,
            "sendChatAction": self._true,
            "close": self._true,
            "logOut": self._true,
            "setMyDescription": self._true,
            "setMyShortDescription": self._true,
            "setMyName": self._true,
            "setChatMenuButton": self._true,
        }
        self._canonical = {name.lower(): name for name in self._handlers}

    # -- URLs --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``"""
        return f"http://{LOCALHOST}:{self.port}"

    @property
    def base_url(self) -> str:
        """Value for PTB's ``base_url`` (PTB appends the token): ``http://127.0.0.1:PORT/bot``."""
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        """Value for PTB's ``base_file_url``: ``http://127.0.0.1:PORT/file/bot``."""
        return f"{self.url}/file/bot"

    @property
    def bot_user(self) -> dict[str, Any]:
        """The bot's ``User`` object as sent in messages."""
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.bot_first_name,
            "username": self.bot_username,
        }

    # -- simulated users ---------------------------------------------------------------

    def user(
        self,
        user_id: int,
        first_name: str | None = None,
        username: str | None = None,
        *,
        last_name: str | None = None,
        language_code: str | None = "en",
    ) -> FakeUser:
        """Register (or replace) a simulated user; their private chat id is ``user_id``."""
        if user_id <= 0:
            raise ValueError("user ids are positive")
        person = FakeUser(
            id=user_id,
            first_name=first_name or f"User{user_id}",
            last_name=last_name,
            username=username,
            language_code=language_code,
        )
        self.users[user_id] = person
        self._chats[user_id] = self._private_chat(person)
        return person

    def _person(self, user_id: int) -> FakeUser:
        return self.users.get(user_id) or self.user(user_id)

    @staticmethod
    def _private_chat(person: FakeUser) -> dict[str, Any]:
        chat: dict[str, Any] = {"id": person.id, "type": "private", "first_name": person.first_name}
        if person.last_name:
            chat["last_name"] = person.last_name
        if person.username:
            chat["username"] = person.username
        return chat

    def _sender_and_chat(
        self, chat_id: int, user_id: int | None, chat_type: ChatType, chat_title: str | None
    ) -> tuple[FakeUser, dict[str, Any]]:
        if chat_type == "private":
            if user_id is not None and user_id != chat_id:
                raise ValueError("in a private chat the sender is the chat (user_id == chat_id)")
            person = self._person(chat_id)
            return person, self._chats[chat_id]
        if user_id is None:
            raise ValueError(f"a {chat_type} message needs user_id (who sends it)")
        if chat_id >= 0:
            raise ValueError("group and channel chat ids are negative")
        person = self._person(user_id)
        chat = self._chats.get(chat_id)
        if chat is None or chat.get("type") != chat_type:
            chat = {"id": chat_id, "type": chat_type, "title": chat_title or f"Group {chat_id}"}
            self._chats[chat_id] = chat
        elif chat_title:
            chat["title"] = chat_title
        return person, chat

    def _next_message_id(self, chat_id: int) -> int:
        counter = self._message_ids.setdefault(chat_id, itertools.count(1))
        return next(counter)

    def _user_message(
        self,
        chat_id: int,
        user_id: int | None,
        chat_type: ChatType,
        chat_title: str | None,
        content: dict[str, Any],
        forward_from: FakeUser | int | None = None,
    ) -> int:
        person, chat = self._sender_and_chat(chat_id, user_id, chat_type, chat_title)
        message_id = self._next_message_id(chat_id)
        message: dict[str, Any] = {
            "message_id": message_id,
            "from": person.to_dict(),
            "chat": dict(chat),
            "date": int(time.time()),
        }
        if forward_from is not None:
            origin = forward_from if isinstance(forward_from, FakeUser) else None
            if origin is None:
                assert isinstance(forward_from, int)
                origin = self._person(forward_from)
            message["forward_origin"] = {
                "type": "user",
                "date": int(time.time()) - 60,
                "sender_user": origin.to_dict(),
            }
        message.update(content)
        self._user_messages.setdefault(chat_id, {})[message_id] = message
        # A copy: a later edit changes the stored message, not the update already sent.
        self._enqueue({"message": dict(message)})
        return message_id

    def _enqueue(self, update: dict[str, Any]) -> int:
        update_id = next(self._update_ids)
        update = {"update_id": update_id, **update}
        self._updates.append(update)
        logger.debug("fake telegram: enqueued update %d (%s)", update_id, _update_type(update))
        self._notify()
        return update_id

    # -- producing updates -------------------------------------------------------------

    def send_text(
        self,
        chat_id: int,
        text: str,
        *,
        user_id: int | None = None,
        chat_type: ChatType = "private",
        chat_title: str | None = None,
        forward_from: FakeUser | int | None = None,
    ) -> int:
        """A user sends ``text``; returns the new message's id.

        A leading ``/command`` (optionally ``/command@botname``) gets a ``bot_command`` entity,
        so PTB's ``CommandHandler`` matches. For groups pass a negative ``chat_id``,
        ``chat_type="group"``/``"supergroup"`` and the sender's ``user_id``.
        """
        content: dict[str, Any] = {"text": text}
        entities = self._command_entities(text)
        if entities:
            content["entities"] = entities
        return self._user_message(chat_id, user_id, chat_type, chat_title, content, forward_from)

    def send_contact(
        self,
        chat_id: int,
        phone_number: str,
        *,
        contact_user_id: int | None = _MISSING,
        user_id: int | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
        vcard: str | None = None,
        chat_type: ChatType = "private",
        forward_from: FakeUser | int | None = None,
    ) -> int:
        """A user shares a contact; returns the message id.

        By default it is the sender's own contact (``contact.user_id`` == sender, as when the
        "share my phone number" button is pressed). Pass another ``contact_user_id`` for
        somebody else's card, or ``None`` for a contact without a Telegram account.
        """
        sender_id = user_id if user_id is not None else chat_id
        sender = self._person(sender_id)
        contact: dict[str, Any] = {
            "phone_number": phone_number,
            "first_name": first_name or sender.first_name,
        }
        if last_name:
            contact["last_name"] = last_name
        resolved = sender_id if contact_user_id is _MISSING else contact_user_id
        if resolved is not None:
            contact["user_id"] = resolved
        if vcard:
            contact["vcard"] = vcard
        return self._user_message(
            chat_id, user_id, chat_type, None, {"contact": contact}, forward_from
        )

    def send_sticker(
        self,
        chat_id: int,
        *,
        emoji: str = "👍",
        user_id: int | None = None,
        chat_type: ChatType = "private",
    ) -> int:
        """A user sends a (static) sticker; returns the message id."""
        sticker = {
            "file_id": f"STICKER{chat_id}",
            "file_unique_id": "stk1",
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": emoji,
        }
        return self._user_message(chat_id, user_id, chat_type, None, {"sticker": sticker})

    def send_photo(
        self,
        chat_id: int,
        *,
        caption: str | None = None,
        user_id: int | None = None,
        chat_type: ChatType = "private",
    ) -> int:
        """A user sends a photo (two sizes), optionally captioned; returns the message id."""
        photo = [
            {"file_id": f"PHOTO{chat_id}s", "file_unique_id": "ph1", "width": 90, "height": 90},
            {"file_id": f"PHOTO{chat_id}m", "file_unique_id": "ph2", "width": 800, "height": 800},
        ]
        content: dict[str, Any] = {"photo": photo}
        if caption is not None:
            content["caption"] = caption
        return self._user_message(chat_id, user_id, chat_type, None, content)

    def send_location(
        self,
        chat_id: int,
        latitude: float = 51.5074,
        longitude: float = -0.1278,
        *,
        user_id: int | None = None,
        chat_type: ChatType = "private",
    ) -> int:
        """A user shares a location; returns the message id."""
        location = {"latitude": latitude, "longitude": longitude}
        return self._user_message(chat_id, user_id, chat_type, None, {"location": location})

    def send_voice(
        self,
        chat_id: int,
        *,
        duration: int = 3,
        user_id: int | None = None,
        chat_type: ChatType = "private",
    ) -> int:
        """A user sends a voice note; returns the message id."""
        voice = {
            "file_id": f"VOICE{chat_id}",
            "file_unique_id": "vc1",
            "duration": duration,
            "mime_type": "audio/ogg",
        }
        return self._user_message(chat_id, user_id, chat_type, None, {"voice": voice})

    def edit_text(self, chat_id: int, message_id: int, new_text: str) -> int:
        """The user edits their earlier text message (an ``edited_message`` update).

        Returns ``message_id``.
        """
        message = self._user_messages.get(chat_id, {}).get(message_id)
        if message is None or message_id in self._deleted.get(chat_id, set()):
            raise LookupError(f"no user message {message_id} in chat {chat_id}")
        if "text" not in message:
            raise ValueError(f"message {message_id} in chat {chat_id} is not a text message")
        message["text"] = new_text
        message["edit_date"] = int(time.time())
        entities = self._command_entities(new_text)
        if entities:
            message["entities"] = entities
        else:
            message.pop("entities", None)
        self._enqueue({"edited_message": dict(message)})
        return message_id

    def send_update(self, update: Mapping[str, Any]) -> int:
        """Deliver an update exactly as given: one Telegram rarely sends or a malformed one,
        often one taken with :meth:`take_updates` and changed. It keeps its ``update_id``
        (a new one is given without it); returns the ``update_id``."""
        update_id = update.get("update_id")
        if update_id is None:
            return self._enqueue(dict(update))
        if not isinstance(update_id, int):
            raise ValueError("getUpdates confirms updates by their numeric update_id")
        self._updates.append(dict(update))
        self._notify()
        return update_id

    @staticmethod
    def _command_entities(text: str) -> list[dict[str, Any]]:
        command = re.match(r"/[A-Za-z0-9_]+(?:@[A-Za-z0-9_]+)?", text)
        if not command:
            return []
        length = len(command.group(0).encode("utf-16-le")) // 2
        return [{"type": "bot_command", "offset": 0, "length": length}]

    def press_button(
        self,
        chat_id: int,
        message_id: int,
        callback_data: str,
        *,
        user_id: int | None = None,
        strict: bool = True,
    ) -> str:
        """A user presses an inline button of bot message ``message_id``.

        Enqueues a ``callback_query`` update and returns its id. With ``strict`` (default) the
        message must carry an inline button with that ``callback_data``.
        """
        sent = self._bot_messages.get(chat_id, {}).get(message_id)
        if sent is None or sent.deleted:
            raise LookupError(f"no (undeleted) bot message {message_id} in chat {chat_id}")
        if strict:
            available = [data for _, data in sent.inline_buttons if data is not None]
            if callback_data not in available:
                raise ValueError(
                    f"message {message_id} has no inline button with callback_data "
                    f"{callback_data!r}; it has {available}"
                )
        sender_id = user_id if user_id is not None else chat_id
        if sender_id <= 0:
            raise ValueError("press_button in a group needs user_id")
        query_id = f"{self.bot_id}{next(self._callback_ids):08d}"
        self._callback_queries[query_id] = _CallbackQuery(chat_id, message_id, callback_data)
        instance = hashlib.sha256(f"{self.bot_id}:{chat_id}".encode()).hexdigest()[:16]
        self._enqueue(
            {
                "callback_query": {
                    "id": query_id,
                    "from": self._person(sender_id).to_dict(),
                    "message": self._bot_message_dict(sent),
                    "chat_instance": instance,
                    "data": callback_data,
                }
            }
        )
        return query_id

    def click(self, message: SentMessage, button_text: str, *, user_id: int | None = None) -> str:
        """Press the inline button labelled ``button_text`` on ``message``; returns the
        callback query id."""
        data = message.callback_data(button_text)
        return self.press_button(message.chat_id, message.message_id, data, user_id=user_id)

    # -- fault injection ---------------------------------------------------------------

    def fail_next(
        self,
        method: str | None,
        status: int,
        description: str | None = None,
        retry_after: int | None = None,
        times: int | None = 1,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` (any method if ``None``) with an error;
        ``times=None``: every call until :meth:`clear_faults`.

        For 429 the reply carries ``parameters.retry_after`` (default 1 s), which PTB turns
        into ``RetryAfter``. 403 → ``Forbidden``, 400 → ``BadRequest``, 5xx → ``NetworkError``.
        """
        if status == 429 and retry_after is None:
            retry_after = 1
        if description is None:
            description = _DEFAULT_DESCRIPTIONS.get(status, f"Error {status}")
            if status == 429:
                description = f"Too Many Requests: retry after {retry_after}"
        self._faults.append(
            _Fault(
                method=method.lower() if method else None,
                kind="fail",
                remaining=_times(times),
                status=status,
                description=description,
                retry_after=retry_after,
            )
        )

    def drop_next(self, method: str | None, times: int | None = 1) -> None:
        """Close the connection of the next ``times`` calls of ``method`` (any method if
        ``None``) without answering (``times=None``: until :meth:`clear_faults`): the call has
        no effect and PTB raises ``NetworkError``."""
        self._faults.append(_Fault(method.lower() if method else None, "drop", _times(times)))

    def hang_next(self, method: str | None, times: int | None = 1) -> None:
        """Hold the next ``times`` calls of ``method`` (any method if ``None``) open without
        answering (``times=None``: until :meth:`clear_faults`), as an unreachable network
        does; they are answered normally once :meth:`clear_faults` is called, and dropped when
        the server stops. A held call counts as busy for :meth:`wait_idle`."""
        self._faults.append(_Fault(method.lower() if method else None, "hang", _times(times)))

    def clear_faults(self) -> None:
        """Forget every pending fail/drop/hang and release the held calls (Telegram is back)."""
        self._faults.clear()
        self._release.set()
        self._release = asyncio.Event()

    def block_user(self, chat_id: int) -> None:
        """From now on every send/edit to ``chat_id`` answers 403 "bot was blocked by the
        user"."""
        self._blocked.add(chat_id)

    def unblock_user(self, chat_id: int) -> None:
        """Undo :meth:`block_user`."""
        self._blocked.discard(chat_id)

    # -- observing ---------------------------------------------------------------------

    #: :func:`reply_markup_buttons`, also reachable as ``fake.reply_markup_buttons(msg)``
    reply_markup_buttons = staticmethod(reply_markup_buttons)

    def messages(self, chat_id: int, *, include_deleted: bool = True) -> list[SentMessage]:
        """The bot's messages to ``chat_id`` in send order (current state after edits)."""
        found = list(self._bot_messages.get(chat_id, {}).values())
        return found if include_deleted else [m for m in found if not m.deleted]

    def deleted(self, chat_id: int) -> set[int]:
        """Ids of messages (the user's or the bot's) the bot deleted in ``chat_id``."""
        return set(self._deleted.get(chat_id, set()))

    def user_message(self, chat_id: int, message_id: int) -> dict[str, Any]:
        """The ``Message`` dict of a simulated user's message."""
        return self._user_messages[chat_id][message_id]

    def calls_to(self, method: str) -> list[dict[str, Any]]:
        """Parameters of every call of ``method`` (case-insensitive), in order."""
        wanted = method.lower()
        return [call.params for call in self.calls if call.method.lower() == wanted]

    def commands(self, language_code: str | None = None) -> list[Any]:
        """Commands set with setMyCommands for the default scope and a language (None: the
        ones for users of every language without their own)."""
        key = self._commands_key({"language_code": language_code})
        return list(self._commands.get(key, []))

    def current_keyboard(self, chat_id: int) -> dict[str, Any] | None:
        """The reply keyboard the user currently sees in ``chat_id`` (the last
        ``keyboard`` markup sent, unless removed later), or ``None``."""
        for message in reversed(self.messages(chat_id)):
            kind = message.keyboard_kind
            if kind == "reply":
                return message.reply_markup
            if kind == "remove":
                return None
        return None

    @property
    def pending_updates(self) -> int:
        """Number of updates not yet confirmed by a later ``getUpdates`` offset."""
        return len(self._updates)

    def take_updates(self) -> list[dict[str, Any]]:
        """Remove and return every pending update, for delivering them some other way (as
        Telegram does to a webhook); a poller will not see them."""
        taken, self._updates = self._updates, []
        self._notify()
        return taken

    @property
    def webhook_url(self) -> str:
        return self._webhook_url

    # -- waiting -----------------------------------------------------------------------

    def _pending(self, chat_id: int) -> list[SentMessage]:
        sent = self.messages(chat_id)
        return sent[self._cursor.get(chat_id, 0) :]

    def drain(self, chat_id: int) -> list[SentMessage]:
        """Consume and return every not-yet-consumed bot message to ``chat_id``."""
        pending = self._pending(chat_id)
        self._cursor[chat_id] = len(self.messages(chat_id))
        return pending

    async def next_reply(self, chat_id: int, timeout: float = 5.0) -> SentMessage:  # noqa: ASYNC109
        """The next not-yet-consumed bot message to ``chat_id``, waiting up to ``timeout``.

        Raises:
            TimeoutError: nothing new arrived; the message lists what the chat holds.
        """
        await self.wait_for(
            lambda: bool(self._pending(chat_id)),
            timeout,
            lambda: f"no new bot message in chat {chat_id}",
            chat_id=chat_id,
        )
        message = self._pending(chat_id)[0]
        self._cursor[chat_id] = self._cursor.get(chat_id, 0) + 1
        return message

    async def wait_for_messages(
        self,
        chat_id: int,
        count: int,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> list[SentMessage]:
        """Consume the next ``count`` bot messages to ``chat_id`` (one overall ``timeout``)."""
        await self.wait_for(
            lambda: len(self._pending(chat_id)) >= count,
            timeout,
            lambda: (
                f"expected {count} new bot messages in chat {chat_id}, "
                f"got {len(self._pending(chat_id))}"
            ),
            chat_id=chat_id,
        )
        return [await self.next_reply(chat_id, 0) for _ in range(count)]

    async def wait_for(
        self,
        predicate: Callable[[], bool],
        timeout: float = 5.0,  # noqa: ASYNC109
        what: str | Callable[[], str] = "condition",
        *,
        chat_id: int | None = None,
    ) -> None:
        """Wait until ``predicate()`` holds; it is re-checked after every API call/update.

        Raises ``TimeoutError`` (mentioning ``what`` and, with ``chat_id``, that chat's
        messages) when ``timeout`` passes.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0:
                label = what() if callable(what) else what
                raise TimeoutError(f"{label} within {timeout:g}s; {self._diagnostics(chat_id)}")
            await self._wait_changed(min(remaining, 0.25))

    async def wait_idle(self, timeout: float = 5.0, *, quiet: float | None = None) -> None:  # noqa: ASYNC109
        """Wait until every enqueued update was confirmed through ``getUpdates`` and no API
        call (other than getUpdates) is running or has arrived for ``quiet`` seconds
        (default :attr:`idle_quiet`, 50 ms).

        Heuristic: a handler that spends longer than ``quiet`` on something other than
        Telegram calls looks idle.
        """
        quiet = self.idle_quiet if quiet is None else quiet
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            silent_for = time.monotonic() - self._last_activity
            if not self._updates and not self._inflight and silent_for >= quiet:
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(
                    f"bot not idle within {timeout:g}s: {len(self._updates)} updates not "
                    f"confirmed, {self._inflight} calls running; {self._diagnostics(None)}"
                )
            step = max(quiet - silent_for, 0.005) if not self._updates else 0.25
            await self._wait_changed(min(remaining, step))

    def _diagnostics(self, chat_id: int | None) -> str:
        parts: list[str] = []
        if chat_id is not None:
            sent = self.messages(chat_id)
            cursor = self._cursor.get(chat_id, 0)
            if sent:
                listing = "; ".join(
                    ("(consumed) " if i < cursor else "") + m.describe() for i, m in enumerate(sent)
                )
                parts.append(f"bot messages in chat {chat_id}: {listing}")
            else:
                parts.append(f"the bot sent nothing to chat {chat_id}")
        recent = [c.method for c in self.calls if c.method != "getUpdates"][-8:]
        parts.append(f"recent API calls: {recent or 'none'}")
        parts.append(f"{len(self._updates)} updates pending")
        if not self.started:
            parts.append("server is not running")
        return "; ".join(parts)

    # -- HTTP --------------------------------------------------------------------------

    def _build_app(self) -> web.Application:
        app = web.Application(client_max_size=60 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    @staticmethod
    def _reply(status: int, payload: dict[str, Any]) -> web.Response:
        return web.json_response(payload, status=status)

    def _error(self, error: _ApiError) -> web.Response:
        payload: dict[str, Any] = {
            "ok": False,
            "error_code": error.status,
            "description": error.description,
        }
        if error.parameters:
            payload["parameters"] = error.parameters
        return self._reply(error.status, payload)

    async def _read_params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = {k: _decode_value(k, v) for k, v in request.query.items()}
        if not request.can_read_body:
            return params
        ctype = request.content_type
        if ctype == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise _ApiError(400, "Bad Request: can't parse JSON object") from None
            if not isinstance(body, dict):
                raise _ApiError(400, "Bad Request: can't parse JSON object")
            params.update(body)
        elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    content = value.file.read()
                    params[key] = {
                        "filename": value.filename,
                        "content_type": value.content_type,
                        "size": len(content),
                    }
                else:
                    params[key] = _decode_value(key, str(value))
        else:
            await request.read()
        return params

    async def _handle(self, request: web.Request) -> web.Response:
        path = request.path
        if path.startswith("/file/"):
            return self._error(_ApiError(404, "Not Found"))
        match = re.fullmatch(r"/bot(?P<token>[^/]+)/(?P<method>[A-Za-z0-9_]+)/?", path)
        if match is None:
            return self._error(_ApiError(404, "Not Found"))
        raw_method = match.group("method")
        method = self._canonical.get(raw_method.lower(), raw_method)
        polling = method == "getUpdates"
        if not polling:
            self._inflight += 1
            self._last_activity = time.monotonic()
        try:
            try:
                params = await self._read_params(request)
            except _ApiError as exc:
                self.calls.append(ApiCall(method, {}))
                return self._error(exc)
            self.calls.append(ApiCall(method, params))
            logger.debug("fake telegram: %s %s", method, sorted(params))
            self._notify()
            if match.group("token") != self.token:
                return self._error(_ApiError(401, "Unauthorized"))
            fault = self._take_fault(method)
            if fault is not None:
                answer = await self._apply_fault(fault, request)
                if answer is not None:
                    return answer
            try:
                result = await self._dispatch(method, params)
            except _ApiError as exc:
                logger.debug("fake telegram: %s -> %d %s", method, exc.status, exc.description)
                return self._error(exc)
            return self._reply(200, {"ok": True, "result": result})
        finally:
            if not polling:
                self._inflight -= 1
                self._last_activity = time.monotonic()
            self._notify()

    async def _dispatch(self, method: str, params: dict[str, Any]) -> Any:
        handler = self._handlers.get(method)
        if handler is None:
            raise _ApiError(404, "Not Found")
        if self._is_blocked(method, params):
            raise _ApiError(403, _FORBIDDEN_BLOCKED)
        result = handler(params)
        if asyncio.iscoroutine(result):
            result = await result
        return result

    def _take_fault(self, method: str) -> _Fault | None:
        lowered = method.lower()
        for fault in self._faults:
            if fault.method is None or fault.method == lowered:
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                return fault
        return None

    async def _apply_fault(self, fault: _Fault, request: web.Request) -> web.Response | None:
        """The effect of a fault on a call: an error answer, a dropped connection, or a
        hold until the faults are cleared (then None: the call is answered normally)."""
        if fault.kind == "hang":
            release = asyncio.ensure_future(self._release.wait())
            stopping = asyncio.ensure_future(self._stopping.wait())
            try:
                await asyncio.wait((release, stopping), return_when=asyncio.FIRST_COMPLETED)
            finally:
                release.cancel()
                stopping.cancel()
            if not self.stopping:
                return None
        if fault.kind in ("drop", "hang"):
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=500)  # never reaches the client
        parameters = {"retry_after": fault.retry_after} if fault.retry_after is not None else None
        return self._error(_ApiError(fault.status, fault.description, parameters))

    def _is_blocked(self, method: str, params: dict[str, Any]) -> bool:
        if not self._blocked or not method.startswith(("send", "edit")):
            return False
        try:
            return _as_int(params.get("chat_id"), "chat_id") in self._blocked
        except _ApiError:
            return False

    # -- API methods -------------------------------------------------------------------

    def _true(self, params: dict[str, Any]) -> bool:
        return True

    def _get_me(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def _confirm(self, offset: int) -> None:
        if offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        elif offset < 0:
            self._updates = self._updates[offset:]

    def _deliverable(self, limit: int) -> list[dict[str, Any]]:
        kept: list[dict[str, Any]] = []
        for update in self._updates:
            kind = _update_type(update)
            if self._allowed_updates is not None:
                allowed = kind in self._allowed_updates
            else:
                allowed = kind not in _NOT_DEFAULT_UPDATES
            if allowed:
                kept.append(update)
        self._updates = kept  # Telegram does not keep what the bot did not ask for
        return kept[:limit]

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        if self._webhook_url:
            raise _ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = _as_int(params.get("offset", 0), "offset")
        limit = min(max(_as_int(params.get("limit", 100), "limit"), 1), 100)
        timeout = max(_as_float(params.get("timeout", 0), "timeout"), 0.0)
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = {str(a) for a in allowed} if allowed else None
        self._confirm(offset)
        self._poll_generation += 1
        generation = self._poll_generation
        self._notify()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if generation != self._poll_generation:
                raise _ApiError(409, _DEFAULT_DESCRIPTIONS[409])
            batch = self._deliverable(limit)
            remaining = deadline - loop.time()
            if batch or remaining <= 0 or self.stopping:
                return batch
            await self._wait_changed(min(remaining, self.poll_slice))

    def _set_webhook(self, params: dict[str, Any]) -> bool:
        url = str(params.get("url", ""))
        if url and not url.startswith("https://"):
            raise _ApiError(400, "Bad Request: bad webhook: An HTTPS URL must be provided")
        self._webhook_url = url
        if _as_bool(params.get("drop_pending_updates", False)):
            self._updates.clear()
        return True

    def _delete_webhook(self, params: dict[str, Any]) -> bool:
        self._webhook_url = ""
        if _as_bool(params.get("drop_pending_updates", False)):
            self._updates.clear()
        return True

    def _get_webhook_info(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": self._webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }

    @staticmethod
    def _commands_key(params: Mapping[str, Any]) -> str:
        scope = params.get("scope") or {"type": "default"}
        return json.dumps([scope, params.get("language_code") or ""], sort_keys=True)

    def _set_my_commands(self, params: dict[str, Any]) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise _ApiError(400, "Bad Request: can't parse commands JSON object")
        for command in commands:
            name = command.get("command") if isinstance(command, dict) else None
            if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9_]{1,32}", name):
                raise _ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
        self._commands[self._commands_key(params)] = commands
        return True

    def _delete_my_commands(self, params: dict[str, Any]) -> bool:
        self._commands.pop(self._commands_key(params), None)
        return True

    def _get_my_commands(self, params: dict[str, Any]) -> list[Any]:
        return list(self._commands.get(self._commands_key(params), []))

    def _chat(self, params: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        chat_id = _as_int(params.get("chat_id"), "chat_id") if "chat_id" in params else None
        if chat_id is None:
            raise _ApiError(400, "Bad Request: chat_id is empty")
        chat = self._chats.get(chat_id)
        if chat is None:
            if self.strict_chats:
                raise _ApiError(400, "Bad Request: chat not found")
            chat = {"id": chat_id, "type": "private" if chat_id > 0 else "group"}
            if chat_id > 0:
                chat["first_name"] = f"User{chat_id}"
            else:
                chat["title"] = f"Group {chat_id}"
            self._chats[chat_id] = chat
        return chat_id, chat

    def _bot_message_dict(self, sent: SentMessage) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": sent.message_id,
            "from": self.bot_user,
            "chat": dict(self._chats.get(sent.chat_id, {"id": sent.chat_id, "type": "private"})),
            "date": sent.date,
            "text": sent.plain_text,
        }
        if sent.entities:
            message["entities"] = sent.entities
        if sent.edit_date is not None:
            message["edit_date"] = sent.edit_date
        if sent.keyboard_kind == "inline":
            message["reply_markup"] = sent.reply_markup
        if sent.reply_to_message_id is not None:
            original = self._user_messages.get(sent.chat_id, {}).get(sent.reply_to_message_id)
            if original is not None:
                message["reply_to_message"] = original
        return message

    @staticmethod
    def _text_param(params: Mapping[str, Any], parse_mode: str | None) -> str:
        text = params.get("text")
        if not isinstance(text, str) or not _strip_markup(text, parse_mode).strip():
            raise _ApiError(400, "Bad Request: message text is empty")
        if len(_strip_markup(text, parse_mode)) > _MAX_TEXT:
            raise _ApiError(400, "Bad Request: message is too long")
        return text

    def _reply_to(self, chat_id: int, params: Mapping[str, Any]) -> int | None:
        target: Any = params.get("reply_to_message_id")
        allow_missing = _as_bool(params.get("allow_sending_without_reply", False))
        reply_parameters = params.get("reply_parameters")
        if isinstance(reply_parameters, dict):
            target = reply_parameters.get("message_id")
            allow_missing = _as_bool(reply_parameters.get("allow_sending_without_reply", False))
        if target is None:
            return None
        message_id = _as_int(target, "message_id")
        known = message_id in self._user_messages.get(
            chat_id, {}
        ) or message_id in self._bot_messages.get(chat_id, {})
        if not known or message_id in self._deleted.get(chat_id, set()):
            if allow_missing:
                return None
            raise _ApiError(400, "Bad Request: message to be replied not found")
        return message_id

    def _send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id, _ = self._chat(params)
        parse_mode = params.get("parse_mode") or None
        text = self._text_param(params, parse_mode)
        markup = _check_markup(params.get("reply_markup"))
        entities = params.get("entities")
        sent = SentMessage(
            chat_id=chat_id,
            message_id=self._next_message_id(chat_id),
            text=text,
            reply_markup=markup,
            parse_mode=parse_mode,
            entities=entities if isinstance(entities, list) else None,
            reply_to_message_id=self._reply_to(chat_id, params),
            date=int(time.time()),
            params=params,
        )
        self._bot_messages.setdefault(chat_id, {})[sent.message_id] = sent
        logger.debug("fake telegram: bot -> chat %d: message %d", chat_id, sent.message_id)
        self._run_hook(self.on_message, sent)
        return self._bot_message_dict(sent)

    def _editable(self, params: Mapping[str, Any]) -> SentMessage:
        if "inline_message_id" in params:
            raise _ApiError(400, "Bad Request: MESSAGE_ID_INVALID")
        chat_id, _ = self._chat(params)
        message_id = _as_int(params.get("message_id"), "message_id")
        sent = self._bot_messages.get(chat_id, {}).get(message_id)
        if sent is None or sent.deleted:
            if message_id in self._user_messages.get(
                chat_id, {}
            ) and message_id not in self._deleted.get(chat_id, set()):
                raise _ApiError(400, "Bad Request: message can't be edited")
            raise _ApiError(400, "Bad Request: message to edit not found")
        return sent

    def _apply_edit(
        self,
        sent: SentMessage,
        text: str | None,
        parse_mode: str | None,
        markup: dict[str, Any] | None,
        entities: list[Any] | None,
    ) -> dict[str, Any]:
        if markup is not None and "inline_keyboard" not in markup:
            raise _ApiError(400, "Bad Request: inline keyboard expected")
        new_markup = markup
        if markup is None and sent.keyboard_kind != "inline":
            new_markup = sent.reply_markup  # a reply keyboard is not part of the message
        new_text = sent.text if text is None else text
        new_mode = sent.parse_mode if text is None else parse_mode
        if (
            _strip_markup(new_text, new_mode) == sent.plain_text
            and (text is None or entities == sent.entities or entities is None)
            and new_markup == sent.reply_markup
        ):
            raise _ApiError(
                400,
                "Bad Request: message is not modified: specified new message content and "
                "reply markup are exactly the same as a current content and reply markup "
                "of the message",
            )
        if text is not None and new_text != sent.text:
            sent.history.append(sent.text)
        sent.text = new_text
        sent.parse_mode = new_mode
        if text is not None:
            sent.entities = entities
        sent.reply_markup = new_markup
        sent.edited = True
        sent.edit_date = int(time.time())
        logger.debug(
            "fake telegram: bot edited message %d in chat %d", sent.message_id, sent.chat_id
        )
        self._run_hook(self.on_message, sent)
        return self._bot_message_dict(sent)

    def _edit_message_text(self, params: dict[str, Any]) -> dict[str, Any]:
        sent = self._editable(params)
        parse_mode = params.get("parse_mode") or None
        text = self._text_param(params, parse_mode)
        entities = params.get("entities")
        return self._apply_edit(
            sent,
            text,
            parse_mode,
            _check_markup(params.get("reply_markup")),
            entities if isinstance(entities, list) else None,
        )

    def _edit_message_reply_markup(self, params: dict[str, Any]) -> dict[str, Any]:
        sent = self._editable(params)
        return self._apply_edit(sent, None, None, _check_markup(params.get("reply_markup")), None)

    def _delete_message(self, params: dict[str, Any]) -> bool:
        chat_id, _ = self._chat(params)
        message_id = _as_int(params.get("message_id"), "message_id")
        deleted = self._deleted.setdefault(chat_id, set())
        sent = self._bot_messages.get(chat_id, {}).get(message_id)
        known = sent is not None or message_id in self._user_messages.get(chat_id, {})
        if not known or message_id in deleted:
            raise _ApiError(400, "Bad Request: message to delete not found")
        deleted.add(message_id)
        if sent is not None:
            sent.deleted = True
        logger.debug("fake telegram: bot deleted message %d in chat %d", message_id, chat_id)
        self._run_hook(self.on_delete, chat_id, message_id)
        return True

    def _answer_callback_query(self, params: dict[str, Any]) -> bool:
        query_id = str(params.get("callback_query_id", ""))
        query = self._callback_queries.get(query_id)
        if query is None or query.answered:
            raise _ApiError(
                400,
                "Bad Request: query is too old and response timeout expired or query ID is invalid",
            )
        query.answered = True
        text = params.get("text")
        cache_time = params.get("cache_time")
        url = params.get("url")
        answer = CallbackAnswer(
            callback_query_id=query_id,
            text=str(text) if text is not None else None,
            show_alert=_as_bool(params.get("show_alert", False)),
            url=str(url) if url is not None else None,
            cache_time=_as_int(cache_time, "cache_time") if cache_time is not None else None,
            chat_id=query.chat_id,
            message_id=query.message_id,
            data=query.data,
        )
        self.callback_answers.append(answer)
        self._run_hook(self.on_callback_answer, answer)
        return True
