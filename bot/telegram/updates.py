"""What a webhook body must be before the bot acts on it: a Telegram update whose fields the
bot reads have the types the Bot API gives them.

python-telegram-bot builds an `Update` from any JSON without checking a type (an update_id
"x", a chat that is a string), and the wrong type then fails deep inside a handler or the
update processor. Telegram never sends such a body; `parse_update` turns one away before it
gets that far.
"""

from __future__ import annotations

import json
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from telegram import Bot, Update


class NotAnUpdate(ValueError):
    """The body is not a Telegram update; the message says why without quoting the body."""


# An id Telegram gives (of an update, a chat, a user, a message): an integer the database's
# BIGINT holds (Telegram's have at most 52 bits).
_Id = Annotated[int, Field(ge=-(1 << 63), lt=1 << 63)]


class _Shape(BaseModel):
    # Strict: a number in a string, or a boolean, is not an integer. Other fields (Telegram
    # adds some every year) are neither checked nor refused.
    model_config = ConfigDict(strict=True, extra="allow", frozen=True)


class _User(_Shape):
    id: _Id
    is_bot: bool
    first_name: str
    last_name: str | None = None
    username: str | None = None


class _Chat(_Shape):
    id: _Id
    type: str


class _Entity(_Shape):
    type: str
    offset: int
    length: int


class _Contact(_Shape):
    phone_number: str
    first_name: str
    user_id: _Id | None = None


class _Message(_Shape):
    message_id: _Id
    date: int
    chat: _Chat
    sender: _User | None = Field(default=None, alias="from")
    text: str | None = None
    entities: list[_Entity] | None = None
    contact: _Contact | None = None


class _CallbackQuery(_Shape):
    id: str
    sender: _User = Field(alias="from")
    chat_instance: str
    message: _Message | None = None
    data: str | None = None


class _Update(_Shape):
    """The update kinds the bot asks Telegram for (`bot.app.ALLOWED_UPDATES`), one field each."""

    update_id: _Id
    message: _Message | None = None
    edited_message: _Message | None = None
    callback_query: _CallbackQuery | None = None


#: the update kinds `parse_update` checks, and the only ones it passes on
KINDS = tuple(name for name in _Update.model_fields if name != "update_id")


def parse_update(body: bytes, bot: Bot) -> Update:
    """The update a webhook body holds, with only the kinds the bot handles (a kind it did
    not ask for is dropped, so an update may carry none). Raises `NotAnUpdate`."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise NotAnUpdate("not JSON") from None
    try:
        checked = _Update.model_validate(data)
    except ValidationError as error:
        first = error.errors(include_url=False, include_input=False, include_context=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "the body"
        what = "not a JSON object" if first["type"] == "model_type" else first["msg"]
        raise NotAnUpdate(f"{where}: {what}") from None
    kinds = {kind: data[kind] for kind in KINDS if getattr(checked, kind) is not None}
    try:
        return Update.de_json({"update_id": checked.update_id, **kinds}, bot)
    except Exception as error:
        # A field the bot never reads, of a type python-telegram-bot cannot build.
        raise NotAnUpdate(f"unreadable ({type(error).__name__})") from None
