"""Wire-level stand-ins for the remote services the bot talks to.

* :class:`FakeTelegram` — a Telegram Bot API server (plain HTTP) for python-telegram-bot;
* :class:`FakeVerify` — a Vonage Verify v2 server (HTTPS) for the ``vonage`` SDK;
* :class:`FakeGateway` — a Telegram Gateway API server (plain HTTP) for the Gateway channel;
* :class:`SandboxCA` — the throwaway CA behind ``FakeVerify``'s certificate.

All servers listen on ``127.0.0.1`` on a random free port, inside the running asyncio event
loop; start them with ``await fake.start()`` / ``await fake.stop()`` or ``async with``.
"""

from ._server import free_port
from .gateway import FakeGateway, GatewayCall, GatewayMessage, GatewayRequest
from .telegram import (
    ApiCall,
    CallbackAnswer,
    FakeTelegram,
    FakeUser,
    SentMessage,
    reply_markup_buttons,
)
from .tls import SandboxCA
from .verify import Delivery, FakeVerify, PathKind, Verification, VerifyCall, problem

__all__ = [
    "ApiCall",
    "CallbackAnswer",
    "Delivery",
    "FakeGateway",
    "FakeTelegram",
    "FakeUser",
    "FakeVerify",
    "GatewayCall",
    "GatewayMessage",
    "GatewayRequest",
    "PathKind",
    "SandboxCA",
    "SentMessage",
    "Verification",
    "VerifyCall",
    "free_port",
    "problem",
    "reply_markup_buttons",
]
