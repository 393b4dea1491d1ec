"""The login flow's rules, apart from Telegram: what happens to a chat's login when it gives
a number, a code, or gives up. Every change is one transaction of the store
(`bot.db.store.LoginStore`); Vonage is called between transactions, never inside one, so a
slow call holds no database lock."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from bot import metrics as counted
from bot.clock import utcnow
from bot.db.models import LoginFlow, VerifiedUser
from bot.db.store import LoginStore
from bot.i18n import SOURCE
from bot.login import limits as limits_rules
from bot.login.audit import START_BY, Event
from bot.login.gateway import GatewayClient
from bot.login.limits import Limits, Refusal, Rule
from bot.login.phone import PhoneNumber, mask, parse_e164
from bot.login.steps import (
    GATEWAY_CHANNEL,
    CallResult,
    ChatState,
    CodeOutcome,
    CodeResult,
    Method,
    NumberOutcome,
    NumberResult,
    Person,
    Step,
)
from bot.login.verification import FailureKind, VerifyClient, VerifyFailure
from bot.metrics import Metrics

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FlowPolicy:
    """How long codes live and how many tries they get, the channels they go by, and how long
    the audit trail keeps its events."""

    code_ttl_seconds: int
    max_attempts: int
    audit_retention_days: int
    workflow: tuple[str, ...] = ("sms", "voice")  # VERIFY_WORKFLOW
    channel_timeout: int = 300  # VERIFY_CHANNEL_TIMEOUT


def proving_channel(flow: LoginFlow, policy: FlowPolicy, now: datetime) -> str:
    """How the code a chat just entered was delivered (a `Method`): the channel it was last
    sent by, or the next one once Vonage has moved on to it by itself (after the channel
    timeout); the Gateway never moves on by itself (the bot falls back)."""
    channel = flow.channel or policy.workflow[0]
    if channel == GATEWAY_CHANNEL:
        return Method.TELEGRAM_GATEWAY
    position = policy.workflow.index(channel) if channel in policy.workflow else 0
    moved_on = (
        flow.code_sent_at is not None
        and flow.code_sent_at + timedelta(seconds=policy.channel_timeout) <= now
    )
    if moved_on and position + 1 < len(policy.workflow):
        return policy.workflow[position + 1]
    return channel


# Admins hear about one kind of trouble at most once an hour.
ALERT_QUIET = timedelta(hours=1)

# Flows, counted starts, notices and handled updates older than this matter to no rule
# (Telegram gives up redelivering an update within a day).
STALE = timedelta(days=2)


class LoginService:
    """Runs logins: numbers in, codes out through Verify, verified numbers recorded."""

    def __init__(
        self,
        *,
        store: LoginStore,
        verify: VerifyClient,
        limits: Limits,
        policy: FlowPolicy,
        gateway: GatewayClient | None = None,
        clock: Callable[[], datetime] = utcnow,
        metrics: Metrics | None = None,
    ) -> None:
        self._store = store
        self._verify = verify
        self._limits = limits
        self._policy = policy
        self._now = clock
        # With telegram first in VERIFY_WORKFLOW: the Gateway, and Vonage for the rest.
        on_gateway = gateway is not None and policy.workflow[0] == GATEWAY_CHANNEL
        self._gateway = gateway if on_gateway else None
        self._vonage_channels = policy.workflow[1:] if on_gateway else policy.workflow
        self._metrics = metrics or Metrics()

    # ---- reading ------------------------------------------------------------------------

    async def login_of(self, chat_id: int) -> VerifiedUser | None:
        """The chat's current login, if any."""
        return await self._store.login_of(chat_id)

    async def flow_of(self, chat_id: int) -> LoginFlow | None:
        """The chat's login in progress, as stored."""
        return await self._store.flow_of(chat_id)

    async def step_of(self, chat_id: int) -> Step | None:
        """Where the chat's login flow is, after expiring a code whose time is up."""
        return (await self.chat_state(chat_id, take_notice=False)).step

    async def chat_state(self, chat_id: int, *, take_notice: bool = True) -> ChatState:
        """The chat's step (after expiring a code whose time is up) and, once, a notice left
        for it (its login moved to another chat or was revoked)."""
        state = await self._store.state(chat_id)
        notice = None
        if take_notice and state.has_notice:
            notice = await self._store.take_notice(chat_id)
        if (
            state.step == Step.CODE
            and state.expires_at is not None
            and state.expires_at <= self._now()
        ):
            flow = await self._store.flow_of(chat_id)
            if flow is not None and flow.step == Step.CODE and self._expired(flow):
                await self._expire(flow)
                return ChatState(Step.EXPIRED, notice, state.language)
            step = Step(flow.step) if flow is not None else None
            return ChatState(step, notice, state.language)
        return ChatState(state.step, notice, state.language)

    async def set_language(self, chat_id: int, language: str) -> None:
        """Keep the language a chat chose with /language (until it chooses again, or
        /forget)."""
        await self._store.set_language(chat_id, language)

    async def languages_of(self, chat_ids: list[int]) -> dict[int, str]:
        """The languages these chats chose with /language (the others are absent)."""
        return await self._store.languages_of(chat_ids)

    # ---- the flow -----------------------------------------------------------------------

    async def begin(
        self, person: Person, *, reprove: bool = False, language: str = SOURCE
    ) -> tuple[VerifiedUser | None, bool]:
        """Start (or restart) a login: the chat now waits for a number. A request still
        running for an earlier attempt is cancelled. With `reprove` (a website asked for a
        fresh login), the number is proven again even if the chat is logged in with it.
        Returns the chat's current login, and whether a login was already in progress."""
        restarted = await self._store.restart_flow(person, reprove=reprove, language=language)
        if restarted.running_request:
            self._metrics.login_ended("cancelled")
            await self._cancel_quietly(restarted.running_request, restarted.running_channel)
        return restarted.login, restarted.in_progress

    async def submit_number(
        self, person: Person, number: PhoneNumber, *, language: str = SOURCE
    ) -> NumberOutcome:
        """Start a verification to a number, if the rules allow it; its SMS and call speak
        `language` (a `bot.i18n` code)."""
        refused = await self._destination_refused(person, number)
        if refused is not None:
            return refused
        reserved = await self._store.reserve_start(person, number)
        if isinstance(reserved, NumberResult):
            return NumberOutcome(reserved)
        if isinstance(reserved, Refusal):
            self._refused(person, number, counted.LIMITED, reserved.rule)
            alert = None
            if reserved.rule is Rule.GLOBAL and await self._claim_alert("global_limit"):
                alert = "global_limit"
            return NumberOutcome(NumberResult.LIMITED, refusal=reserved, alert=alert)
        return await self._start_counted(person, number, reserved, language)

    async def trusted_contact(self, person: Person, number: PhoneNumber) -> NumberOutcome:
        """Log in with the user's own contact, shared from the button, without any code
        (TRUST_TELEGRAM_CONTACT: Telegram proved the number when the account was made). The
        destination rules still apply; the rate limits do not: no code is sent, so there is
        nothing to pay for and nothing to guess."""
        refused = await self._destination_refused(person, number)
        if refused is not None:
            return refused
        login = await self._store.login_of(person.chat_id)
        if login is not None and login.phone_number == number.e164:
            await self._store.cancel_flow(person.chat_id, reason="already_yours")
            return NumberOutcome(NumberResult.ALREADY_YOURS, phone_number=number.e164)
        moved_from = await self._store.record_verified(
            person, number.e164, None, channel=Method.TELEGRAM_CONTACT
        )
        self._metrics.login_ended("completed")
        logger.info(
            "Chat %s logged in with its own contact %s",
            person.chat_id,
            number.masked,
            extra=_fields(person.chat_id, number.masked, "verified"),
        )
        if moved_from is not None:
            logger.info(
                "Number %s moved from chat %s to %s", number.masked, moved_from, person.chat_id
            )
        return NumberOutcome(NumberResult.LOGGED_IN, phone_number=number.e164)

    async def _start_counted(
        self, person: Person, number: PhoneNumber, start_id: int, language: str
    ) -> NumberOutcome:
        """Send the code of the start already counted under `start_id`: by the Gateway when
        it comes first and can deliver to the number, else by Vonage."""
        ttl = timedelta(seconds=self._policy.code_ttl_seconds)
        tries = self._policy.max_attempts
        alert = None
        if self._gateway is not None:
            sent, alert = await self._gateway_send(number)
            if sent is not None:
                sent_until = await self._store.record_code_sent(
                    person,
                    number,
                    sent,
                    start_id=start_id,
                    ttl=ttl,
                    tries=tries,
                    channel=GATEWAY_CHANNEL,
                )
                self._code_sent(person, number, counted.SENT, GATEWAY_CHANNEL)
                return NumberOutcome(
                    NumberResult.CODE_SENT,
                    expires_at=sent_until,
                    phone_number=number.e164,
                    channel=GATEWAY_CHANNEL,
                )
        try:
            request_id = await self._start_or_recover(person, number, start_id, language)
        except VerifyFailure as failure:
            failed = await self._start_failed(person, number, failure, start_id)
            # The Gateway's account trouble is still news when Vonage fails too (its alert
            # was claimed for the hour: dropped here, no admin would hear of it).
            return failed if failed.alert or alert is None else replace(failed, alert=alert)
        if request_id is None:
            await self._start_failed(
                person, number, VerifyFailure(FailureKind.CONFLICT, status=409), start_id
            )
            return NumberOutcome(NumberResult.NUMBER_BUSY, alert=alert)
        channel = self._vonage_channels[0]
        if isinstance(request_id, _Reused):
            expires_at = await self._store.record_reused(
                person,
                number,
                request_id.request_id,
                start_id=start_id,
                ttl=ttl,
                tries=tries,
                channel=channel,
            )
            result = NumberResult.ALREADY_SENT
            self._code_sent(person, number, counted.REUSED, channel)
        else:
            expires_at = await self._store.record_code_sent(
                person,
                number,
                request_id,
                start_id=start_id,
                ttl=ttl,
                tries=tries,
                channel=channel,
                # Past the Gateway, this start's code went by Vonage's first channel instead.
                detail=START_BY + channel if self._gateway is not None else None,
            )
            result = NumberResult.CODE_SENT
            self._code_sent(person, number, counted.SENT, channel)
        return NumberOutcome(
            result,
            expires_at=expires_at,
            phone_number=number.e164,
            alert=alert,
            channel=channel,
        )

    async def _gateway_send(self, number: PhoneNumber) -> tuple[str | None, str | None]:
        """A Telegram code to the number: the Gateway's request id; or None when the Gateway
        cannot deliver it or fails, with the alert admins should get, if any: the code then
        goes by Vonage. One message at most per start: a send whose answer is lost is not
        sent again (the SMS follows), and is revoked: its code would not be the one the
        login checks."""
        assert self._gateway is not None
        ability = None
        try:
            ability = await self._gateway.can_send(number.e164)
            return await self._gateway.send(number.e164, ability), None
        except VerifyFailure as failure:
            if ability is not None and not failure.refused:
                # A timeout or a 5xx on the send: the message may be on its way all the same.
                await self._cancel_quietly(ability, GATEWAY_CHANNEL)
            logger.info("No Telegram code to %s (%s): by SMS instead", number.masked, failure.kind)
            return None, await self._account_alert(failure.kind, provider="gateway_")

    async def sms_instead(self, chat_id: int, *, language: str = SOURCE) -> NumberOutcome:
        """ "Send by SMS instead": the code of the chat's running Gateway request comes by
        Vonage now (`_fall_back`), in `language`."""
        flow = await self._store.flow_of(chat_id)
        if flow is None or flow.step != Step.CODE or flow.channel != GATEWAY_CHANNEL:
            return NumberOutcome(NumberResult.NO_FLOW)
        if self._expired(flow):
            await self._expire(flow)
            return NumberOutcome(NumberResult.NO_FLOW)
        return await self._fall_back(flow, reason="asked", language=language)

    async def fall_back_due(self, *, batch: int = 100) -> list[tuple[LoginFlow, NumberOutcome]]:
        """Gateway codes not used within VERIFY_CHANNEL_TIMEOUT come by Vonage now, in the
        language each login began in; returns each flow whose code did, with what to tell
        its chat."""
        if self._gateway is None:
            return []
        before = self._now() - timedelta(seconds=self._policy.channel_timeout)
        due = await self._store.flows_on_channel_since(
            GATEWAY_CHANNEL, sent_before=before, limit=batch
        )
        done = []
        for flow in due:
            if self._expired(flow):
                continue  # the expiry sweep ends it
            language = flow.language or SOURCE
            outcome = await self._fall_back(flow, reason="timeout", language=language)
            if outcome.result is NumberResult.CODE_SENT:
                done.append((flow, outcome))
        return done

    async def _fall_back(self, flow: LoginFlow, *, reason: str, language: str) -> NumberOutcome:
        """The Gateway request's login goes on by Vonage's channels: the same login (not a
        new start, so the limits count it once), with the expiry and the tries it had; the
        Telegram message is revoked. If Vonage fails, the Telegram code keeps working."""
        number = parse_e164(flow.phone_number or "")
        channel = self._vonage_channels[0]
        try:
            request_id = await self._verify.start(number, language=language)
        except VerifyFailure as failure:
            # The Telegram code keeps working; the sweeper tries again only after another
            # channel timeout (a start that failed after reaching Vonage may have sent an SMS).
            await self._store.record_fallback_failed(flow, f"fallback_{failure.kind}")
            result = (
                NumberResult.BUSY
                if failure.kind is FailureKind.RATE_LIMITED
                else NumberResult.UNAVAILABLE
            )
            return NumberOutcome(result, alert=await self._account_alert(failure.kind))
        if not await self._store.record_fallback(flow, request_id, channel=channel, reason=reason):
            await self._cancel_quietly(request_id, channel)
            return NumberOutcome(NumberResult.NO_FLOW)
        if flow.request_id:
            await self._cancel_quietly(flow.request_id, GATEWAY_CHANNEL)
        logger.info("Chat %s: code by %s instead of Telegram (%s)", flow.chat_id, channel, reason)
        return NumberOutcome(
            NumberResult.CODE_SENT,
            expires_at=flow.expires_at,
            phone_number=number.e164,
            channel=channel,
        )

    async def submit_code(self, person: Person, code: str) -> CodeOutcome:
        """Check a code against the chat's running request."""
        flow = await self._store.flow_of(person.chat_id)
        outcome = await self._check_code(person, flow, code)
        number = parse_e164(flow.phone_number) if flow and flow.phone_number else None
        self._metrics.code_checked(outcome.result.name.lower(), number.region if number else "")
        return outcome

    async def _check_code(self, person: Person, flow: LoginFlow | None, code: str) -> CodeOutcome:
        if flow is None or flow.step != Step.CODE or not flow.request_id:
            return CodeOutcome(CodeResult.NO_FLOW)
        if self._expired(flow):
            await self._expire(flow)
            return CodeOutcome(CodeResult.EXPIRED)
        phone = flow.phone_number or ""
        try:
            if flow.channel == GATEWAY_CHANNEL and self._gateway is not None:
                await self._gateway.check(flow.request_id, code)
            else:
                await self._verify.check(flow.request_id, code)
        except VerifyFailure as failure:
            return await self._check_failed(flow, failure)
        moved_from = await self._store.record_verified(
            person,
            phone,
            flow.request_id,
            channel=proving_channel(flow, self._policy, self._now()),
        )
        self._metrics.login_ended("completed")
        logger.info(
            "Chat %s verified %s",
            person.chat_id,
            mask(phone),
            extra=_fields(person.chat_id, mask(phone), "verified"),
        )
        if moved_from is not None:
            logger.info(
                "Number %s moved from chat %s to %s", mask(phone), moved_from, person.chat_id
            )
        return CodeOutcome(CodeResult.VERIFIED, phone_number=phone)

    async def resend_wait(self, chat_id: int) -> int | None:
        """Seconds until the chat may ask for the code again (0: now); None without a code."""
        flow = await self._store.flow_of(chat_id)
        if flow is None or flow.step != Step.CODE or flow.code_sent_at is None:
            return None
        ready = limits_rules.cooldown_end(self._limits, flow.code_sent_at)
        if ready is None:
            return 0
        return max(0, math.ceil((ready - self._now()).total_seconds()))

    async def resend(self, person: Person, *, language: str = SOURCE) -> NumberOutcome:
        """A new code to the same number: the old request is cancelled and a new one starts,
        under the same limits as any start. The limits are checked first, so a refused resend
        changes nothing and the old code keeps working; if Vonage then fails to start the new
        one, the chat is back to waiting for its number (the caller says so)."""
        flow = await self._store.flow_of(person.chat_id)
        if flow is None or flow.step != Step.CODE or not flow.phone_number:
            return NumberOutcome(NumberResult.NO_FLOW)
        number = parse_e164(flow.phone_number)
        refusal = await self._store.rate_refusal(person, number)
        if refusal is not None:
            self._refused(person, number, counted.LIMITED, refusal.rule)
            return NumberOutcome(NumberResult.LIMITED, refusal=refusal)
        if not await self._store.drop_request(flow):
            return NumberOutcome(NumberResult.NO_FLOW)
        if flow.request_id:
            await self._cancel_quietly(flow.request_id, flow.channel)
        return await self.submit_number(person, number, language=language)

    async def call_instead(self, chat_id: int) -> CallResult:
        """Move the running request on to its next channel (a voice call)."""
        flow = await self._store.flow_of(chat_id)
        if flow is None or flow.step != Step.CODE or not flow.request_id:
            return CallResult.NO_FLOW
        if flow.channel == GATEWAY_CHANNEL:
            return CallResult.NO_NEXT_CHANNEL  # "Send by SMS instead" is the way on
        try:
            await self._verify.next_channel(flow.request_id)
        except VerifyFailure as failure:
            if failure.kind is FailureKind.NO_NEXT_CHANNEL:
                return CallResult.NO_NEXT_CHANNEL
            if failure.kind is FailureKind.NOT_FOUND:
                await self._expire(flow)
                return CallResult.EXPIRED
            return CallResult.UNAVAILABLE
        await self._store.record_call(flow)
        return CallResult.CALLING

    async def forget(self, chat_id: int) -> None:
        """Erase what is stored about a chat: its flow (cancelled at Vonage), its login, any
        notice, and its link to the audit trail. Its counted starts stay until they age out
        (two days): they hold no number, only its hash, and without them /forget would reset
        the chat's own limits."""
        await self.cancel(chat_id)
        await self._store.forget(chat_id)
        logger.info("Chat %s asked to be forgotten; done", chat_id)

    async def cancel(self, chat_id: int, *, reason: str | None = None) -> bool:
        """End the chat's login flow, cancelling its Verify request; False if there was none."""
        flow = await self._store.cancel_flow(chat_id, reason=reason)
        if flow is None:
            return False
        if flow.step != Step.EXPIRED:
            self._metrics.login_ended("cancelled")
        if flow.step == Step.CODE and flow.request_id:
            await self._cancel_quietly(flow.request_id, flow.channel)
        return flow.step != Step.EXPIRED

    async def logout(self, chat_id: int) -> VerifiedUser | None:
        """End the chat's login (and any flow in progress); returns what it was."""
        await self.cancel(chat_id, reason="logout")
        return await self._store.end_login(chat_id)

    async def take_expired_notice(self, chat_id: int) -> bool:
        """True once after the chat's code expired unused (the notice is then consumed)."""
        if await self.step_of(chat_id) != Step.EXPIRED:
            return False
        return await self._store.clear_expired(chat_id)

    async def expire_due(self, *, batch: int = 100) -> int:
        """Expire flows whose code has timed out (cancelling their requests); returns how many.
        Also drops what is too old to matter (flows, counted starts, handled updates) and the
        audit events older than the retention."""
        now = self._now()
        due = await self._store.due_flows(now=now, limit=batch)
        for flow in due:
            await self._expire(flow)
        await self._store.purge(
            before=now - STALE,
            events_before=now - timedelta(days=self._policy.audit_retention_days),
        )
        return len(due)

    # ---- helpers ------------------------------------------------------------------------

    async def _destination_refused(
        self, person: Person, number: PhoneNumber
    ) -> NumberOutcome | None:
        """The answer to a number the destination rules refuse (recorded as `limited`)."""
        refusal = limits_rules.destination_refusal(self._limits, number)
        if refusal is None:
            return None
        self._refused(person, number, counted.REFUSED, refusal.rule)
        await self._store.record_limited(person, number, refusal.rule)
        return NumberOutcome(NumberResult.REFUSED, refusal=refusal)

    def _expired(self, flow: LoginFlow) -> bool:
        return flow.expires_at is not None and flow.expires_at <= self._now()

    async def _expire(self, flow: LoginFlow) -> None:
        if not await self._store.expire(flow):
            return
        self._metrics.login_ended("expired")
        if flow.request_id:
            await self._cancel_quietly(flow.request_id, flow.channel)
        logger.info(
            "Code for chat %s expired", flow.chat_id, extra=_fields(flow.chat_id, None, "expired")
        )

    async def _start_or_recover(
        self, person: Person, number: PhoneNumber, start_id: int, language: str
    ) -> str | _Reused | None:
        """Start the request counted under `start_id`. On 409 (a request already running for
        that number): reuse it if it is this chat's, give up (None) if another login may own
        it, and only if nobody can (say the bot crashed before recording it) cancel it and
        start again."""
        try:
            return await self._verify.start(number, language=language)
        except VerifyFailure as failure:
            if failure.kind is not FailureKind.CONFLICT or not failure.request_id:
                raise
            running = failure.request_id
        owner = await self._store.flow_with_request(running)
        if owner is not None:
            if owner.chat_id == person.chat_id:
                return _Reused(running)
            if owner.step == Step.CODE and not self._expired(owner):
                return None
        else:
            # A start is counted before its Verify call and learns its request once the
            # answer is recorded: a recent one still without (at Vonage now, or its answer
            # lost) may be this very request, already paid for. The settings keep a
            # request's life within the code TTL, so older starts cannot be it.
            starters = await self._store.chats_with_unanswered_starts(
                number,
                since=self._now() - timedelta(seconds=self._policy.code_ttl_seconds),
                other_than=start_id,
            )
            if starters:
                # Never cancelled, whatever the cooldown: this chat takes it over (its code
                # is on the phone already), another chat's start leaves it to that chat.
                return _Reused(running) if starters == {person.chat_id} else None
        logger.info("Cancelling a stranded request to %s", number.masked)
        await self._cancel_quietly(running, None)
        return await self._verify.start(number, language=language)

    async def _start_failed(
        self, person: Person, number: PhoneNumber, failure: VerifyFailure, start_id: int
    ) -> NumberOutcome:
        kind = failure.kind
        reason = "number_busy" if kind is FailureKind.CONFLICT else kind.value
        self._count_start(number, counted.FAILED, reason, channel=self._vonage_channels[0])
        await self._store.record_start_failed(
            person,
            number,
            start_id=start_id,
            # Only a refusal sent nothing. Anything else (5xx, timeout, dropped connection)
            # may have sent a code and stays counted, so the limits hold while Vonage is
            # degraded.
            uncount=failure.refused,
            reason=reason,
        )
        if kind is FailureKind.INVALID_NUMBER:
            return NumberOutcome(NumberResult.INVALID_NUMBER)
        if kind is FailureKind.RATE_LIMITED:
            return NumberOutcome(NumberResult.BUSY)
        if kind is FailureKind.CONFLICT:
            return NumberOutcome(NumberResult.NUMBER_BUSY)
        return NumberOutcome(NumberResult.UNAVAILABLE, alert=await self._account_alert(kind))

    async def _check_failed(self, flow: LoginFlow, failure: VerifyFailure) -> CodeOutcome:
        kind = failure.kind
        if kind is FailureKind.WRONG_CODE:
            tries_left = await self._store.take_try(flow)
            if tries_left is None:
                return CodeOutcome(CodeResult.NO_FLOW)
            if tries_left == 0:
                self._metrics.login_ended("failed")
                if flow.request_id:
                    await self._cancel_quietly(flow.request_id, flow.channel)
                return CodeOutcome(CodeResult.TOO_MANY)
            return CodeOutcome(CodeResult.WRONG, tries_left=tries_left)
        if kind is FailureKind.TOO_MANY_WRONG:
            await self._store.end_flow(flow, Event.FAILED, "too_many_wrong")
            self._metrics.login_ended("failed")
            return CodeOutcome(CodeResult.TOO_MANY)
        if kind is FailureKind.NOT_FOUND:
            await self._store.end_flow(flow, Event.EXPIRED, "unknown to vonage")
            self._metrics.login_ended("expired")
            return CodeOutcome(CodeResult.EXPIRED)
        await self._store.record_flow_event(flow, Event.FAILED, f"check_{kind.value}")
        return CodeOutcome(CodeResult.UNAVAILABLE, alert=await self._account_alert(kind))

    def _refused(self, person: Person, number: PhoneNumber, outcome: str, rule: Rule) -> None:
        """A start a rule refused (`outcome`: REFUSED or LIMITED), logged and counted."""
        logger.info(
            "%s %s for chat %s: %s",
            outcome.capitalize(),
            number.masked,
            person.chat_id,
            rule,
            extra=_fields(person.chat_id, number.masked, f"{outcome}_{rule}"),
        )
        self._count_start(number, outcome, rule)

    def _code_sent(self, person: Person, number: PhoneNumber, outcome: str, channel: str) -> None:
        """A start whose code is on its way (`outcome`: SENT, or REUSED when a request
        already running for the chat was taken over), logged and counted."""
        logger.info(
            "Code sent to %s for chat %s by %s",
            number.masked,
            person.chat_id,
            channel,
            extra=_fields(person.chat_id, number.masked, "code_sent"),
        )
        self._count_start(number, outcome, channel=channel)

    def _count_start(
        self, number: PhoneNumber, outcome: str, reason: str = "", *, channel: str | None = None
    ) -> None:
        """A start and what became of it, by the channel its code went by (or would have:
        the first of the workflow when a rule refused it)."""
        self._metrics.start(
            region=number.region,
            channel=channel or self._policy.workflow[0],
            outcome=outcome,
            reason=reason,
        )

    async def _cancel_quietly(self, request_id: str, channel: str | None) -> None:
        """Cancel a request we no longer want (revoke it, if it went by the Gateway: Telegram
        refunds a message it never delivers); it expires by itself if it cannot be reached."""
        try:
            if channel == GATEWAY_CHANNEL and self._gateway is not None:
                await self._gateway.revoke(request_id)
            else:
                await self._verify.cancel(request_id)
        except VerifyFailure as failure:
            logger.info("Could not cancel a %s request: %s", channel or "Verify", failure.kind)

    async def record_report(self, request_id: str, status: str) -> None:
        """A verified delivery report of a Gateway message, for the audit trail."""
        await self._store.record_report(request_id, status)

    async def _account_alert(self, kind: FailureKind, *, provider: str = "") -> str | None:
        """For credential and credit trouble: the alert admins should get, once an hour
        (Vonage's; with `provider="gateway_"`, the Telegram Gateway's)."""
        if kind not in (FailureKind.BAD_CREDENTIALS, FailureKind.NO_CREDIT):
            return None
        alert = provider + kind.value
        return alert if await self._claim_alert(alert) else None

    async def _claim_alert(self, kind: str) -> bool:
        return await self._store.claim_alert(kind, quiet=ALERT_QUIET)


@dataclass(frozen=True, slots=True)
class _Reused:
    request_id: str


def _fields(chat_id: int, number: str | None, outcome: str) -> dict[str, object]:
    """A login event's fields for structured logs (`LOG_FORMAT=json`): the number masked."""
    return {"chat_id": chat_id, "number": number, "outcome": outcome}
