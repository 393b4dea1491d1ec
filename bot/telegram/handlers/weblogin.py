"""Logging in to a website, the Telegram side: the deep link `/start <token>` from the
website's login page, and the confirmation that follows.

    /start <token> ──► logged in (recently enough) ──► "<site> (<host>) asks to log you in as
                  │                                    <number>. Tap the number shown on that
                  │                                    page:" [n1] [n2] [n3] [Not me]
                  └──► not logged in ──► the usual login (number, code) ──► the same question
    the page's number ──► approved: the browser goes on to the website
    another number / Not me ──► refused: the website gets error=access_denied

The command table routes `/start <token>` to `bot.telegram.handlers.login.start_from_link`,
since a link may start a login; this module answers the link and the buttons.
"""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update

from bot import texts
from bot.i18n import Texts
from bot.login import phone
from bot.login.weblogin import AnswerResult, Confirmation, LinkOutcome, LinkResult
from bot.telegram.handlers.base import BotContext, edit_quietly, is_private, person_of, reply

CONFIRM_CALLBACK = "web:"
NOT_ME = "no"


def confirmation_keyboard(t: Texts, confirmation: Confirmation) -> InlineKeyboardMarkup:
    """Three number buttons (one is the page's) and "Not me"."""
    prefix = f"{CONFIRM_CALLBACK}{confirmation.request_id}:"
    numbers = [
        InlineKeyboardButton(str(n), callback_data=f"{prefix}{n}") for n in confirmation.choices
    ]
    not_me = InlineKeyboardButton(t(texts.WEB_NOT_ME_BUTTON), callback_data=f"{prefix}{NOT_ME}")
    return InlineKeyboardMarkup([numbers, [not_me]])


async def open_link(update: Update, context: BotContext) -> bool:
    """Answer `/start <token>`; True when the chat must log in first (the caller starts
    the login, which ends with `offer_after_login`)."""
    web = context.services.web
    token = context.args[0] if context.args else ""
    if web is None:
        await reply(update, context.t(texts.WEB_LINK_UNKNOWN))
        return False
    outcome = await web.open_link(token, person_of(update))
    if outcome.result is LinkResult.NEED_LOGIN:
        await reply(update, context.t(texts.WEB_LOGIN_FIRST, client=outcome.client_name))
        return True
    await _answer_link(update, context.t, outcome)
    return False


async def offer_after_login(update: Update, context: BotContext) -> None:
    """After a login: if the chat logged in for a website, ask it to confirm now."""
    web = context.services.web
    if web is None:
        return
    outcome = await web.after_login(person_of(update).chat_id)
    if outcome is not None:
        await _answer_link(update, context.t, outcome)


async def _answer_link(update: Update, t: Texts, outcome: LinkOutcome) -> None:
    confirmation = outcome.confirmation
    if outcome.result is LinkResult.CONFIRM and confirmation is not None:
        await reply(
            update,
            t(
                texts.WEB_CONFIRM,
                client=confirmation.client_name,
                host=confirmation.redirect_host,
                number=phone.pretty(confirmation.phone_number),
            ),
            reply_markup=confirmation_keyboard(t, confirmation),
        )
        return
    answer = {
        LinkResult.EXPIRED: texts.WEB_LINK_EXPIRED,
        LinkResult.USED: texts.WEB_LINK_USED,
    }.get(outcome.result, texts.WEB_LINK_UNKNOWN)
    await reply(update, t(answer))


async def answer_button(update: Update, context: BotContext) -> None:
    """A tap on a confirmation button: approve or refuse; only in the chat that opened the
    link, and only once."""
    query = update.callback_query
    web = context.services.web
    if query is None or not is_private(update) or web is None:
        return
    request_id, _, choice = (query.data or "").removeprefix(CONFIRM_CALLBACK).partition(":")
    number = int(choice) if choice.isdigit() and len(choice) <= 2 else None
    if number is None and choice != NOT_ME:
        await query.answer()
        return
    outcome = await web.answer(request_id, person_of(update), number)
    alert = {
        AnswerResult.NOT_YOURS: texts.WEB_NOT_YOURS,
        AnswerResult.ANSWERED: texts.WEB_ANSWERED,
    }.get(outcome.result)
    if alert is not None:
        await query.answer(context.t(alert), show_alert=True)
        return
    await query.answer()
    text = {
        AnswerResult.APPROVED: texts.WEB_APPROVED,
        AnswerResult.WRONG_NUMBER: texts.WEB_WRONG_NUMBER,
        AnswerResult.NOT_ME: texts.WEB_NOT_ME,
        AnswerResult.EXPIRED: texts.WEB_EXPIRED,
    }.get(outcome.result, texts.WEB_NOT_LOGGED_IN)
    await edit_quietly(update, context.t(text, client=outcome.client_name))
