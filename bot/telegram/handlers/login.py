"""The login conversation, top to bottom.

    /login ──► NUMBER ──(valid number, code sent)──► CODE ──(right code)──► END (logged in)
                 ▲  │ bad number / refused / limited:          │ wrong code: stay, tries left
                 │  └── stay, with an answer                   │ 410 / 404 / no tries: END
                 └──────────────── /login (restart) ◄──────────┘ expired: END, told next time
    /cancel anywhere ──► END (the Verify request is cancelled)
    NUMBER ──(own contact, TRUST_TELEGRAM_CONTACT)──► END (logged in, no code)

The state of every flow lives in the `login_flows` table; `FlowConversationHandler` loads it
before each update (so a restart, or another process, continues where the flow was), and each
callback returns the step its service call has just written.
"""

from __future__ import annotations

import logging
import re

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from telegram.error import BadRequest, TelegramError
from telegram.ext import (
    ApplicationHandlerStop,
    BaseHandler,
    ConversationHandler,
    MessageHandler,
    filters,
)

from bot import i18n, texts
from bot.i18n import Texts
from bot.login import phone
from bot.login.limits import Rule
from bot.login.steps import (
    GATEWAY_CHANNEL,
    CallResult,
    CodeResult,
    NoticeKind,
    NumberOutcome,
    NumberResult,
    Step,
)
from bot.telegram.handlers import weblogin
from bot.telegram.handlers.base import (
    BotApp,
    BotContext,
    is_private,
    message_of,
    notify_admins,
    person_of,
    private_button,
    reply,
)
from bot.telegram.services import Services

logger = logging.getLogger(__name__)

NUMBER = Step.NUMBER.value
CODE = Step.CODE.value
END = ConversationHandler.END

PRIVATE = filters.ChatType.PRIVATE
NEW_TEXT = filters.UpdateType.MESSAGE & filters.TEXT & ~filters.COMMAND

_CODE_CHARS = re.compile(r"[\s\-]")


RESEND_CALLBACK = "resend:"


def code_keyboard(t: Texts, *, can_call: bool, on_gateway: bool = False) -> InlineKeyboardMarkup:
    """Buttons under the "code sent" message: a new code, or a call instead (an SMS
    instead, while the code is a Telegram one)."""
    buttons = [InlineKeyboardButton(t(texts.RESEND_BUTTON), callback_data=f"{RESEND_CALLBACK}new")]
    if on_gateway:
        buttons.append(
            InlineKeyboardButton(t(texts.SMS_BUTTON), callback_data=f"{RESEND_CALLBACK}sms")
        )
    elif can_call:
        buttons.append(
            InlineKeyboardButton(t(texts.CALL_BUTTON), callback_data=f"{RESEND_CALLBACK}call")
        )
    return InlineKeyboardMarkup([buttons])


def _how(t: Texts, workflow: tuple[str, ...], channel: str | None) -> str:
    """How a code that goes by `channel` travels from now (the rest of VERIFY_WORKFLOW: every
    rest of a valid one has its words)."""
    ahead = workflow[workflow.index(channel) :] if channel in workflow else workflow
    return t(texts.CHANNELS[ahead])


def _keyboard_for(t: Texts, services: Services, channel: str | None) -> InlineKeyboardMarkup:
    return code_keyboard(t, can_call=services.can_call, on_gateway=channel == GATEWAY_CHANNEL)


def contact_keyboard(t: Texts) -> ReplyKeyboardMarkup:
    """The reply keyboard with the share-my-number button."""
    return ReplyKeyboardMarkup(
        [[KeyboardButton(t(texts.SHARE_CONTACT_BUTTON), request_contact=True)]],
        one_time_keyboard=True,
        resize_keyboard=True,
    )


async def start_login(update: Update, context: BotContext) -> str:
    """Open (or restart) a login: store step NUMBER, ask for the phone number."""
    return await _ask_number(update, context, reprove=False)


async def start_from_link(update: Update, context: BotContext) -> None:
    """`/start <token>` from a website's login page: ask to confirm it, or log in first
    (step NUMBER, stored: the conversation loads it with the next update; the confirmation
    follows the login)."""
    if await weblogin.open_link(update, context):
        # A website may want the number proven now (prompt=login, max_age) even though the
        # chat is logged in with it.
        await _ask_number(update, context, reprove=True)


async def _ask_number(update: Update, context: BotContext, *, reprove: bool) -> str:
    services, t = context.services, context.t
    person = person_of(update)
    login, restarting = await services.login.begin(
        person, reprove=reprove, language=context.language
    )
    if restarting:
        await reply(update, t(texts.RESTARTED))
    if login is not None:
        text = t(texts.ASK_NUMBER_LOGGED_IN, number=phone.pretty(login.phone_number))
    else:
        text = t(texts.ASK_NUMBER)
    await reply(update, text, reply_markup=contact_keyboard(t))
    return NUMBER


async def got_number_text(update: Update, context: BotContext) -> str | int:
    """A typed number: parse it, then start a verification (step CODE) or ask again."""
    number = phone.parse(message_of(update).text or "")
    if number is None:
        await reply(update, context.t(texts.NOT_A_NUMBER))
        return NUMBER
    return await _start_verification(update, context, number)


async def got_contact(update: Update, context: BotContext) -> str | int:
    """A shared contact: only the sender's own is accepted; it logs in at once (END) under
    TRUST_TELEGRAM_CONTACT, else it is handled as a typed number."""
    t = context.t
    contact = message_of(update).contact
    user = update.effective_user
    if contact is None or user is None or contact.user_id != user.id:
        await reply(update, t(texts.NOT_YOUR_CONTACT), reply_markup=contact_keyboard(t))
        return NUMBER
    number = phone.parse(contact.phone_number)
    if number is None:
        await reply(update, t(texts.NOT_A_NUMBER))
        return NUMBER
    if context.services.trust_contact:
        outcome = await context.services.login.trusted_contact(person_of(update), number)
        return await _answer_number_outcome(update, context, outcome, number)
    return await _start_verification(update, context, number)


async def _start_verification(
    update: Update, context: BotContext, number: phone.PhoneNumber
) -> str | int:
    outcome = await context.services.login.submit_number(
        person_of(update), number, language=context.language
    )
    return await _answer_number_outcome(update, context, outcome, number)


async def _answer_number_outcome(
    update: Update, context: BotContext, outcome: NumberOutcome, number: phone.PhoneNumber | None
) -> str | int:
    """Tell the user what became of their number (or their request for a new code)."""
    services, t = context.services, context.t
    await notify_admins(context, outcome.alert)
    pretty = phone.pretty(outcome.phone_number or (number.e164 if number else ""))
    result = outcome.result
    if result in (NumberResult.CODE_SENT, NumberResult.ALREADY_SENT):
        template = texts.CODE_SENT if result is NumberResult.CODE_SENT else texts.CODE_ALREADY_SENT
        expires = t.time(outcome.expires_at) if outcome.expires_at else "?"
        buttons = _keyboard_for(t, services, outcome.channel)
        if update.callback_query is not None:
            await reply(update, t(texts.RESENT, number=pretty), reply_markup=buttons)
            return CODE
        # One message: the code is on its way, with the buttons for a new code or a call. A
        # message carries one keyboard, so the share-contact one goes with the next answer
        # (`_reply_in_code_step`).
        text = t(
            template,
            length=services.code_length,
            number=pretty,
            expires=expires,
            how=_how(t, services.workflow, outcome.channel),
        )
        hint = _resend_hint(t, services.resend_after, services.can_call, outcome.channel)
        await reply(
            update, texts.CODE_SENT_WITH_HINT.format(sent=text, hint=hint), reply_markup=buttons
        )
        return CODE
    if result is NumberResult.LOGGED_IN:
        await reply(update, t(texts.VERIFIED, number=pretty), reply_markup=ReplyKeyboardRemove())
        return END
    if result is NumberResult.ALREADY_YOURS:
        await reply(
            update, t(texts.ALREADY_YOURS, number=pretty), reply_markup=ReplyKeyboardRemove()
        )
        return END
    if result is NumberResult.NO_FLOW:
        await reply(update, t(texts.OUTSIDE_FLOW), reply_markup=ReplyKeyboardRemove())
        return END
    if result is NumberResult.REFUSED and outcome.refusal is not None:
        text = t(
            texts.REFUSED_PREFIX if outcome.refusal.rule is Rule.PREFIX else texts.REFUSED_COUNTRY
        )
    elif result is NumberResult.LIMITED and outcome.refusal is not None:
        when = t.time(outcome.refusal.retry_at) if outcome.refusal.retry_at else t(texts.LATER)
        template = texts.LIMITED_GLOBAL if outcome.refusal.rule is Rule.GLOBAL else texts.LIMITED
        text = t(template, when=when)
    else:
        text = t(
            {
                NumberResult.INVALID_NUMBER: texts.INVALID_NUMBER,
                NumberResult.NUMBER_BUSY: texts.NUMBER_BUSY,
                NumberResult.BUSY: texts.BUSY,
            }.get(result, texts.UNAVAILABLE)
        )
    await reply(update, text)
    return NUMBER


async def got_code(update: Update, context: BotContext) -> str | int:
    """A code: check it; logged in (END, the code's message deleted), or try again, or END."""
    services, t = context.services, context.t
    message = message_of(update)
    code = _CODE_CHARS.sub("", message.text or "")
    if not (code.isascii() and code.isdigit() and 4 <= len(code) <= 10):
        # Answered here: a malformed code never uses up one of the request's tries.
        await _reply_in_code_step(update, t(texts.NOT_A_CODE, length=services.code_length))
        return CODE
    person = person_of(update)
    outcome = await services.login.submit_code(person, code)
    await notify_admins(context, outcome.alert)
    result = outcome.result
    if result is CodeResult.VERIFIED:
        await _delete_quietly(update)
        number = phone.pretty(outcome.phone_number or "")
        await _reply_in_code_step(update, t(texts.VERIFIED, number=number))
        await weblogin.offer_after_login(update, context)
        return END
    if result is CodeResult.WRONG:
        await _reply_in_code_step(update, t.plural(texts.WRONG_CODE, outcome.tries_left))
        return CODE
    if result is CodeResult.UNAVAILABLE:
        await _reply_in_code_step(update, t(texts.CHECK_UNAVAILABLE))
        return CODE
    text = {
        CodeResult.TOO_MANY: texts.TOO_MANY_WRONG,
        CodeResult.EXPIRED: texts.CODE_EXPIRED,
    }.get(result, texts.OUTSIDE_FLOW)
    await _reply_in_code_step(update, t(text))
    return END


async def _reply_in_code_step(update: Update, text: str) -> None:
    """Answer while a code is awaited (or as its flow ends), taking the share-contact
    keyboard away: the number is given, and the code-sent message could not remove it (it
    carries the new-code buttons). Removing a keyboard already gone changes nothing."""
    await reply(update, text, reply_markup=ReplyKeyboardRemove())


def _resend_hint(t: Texts, seconds: int, can_call: bool, channel: str | None) -> str:
    if channel == GATEWAY_CHANNEL:
        now, later = texts.RESEND_HINT_NOW_SMS, texts.RESEND_HINT_LATER_SMS
    elif can_call:
        now, later = texts.RESEND_HINT_NOW_CALL, texts.RESEND_HINT_LATER_CALL
    else:
        now, later = texts.RESEND_HINT_NOW, texts.RESEND_HINT_LATER
    return t(later, seconds=seconds) if seconds > 0 else t(now)


async def resend_button(update: Update, context: BotContext) -> None:
    """ "Send a new code" / "Call me instead": only while a code is awaited, and never
    sooner than LIMIT_COOLDOWN_SECONDS after the last one went out."""
    query = await private_button(update)
    if query is None:
        return
    services, t = context.services, context.t
    person = person_of(update)
    wait = await services.login.resend_wait(person.chat_id)
    if wait is None:
        await query.answer(t(texts.CODE_NOT_RUNNING), show_alert=True)
        return
    if wait > 0:
        await query.answer(t(texts.RESEND_TOO_SOON, seconds=wait), show_alert=True)
        return
    await query.answer()
    if query.data == f"{RESEND_CALLBACK}sms":
        outcome = await services.login.sms_instead(person.chat_id, language=context.language)
        await notify_admins(context, outcome.alert)
        if outcome.result is NumberResult.CODE_SENT:
            await reply(
                update,
                _fell_back_text(t, services, outcome, texts.SMS_INSTEAD),
                reply_markup=_keyboard_for(t, services, outcome.channel),
            )
            return
        failed = {
            NumberResult.NO_FLOW: texts.CODE_NOT_RUNNING,
            NumberResult.BUSY: texts.BUSY,
        }.get(outcome.result, texts.UNAVAILABLE)
        await _reply_in_code_step(update, t(failed))
        return
    if query.data == f"{RESEND_CALLBACK}call":
        result = await services.login.call_instead(person.chat_id)
        answer = {
            CallResult.CALLING: texts.CALLING,
            CallResult.NO_NEXT_CHANNEL: texts.NO_CALL,
            CallResult.EXPIRED: texts.CODE_EXPIRED,
            CallResult.NO_FLOW: texts.CODE_NOT_RUNNING,
        }.get(result, texts.UNAVAILABLE)
        await _reply_in_code_step(update, t(answer))
        return
    outcome = await services.login.resend(person, language=context.language)
    await _answer_number_outcome(update, context, outcome, None)
    if outcome.result not in (
        NumberResult.CODE_SENT,
        NumberResult.ALREADY_SENT,
        NumberResult.LIMITED,
        NumberResult.NO_FLOW,
    ):
        # The old request is gone and no new one started: the chat waits for its number.
        await reply(update, t(texts.RESEND_FAILED), reply_markup=contact_keyboard(t))


def _fell_back_text(t: Texts, services: Services, outcome: NumberOutcome, template: str) -> str:
    return t(
        template,
        number=phone.pretty(outcome.phone_number or ""),
        how=_how(t, services.workflow, outcome.channel),
    )


async def announce_fallbacks(application: BotApp) -> int:
    """Send by Vonage the Telegram codes not used within VERIFY_CHANNEL_TIMEOUT, and tell
    each chat (the sweeper runs this); returns how many."""
    services = application.bot_data.services
    if services is None:
        return 0
    done = await services.login.fall_back_due()
    for flow, outcome in done:
        # No update, so no context: the language the login began in.
        t = i18n.texts_for(flow.language or i18n.SOURCE)
        try:
            await application.bot.send_message(
                flow.chat_id,
                _fell_back_text(t, services, outcome, texts.GATEWAY_TIMED_OUT),
                reply_markup=_keyboard_for(t, services, outcome.channel),
            )
        except TelegramError as error:
            logger.warning(
                "Could not tell chat %s about its SMS: %s", flow.chat_id, type(error).__name__
            )
    return len(done)


async def cancel(update: Update, context: BotContext) -> int:
    """/cancel: drop the flow and its Verify request; END."""
    cancelled = await context.services.login.cancel(person_of(update).chat_id)
    await reply(
        update,
        context.t(texts.CANCELLED if cancelled else texts.NOTHING_TO_CANCEL),
        reply_markup=ReplyKeyboardRemove(),
    )
    return END


async def remind(update: Update, context: BotContext) -> str | int:
    """Anything else during a flow (sticker, photo, edit, stray command): say what we wait
    for; the step does not change."""
    services, t = context.services, context.t
    chat_id = person_of(update).chat_id
    step = await services.login.step_of(chat_id)
    if step == Step.CODE:
        flow = await services.login.flow_of(chat_id)
        number = phone.pretty(flow.phone_number or "") if flow else ""
        await _reply_in_code_step(
            update, t(texts.WAITING_FOR_CODE, length=services.code_length, number=number)
        )
        return CODE
    if step == Step.NUMBER:
        await reply(update, t(texts.WAITING_FOR_NUMBER), reply_markup=contact_keyboard(t))
        return NUMBER
    if step == Step.EXPIRED and await services.login.take_expired_notice(chat_id):
        await _reply_in_code_step(update, t(texts.EXPIRED_NOTICE))
    return END


async def _delete_quietly(update: Update) -> None:
    """Remove the code from the chat; old messages may no longer be deletable."""
    try:
        await message_of(update).delete()
    except BadRequest as error:
        logger.info("Could not delete a code message: %s", error.message)


class FlowConversationHandler(ConversationHandler[BotContext]):
    """A ConversationHandler whose state comes from the database, not from memory.

    `sync_from_database` runs before the conversation sees an update (handler group -1) and
    puts the chat's stored step into the handler; `forget_chat` takes it out again once every
    other handler is done with the update (the last group), so memory holds the steps of the
    updates being handled, never one per chat ever seen. Updates of one chat are processed
    one after another (see `bot.telegram.ordering`), so the step cannot change between the
    load and the callback.
    """

    @property
    def chats_in_memory(self) -> int:
        """How many chats' steps the handler holds now."""
        return len(self._conversations)

    async def sync_from_database(self, update: Update, context: BotContext) -> None:
        """Load the chat's step into the conversation, and the language it chose into the
        context, before anything looks at the update."""
        if not is_private(update) or update.effective_chat is None:
            return
        chat_id = update.effective_chat.id
        database = context.services.database
        try:
            state = await context.services.login.chat_state(chat_id)
        except Exception as error:
            # Without the stored step no handler can act correctly: apologise once, stop here.
            if not database.failed(error):  # an outage is logged once, not per update
                logger.error(
                    "Could not load the login step of chat %s: %s",
                    chat_id,
                    type(error).__name__,
                    exc_info=error,
                )
            await reply(update, context.t(texts.APOLOGY))
            raise ApplicationHandlerStop from None
        database.answered()
        chosen = i18n.supported(state.language)
        if chosen is not None:
            context.language = chosen
        notice = state.notice
        if notice is not None:
            moved = notice.kind is NoticeKind.NUMBER_MOVED
            template = texts.NOTICE_MOVED if moved else texts.NOTICE_REVOKED
            number = phone.pretty(notice.phone_number or "")
            await reply(update, context.t(template, number=number))
        key = (chat_id,)
        # ConversationHandler keeps its states in this dict; no public setter exists. The
        # database is the source of truth, so we overwrite what memory thinks.
        if state.step in (Step.NUMBER, Step.CODE):
            self._conversations[key] = state.step.value
        else:
            self._conversations.pop(key, None)

    async def forget_chat(self, update: Update, context: BotContext) -> None:
        """Drop the chat's step once the update is handled (the database keeps it)."""
        if update.effective_chat is not None:
            self._conversations.pop((update.effective_chat.id,), None)


def login_conversation(
    *,
    entry_points: list[BaseHandler[Update, BotContext, object]],
    fallbacks: list[BaseHandler[Update, BotContext, object]],
) -> FlowConversationHandler:
    """The login machine. `entry_points` open it (/login); `fallbacks` are the commands that
    only mean something during a flow (/cancel); anything else during a flow gets a reminder.

    Its `sync_from_database` must run before it, in an earlier handler group, and its
    `forget_chat` after every handler, in a later one."""
    return FlowConversationHandler(
        entry_points=entry_points,
        states={
            NUMBER: [
                MessageHandler(PRIVATE & filters.UpdateType.MESSAGE & filters.CONTACT, got_contact),
                MessageHandler(PRIVATE & NEW_TEXT, got_number_text),
            ],
            CODE: [MessageHandler(PRIVATE & NEW_TEXT, got_code)],
        },
        # Last: everything else while a flow waits gets a reminder of what it waits for.
        fallbacks=[*fallbacks, MessageHandler(PRIVATE, remind)],
        # /login during a flow restarts it cleanly.
        allow_reentry=True,
        per_chat=True,
        per_user=False,
        name="login",
    )
