"""The login's vocabulary: where a chat's login is, what became of what the user gave, and
what the bot has to tell them. Shared by the service, its storage and the handlers."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from bot.login.limits import Refusal

# The Telegram Gateway's channel, as VERIFY_WORKFLOW and a flow's `channel` name it.
GATEWAY_CHANNEL = "telegram"


class Method(enum.StrEnum):
    """How a login proved its number; shown to admins and in the audit trail."""

    SMS = "sms"
    VOICE = "voice"
    TELEGRAM_GATEWAY = "telegram_gateway"
    TELEGRAM_CONTACT = "telegram_contact"


class Step(enum.StrEnum):
    """Where a chat's login is; stored in `login_flows.step`."""

    NUMBER = "number"  # waiting for a phone number
    CODE = "code"  # a code is on its way; waiting for it
    EXPIRED = "expired"  # the code expired unused; the chat is told on its next message


class NoticeKind(enum.StrEnum):
    """Why a chat lost its login; stored in `chat_notices.kind`."""

    NUMBER_MOVED = "number_moved"  # the number was verified in another chat
    REVOKED = "revoked"  # an admin ended the login


@dataclass(frozen=True, slots=True)
class Notice:
    """What a chat is told once, on its next message, about the login it lost."""

    kind: NoticeKind
    phone_number: str | None


@dataclass(frozen=True, slots=True)
class ChatState:
    """A chat's step (None: no login in progress), the notice waiting for it, if any, and
    the language it chose with /language (None: it chose none)."""

    step: Step | None
    notice: Notice | None = None
    language: str | None = None


class NumberResult(enum.Enum):
    """What became of a number the user gave."""

    CODE_SENT = enum.auto()
    ALREADY_SENT = enum.auto()  # a request we started earlier for this chat is still running
    ALREADY_YOURS = enum.auto()  # this chat is already logged in with that number
    REFUSED = enum.auto()  # a destination rule: never sent there
    LIMITED = enum.auto()  # a rate limit: try again later
    INVALID_NUMBER = enum.auto()  # Vonage cannot send to it
    NUMBER_BUSY = enum.auto()  # another login is verifying that number right now
    BUSY = enum.auto()  # Vonage asked us to slow down
    UNAVAILABLE = enum.auto()  # Vonage failed or cannot be used
    NO_FLOW = enum.auto()  # the chat is not waiting for a number
    LOGGED_IN = enum.auto()  # proven without a code: the user's own contact, trusted


class CallResult(enum.Enum):
    """What became of a "call me instead"."""

    CALLING = enum.auto()
    NO_NEXT_CHANNEL = enum.auto()
    EXPIRED = enum.auto()
    UNAVAILABLE = enum.auto()
    NO_FLOW = enum.auto()


class CodeResult(enum.Enum):
    """What became of a code the user gave."""

    VERIFIED = enum.auto()
    WRONG = enum.auto()
    TOO_MANY = enum.auto()
    EXPIRED = enum.auto()
    UNAVAILABLE = enum.auto()
    NO_FLOW = enum.auto()


@dataclass(frozen=True, slots=True)
class Person:
    """Who is talking to the bot, as far as a login needs to know."""

    chat_id: int
    user_id: int
    username: str | None = None
    full_name: str | None = None


@dataclass(frozen=True, slots=True)
class NumberOutcome:
    """The answer to a number: the result, and what the bot needs to tell the user."""

    result: NumberResult
    refusal: Refusal | None = None
    expires_at: datetime | None = None
    phone_number: str | None = None
    alert: str | None = None  # admins should be told about this kind of trouble
    channel: str | None = None  # what a sent code goes by first (VERIFY_WORKFLOW's names)


@dataclass(frozen=True, slots=True)
class CodeOutcome:
    """The answer to a code."""

    result: CodeResult
    tries_left: int = 0
    phone_number: str | None = None
    alert: str | None = None
