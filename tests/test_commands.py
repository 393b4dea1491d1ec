"""The command table (`bot.telegram.commands.COMMANDS`) is the only list of commands: the
menu Telegram shows, /help and the handlers that answer all come from it."""

from __future__ import annotations

from bot import texts
from bot.demo.sandbox import FakeTelegram
from bot.telegram.commands import COMMANDS, Chats, When
from tests.helpers import ADMIN_ID, BOT_USERNAME, Chat

POINTER = texts.PRIVATE_ONLY.format(link=f"https://t.me/{BOT_USERNAME}")


async def _answers(
    tg: FakeTelegram, chat_id: int, text: str, *, group_member: int | None = None
) -> list[str]:
    """Send `text` to the bot (in a private chat, or in a group from `group_member`) and
    return everything it answers."""
    if group_member is None:
        tg.send_text(chat_id, text)
    else:
        tg.send_text(chat_id, text, user_id=group_member, chat_type="group")
    first = await tg.wait_for_messages(chat_id, 1, timeout=10)
    await tg.wait_idle(timeout=10, quiet=0.2)
    return [message.text for message in first + tg.drain(chat_id)]


async def test_the_menu_set_at_start_is_the_tables_menu_lines_in_order(
    tg: FakeTelegram, bot: object
) -> None:
    menu = [(c["command"], c["description"]) for c in tg.commands()]
    assert menu == [(c.names[0], c.menu) for c in COMMANDS if c.menu is not None]
    assert ("login", texts.MENU_LOGIN) in menu


async def test_help_lists_exactly_the_table_commands_with_a_help_line(
    tg: FakeTelegram, bot: object
) -> None:
    user, admin = Chat(tg, 1001), Chat(tg, ADMIN_ID, "Boss")
    listed = [c for c in COMMANDS if c.help is not None]
    everyone = [c for c in listed if c.chats is not Chats.ADMIN]
    admins_only = [c for c in listed if c.chats is Chats.ADMIN]
    for chat, shown in ((user, everyone), (admin, everyone + admins_only)):
        text = await chat.say("/help")
        assert text.startswith(texts.HELP.format(commands="").rstrip())
        lines = text.replace("Admin: ", "").splitlines()
        names = [line.split(" ")[0] for line in lines if line.startswith("/")]
        assert names == [f"/{c.names[0]}" for c in shown]
        for command in listed:
            assert (f" - {command.help}" in text) == (command in shown)


async def test_every_private_command_in_a_group_gets_the_private_chat_pointer(
    tg: FakeTelegram, bot: object
) -> None:
    tg.user(ADMIN_ID, "Boss")
    names = {name: command.chats for command in COMMANDS for name in command.names}
    for group, (name, chats) in enumerate(names.items(), start=100):
        # One group per command: Telegram (and PTB's limiter) allow a group few messages.
        answers = await _answers(tg, -group, f"/{name}", group_member=ADMIN_ID)
        if chats is Chats.ANY:
            assert POINTER not in answers, name
        else:
            assert answers == [POINTER], name


async def test_every_command_is_answered_by_its_own_handler_outside_and_during_a_flow(
    tg: FakeTelegram, bot: object
) -> None:
    admin = Chat(tg, ADMIN_ID, "Boss")
    names = {name for command in COMMANDS for name in command.names}
    for name in sorted(names):
        # Outside a flow, not the catch-all pointer to /login.
        assert texts.OUTSIDE_FLOW not in await _answers(tg, admin.id, f"/{name}"), name
    in_flow = {
        name
        for command in COMMANDS
        if command.when is not When.OUTSIDE_FLOW
        for name in command.names
    }
    for name in sorted(in_flow):
        await _answers(tg, admin.id, "/login")
        # During a flow, not the reminder of what the flow waits for.
        assert texts.WAITING_FOR_NUMBER not in await _answers(tg, admin.id, f"/{name}"), name
