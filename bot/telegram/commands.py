"""Every command the bot knows, in one ordered table: what handles it, where it is allowed,
its line in /help and in the command menu.

A new command is one `Command(...)` here (and its sentences in `bot.texts`); the handlers
(`bot.app.add_handlers`), the menu (setMyCommands, at start, once per language) and /help are
made from this table, in its order.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from telegram import BotCommand, Update
from telegram.ext import BaseHandler, CommandHandler, filters

from bot import texts
from bot.i18n import Texts
from bot.telegram.handlers import admin, common, login
from bot.telegram.handlers.base import BotContext, is_private, reply

Callback = Callable[[Update, BotContext], Coroutine[Any, Any, object]]
Handler = BaseHandler[Update, BotContext, object]


class Chats(enum.Enum):
    """Where a command is answered."""

    ANY = "any"  # groups too: the answer holds nothing about anyone
    PRIVATE = "private"  # private chats; in a group, a pointer to the private chat
    # As PRIVATE, for BOT_ADMIN_IDS only: to anyone else the command does not exist (it gets
    # what an unknown command gets; in a group, nothing).
    ADMIN = "admin"


class When(enum.Enum):
    """When a command is answered, relative to a login in progress."""

    ALWAYS = "always"  # with or without a login in progress
    STARTS_FLOW = "starts flow"  # opens the login conversation (or restarts it)
    IN_FLOW = "in flow"  # only while a login waits for a number or a code
    OUTSIDE_FLOW = "outside flow"  # only while no login is in progress


@dataclass(frozen=True, slots=True)
class Command:
    """One command: its names (the first is the one shown), its callback, where and when it
    is answered, and its lines in /help and the menu (None: not listed there)."""

    names: tuple[str, ...]
    callback: Callback
    chats: Chats = Chats.PRIVATE
    when: When = When.ALWAYS
    help: str | None = None
    menu: str | None = None
    args: str = ""  # shown after the name in /help, such as "[page]"
    has_args: bool | None = None  # only with arguments (True), only without (False), either

    def handler(self, admins: filters.User) -> Handler:
        """The handler that answers this command (`admins`: BOT_ADMIN_IDS as a filter), typed
        in a new message: never an edit, so editing an old message into a command changes
        nothing."""
        where: filters.BaseFilter = filters.UpdateType.MESSAGE
        if self.chats is Chats.PRIVATE:
            where = where & filters.ChatType.PRIVATE
        elif self.chats is Chats.ADMIN:
            # Anyone else's update is not matched at all, so it falls through to exactly the
            # handlers an unknown command reaches.
            where = where & filters.ChatType.PRIVATE & admins
        return CommandHandler(
            list(self.names), self.callback, filters=where, has_args=self.has_args
        )


async def show_help(update: Update, context: BotContext) -> None:
    """/help and /start: what the bot does and its commands (admins see theirs in private)."""
    user = update.effective_user
    is_admin = user is not None and user.id in context.services.admin_ids
    await reply(update, help_text(context.t, admin=is_admin and is_private(update)))


COMMANDS: tuple[Command, ...] = (
    Command(
        ("login",),
        login.start_login,
        when=When.STARTS_FLOW,
        help=texts.HELP_LOGIN,
        menu=texts.MENU_LOGIN,
    ),
    Command(("whoami", "status"), common.whoami, help=texts.HELP_WHOAMI, menu=texts.MENU_WHOAMI),
    Command(("logout",), common.logout, help=texts.HELP_LOGOUT, menu=texts.MENU_LOGOUT),
    Command(
        ("cancel",),
        login.cancel,
        when=When.IN_FLOW,
        help=texts.HELP_CANCEL,
        menu=texts.MENU_CANCEL,
    ),
    Command(("cancel",), common.nothing_to_cancel, when=When.OUTSIDE_FLOW),
    Command(("privacy",), common.privacy, chats=Chats.ANY, help=texts.HELP_PRIVACY),
    Command(("forget",), common.forget, help=texts.HELP_FORGET),
    Command(("language",), common.language, help=texts.HELP_LANGUAGE, menu=texts.MENU_LANGUAGE),
    # Order matters! A website's deep link (/start <token>) before /start's help.
    Command(("start",), login.start_from_link, has_args=True),
    Command(
        ("help", "start"), show_help, chats=Chats.ANY, help=texts.HELP_HELP, menu=texts.MENU_HELP
    ),
    Command(("users",), admin.users, chats=Chats.ADMIN, help=texts.HELP_USERS, args="[page]"),
    Command(("user",), admin.user, chats=Chats.ADMIN),
    Command(("revoke",), admin.revoke, chats=Chats.ADMIN),
    Command(("stats",), admin.stats, chats=Chats.ADMIN),
)


def handlers(when: When, *, admins: filters.User) -> list[Handler]:
    """The handlers of the commands answered at that point of a login, in table order."""
    return [command.handler(admins) for command in COMMANDS if command.when is when]


def private_names(chats: Chats = Chats.PRIVATE) -> list[str]:
    """The names of the commands answered in private chats only (`Chats.PRIVATE`), or of the
    admin commands (`Chats.ADMIN`)."""
    names = [name for c in COMMANDS if c.chats is chats for name in c.names]
    return list(dict.fromkeys(names))


def menu(t: Texts) -> list[BotCommand]:
    """The command menu Telegram shows (setMyCommands), in one language."""
    return [BotCommand(c.names[0], t(c.menu)) for c in COMMANDS if c.menu is not None]


def help_text(t: Texts, *, admin: bool) -> str:
    """/help: the introduction and one line per listed command (with the admin part)."""
    text = t(texts.HELP, commands=_help_lines(t, admin=False))
    if admin:
        text += t(texts.ADMIN_HELP, commands=_help_lines(t, admin=True))
    return text


def _help_lines(t: Texts, *, admin: bool) -> str:
    return "\n".join(
        texts.HELP_LINE.format(usage=f"/{c.names[0]} {c.args}".rstrip(), help=t(c.help))
        for c in COMMANDS
        if c.help is not None and (c.chats is Chats.ADMIN) == admin
    )
