"""The login flow's rules, apart from Telegram: what happens to a chat's login when it gives
a number, a code, or gives up. Every change is one transaction on the flow's row; Vonage is
called between transactions, never inside one, so a slow call holds no database lock."""

from __future__ import annotations

import enum
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import utcnow
from bot.db import repo
from bot.db.batching import Coalescer
from bot.db.models import LoginFlow, VerifiedUser
from bot.login import limits as limits_rules
from bot.login.audit import Audit, Event
from bot.login.limits import Limits, Refusal
from bot.login.phone import PhoneNumber, mask, parse_e164
from bot.login.verification import FailureKind, VerifyClient, VerifyFailure

logger = logging.getLogger(__name__)


class Step(enum.StrEnum):
    """Where a chat's login is; stored in `login_flows.step`."""

    NUMBER = "number"  # waiting for a phone number
    CODE = "code"  # a code is on its way; waiting for it
    EXPIRED = "expired"  # the code expired unused; the chat is told on its next message


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


@dataclass(frozen=True, slots=True)
class CodeOutcome:
    """The answer to a code."""

    result: CodeResult
    tries_left: int = 0
    phone_number: str | None = None
    moved_from_chat: int | None = None
    alert: str | None = None


@dataclass(frozen=True, slots=True)
class FlowPolicy:
    """How long codes live and how many tries they get."""

    code_ttl_seconds: int
    max_attempts: int


# Admins hear about one kind of trouble at most once an hour.
ALERT_QUIET = timedelta(hours=1)


class LoginService:
    """Runs logins: numbers in, codes out through Verify, verified numbers recorded."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        readers: async_sessionmaker[AsyncSession] | None = None,
        verify: VerifyClient,
        limits: Limits,
        policy: FlowPolicy,
        audit: Audit,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions = sessions
        # Sessions that only read (no write lock on SQLite); the writers' if none are given.
        self._readers = readers or sessions
        self._audit = audit
        self._verify = verify
        self._limits = limits
        self._policy = policy
        self._now = clock
        # The steps of an update burst: concurrent updates share their database round trips
        # (see bot.db.batching); each still sees exactly what it would alone.
        self._states = Coalescer(self._load_states)
        self._reservations = Coalescer(self._reserve_starts)
        self._codes_sent = Coalescer(self._record_codes_sent)

    # ---- reading ------------------------------------------------------------------------

    async def login_of(self, chat_id: int) -> VerifiedUser | None:
        """The chat's current login, if any."""
        async with self._readers() as session:
            return await repo.get_login(session, chat_id=chat_id)

    async def flow_of(self, chat_id: int) -> LoginFlow | None:
        """The chat's login in progress, as stored."""
        async with self._readers() as session:
            return await repo.get_flow(session, chat_id=chat_id)

    async def step_of(self, chat_id: int) -> Step | None:
        """Where the chat's login flow is, after expiring a code whose time is up."""
        step, _ = await self.chat_state(chat_id, take_notice=False)
        return step

    async def chat_state(
        self, chat_id: int, *, take_notice: bool = True
    ) -> tuple[Step | None, tuple[str, str | None] | None]:
        """The chat's step (after expiring a code whose time is up) and, once, a notice left
        for it (its login moved to another chat or was revoked): (step, (kind, number))."""
        step, expires_at, has_notice = await self._states(chat_id)
        notice = None
        if take_notice and has_notice:
            async with self._sessions.begin() as session:
                taken = await repo.take_notice(session, chat_id=chat_id)
            if taken is not None:
                notice = (taken.kind, taken.phone_number)
        if step is None:
            return None, notice
        if step == Step.CODE and expires_at is not None and expires_at <= self._now():
            flow = await self.flow_of(chat_id)
            if flow is not None and flow.step == Step.CODE and self._expired(flow):
                await self._expire(flow)
                return Step.EXPIRED, notice
            return (Step(flow.step) if flow is not None else None), notice
        return Step(step), notice

    async def _load_states(
        self, chat_ids: list[int]
    ) -> list[tuple[str | None, datetime | None, bool]]:
        """(step, code expiry, notice waiting) of several chats, in two queries."""
        async with self._readers() as session:
            flows = await repo.flow_states(session, chat_ids=chat_ids)
            notices = await repo.chats_with_notice(session, chat_ids=chat_ids)
        return [(*flows.get(chat_id, (None, None)), chat_id in notices) for chat_id in chat_ids]

    # ---- the flow -----------------------------------------------------------------------

    async def begin(self, person: Person) -> tuple[VerifiedUser | None, bool]:
        """Start (or restart) a login: the chat now waits for a number. A request still
        running for an earlier attempt is cancelled. Returns the chat's current login, and
        whether a login was already in progress."""
        async with self._sessions.begin() as session:
            previous = await repo.get_flow(session, chat_id=person.chat_id, lock=True)
            # merge() below overwrites the loaded row in place: keep what we need first.
            running = previous.request_id if previous and previous.step == Step.CODE else None
            restarted = previous is not None and previous.step in (Step.NUMBER, Step.CODE)
            login = await repo.get_login(session, chat_id=person.chat_id)
            if running:
                await self._audit.record(
                    session,
                    Event.CANCELLED,
                    chat_id=person.chat_id,
                    user_id=person.user_id,
                    e164=previous.phone_number if previous else None,
                    request_id=running,
                    detail="restarted",
                )
            await self._audit.record(
                session, Event.LOGIN_STARTED, chat_id=person.chat_id, user_id=person.user_id
            )
            await repo.put_flow(
                session,
                flow=LoginFlow(
                    chat_id=person.chat_id,
                    user_id=person.user_id,
                    step=Step.NUMBER,
                    phone_number=None,
                    request_id=None,
                    tries_left=0,
                    started_at=self._now(),
                    code_sent_at=None,
                    expires_at=None,
                ),
            )
        if running:
            await self._cancel_quietly(running)
        return login, restarted

    async def submit_number(self, person: Person, number: PhoneNumber) -> NumberOutcome:
        """Start a verification to a number, if the rules allow it."""
        refusal = limits_rules.destination_refusal(self._limits, number)
        if refusal is not None:
            logger.info("Refused %s for chat %s: %s", number.masked, person.chat_id, refusal.rule)
            async with self._sessions.begin() as session:
                await self._audit.record(
                    session,
                    Event.LIMITED,
                    chat_id=person.chat_id,
                    user_id=person.user_id,
                    e164=number.e164,
                    detail=refusal.rule,
                )
            return NumberOutcome(NumberResult.REFUSED, refusal=refusal)
        hashed = self._audit.hash(number.e164)
        start_id = await self._reservations(
            _Reservation(person.chat_id, hashed, number.e164, number.country_code)
        )
        if start_id is None:
            # Not admitted with the batch: find out why (or start after all, if something
            # changed since), with the refusal and its time.
            return await self._reserve_alone(person, number, hashed)
        return await self._start_counted(person, number, start_id)

    async def _reserve_alone(
        self, person: Person, number: PhoneNumber, hashed: str
    ) -> NumberOutcome:
        async with self._sessions.begin() as session:
            state = (await repo.flow_steps_and_numbers(session, chat_ids=[person.chat_id])).get(
                person.chat_id
            )
            if state is None or state[0] != Step.NUMBER:
                return NumberOutcome(NumberResult.NO_FLOW)
            if state[1] == number.e164:
                await repo.delete_flow(session, chat_id=person.chat_id)
                return NumberOutcome(NumberResult.ALREADY_YOURS)
            await repo.lock_numbers(session, number_hashes=[hashed])
            now = self._now()
            refusal = await limits_rules.rate_refusal(
                session, self._limits, chat_id=person.chat_id, number_hash=hashed, now=now
            )
            if refusal is not None:
                await self._audit.record(
                    session,
                    Event.LIMITED,
                    chat_id=person.chat_id,
                    user_id=person.user_id,
                    e164=number.e164,
                    detail=refusal.rule,
                )
            else:
                start = repo.StartRow(person.chat_id, hashed, now)
                (start_id,) = await repo.add_starts(session, rows=[(start, number.country_code)])
        if refusal is not None:
            logger.info("Limited chat %s (%s): %s", person.chat_id, number.masked, refusal.rule)
            alert = None
            if refusal.rule == "global" and await self._claim_alert("global_limit"):
                alert = "global_limit"
            return NumberOutcome(NumberResult.LIMITED, refusal=refusal, alert=alert)
        return await self._start_counted(person, number, start_id)

    async def _reserve_starts(self, batch: list[_Reservation]) -> list[int | None]:
        """Count a start for every reservation that may start now, in one transaction: the
        chat still waits for a number, is not logged in with this one, and every rate limit
        allows it, counting the starts admitted before it in the same batch. The others get
        None (and go through `_reserve_alone`, which says why)."""
        now = self._now()
        hour_ago = now - limits_rules.HOUR
        chat_ids = sorted({item.chat_id for item in batch})
        hashes = sorted({item.number_hash for item in batch})
        async with self._sessions.begin() as session:
            # Locks in the order `_reserve_alone` takes them: the flow rows, then the numbers.
            states = await repo.flow_steps_and_numbers(session, chat_ids=chat_ids)
            await repo.lock_numbers(session, number_hashes=hashes)
            by_chat: dict[int, list[datetime]] = {}
            by_number: dict[str, list[datetime]] = {}
            for start in await repo.recent_starts(
                session, chat_ids=chat_ids, number_hashes=hashes, since=now - limits_rules.DAY
            ):
                by_chat.setdefault(start.chat_id, []).append(start.created_at)
                by_number.setdefault(start.number_hash, []).append(start.created_at)
            everyone = await repo.count_starts(session, since=hour_ago)
            admitted: list[tuple[repo.StartRow, int]] = []
            positions: list[int | None] = []
            for item in batch:
                state = states.get(item.chat_id)
                chat_starts = by_chat.setdefault(item.chat_id, [])
                number_starts = by_number.setdefault(item.number_hash, [])
                counts = limits_rules.counts_among(
                    chat_starts, number_starts, hour_ago=hour_ago, everyone_hour=everyone
                )
                if (
                    state is None
                    or state[0] != Step.NUMBER
                    or state[1] == item.e164
                    or not limits_rules.admits(self._limits, counts, now)
                ):
                    positions.append(None)
                    continue
                chat_starts.append(now)
                number_starts.append(now)
                everyone += 1
                positions.append(len(admitted))
                admitted.append(
                    (repo.StartRow(item.chat_id, item.number_hash, now), item.country_code)
                )
            ids = await repo.add_starts(session, rows=admitted) if admitted else []
        return [None if position is None else ids[position] for position in positions]

    async def _start_counted(
        self, person: Person, number: PhoneNumber, start_id: int
    ) -> NumberOutcome:
        """Ask Vonage for the start already counted under `start_id`."""
        try:
            request_id = await self._start_or_recover(person, number)
        except VerifyFailure as failure:
            return await self._start_failed(person, number, failure, start_id)
        if request_id is None:
            await self._start_failed(
                person, number, VerifyFailure(FailureKind.CONFLICT, status=409), start_id
            )
            return NumberOutcome(NumberResult.NUMBER_BUSY)
        if isinstance(request_id, _Reused):
            return await self._code_sent(person, number, request_id.request_id, reused=True)
        return await self._code_sent(person, number, request_id, reused=False)

    async def submit_code(self, person: Person, code: str) -> CodeOutcome:
        """Check a code against the chat's running request."""
        async with self._readers() as session:
            flow = await repo.get_flow(session, chat_id=person.chat_id)
        if flow is None or flow.step != Step.CODE or not flow.request_id:
            return CodeOutcome(CodeResult.NO_FLOW)
        if self._expired(flow):
            await self._expire(flow)
            return CodeOutcome(CodeResult.EXPIRED)
        phone = flow.phone_number or ""
        try:
            await self._verify.check(flow.request_id, code)
        except VerifyFailure as failure:
            return await self._check_failed(flow, failure)

        async with self._sessions.begin() as session:
            moved_from = await repo.save_login(
                session,
                chat_id=person.chat_id,
                user_id=person.user_id,
                phone_number=phone,
                username=person.username,
                full_name=person.full_name,
                verified_at=self._now(),
            )
            await repo.delete_flow(session, chat_id=person.chat_id)
            await self._audit.record(
                session,
                Event.VERIFIED,
                chat_id=person.chat_id,
                user_id=person.user_id,
                e164=phone,
                request_id=flow.request_id,
            )
            if moved_from is not None:
                await self._audit.record(
                    session,
                    Event.NUMBER_MOVED,
                    chat_id=moved_from,
                    e164=phone,
                    detail=f"to chat {person.chat_id}",
                )
                await repo.put_notice(
                    session,
                    chat_id=moved_from,
                    kind="number_moved",
                    phone_number=phone,
                    at=self._now(),
                )
        logger.info("Chat %s verified %s", person.chat_id, mask(phone))
        if moved_from is not None:
            logger.info(
                "Number %s moved from chat %s to %s", mask(phone), moved_from, person.chat_id
            )
        return CodeOutcome(CodeResult.VERIFIED, phone_number=phone, moved_from_chat=moved_from)

    async def resend_wait(self, chat_id: int) -> int | None:
        """Seconds until the chat may ask for the code again (0: now); None without a code."""
        async with self._readers() as session:
            flow = await repo.get_flow(session, chat_id=chat_id)
        if flow is None or flow.step != Step.CODE or flow.code_sent_at is None:
            return None
        ready = flow.code_sent_at + timedelta(seconds=self._limits.cooldown_seconds)
        return max(0, math.ceil((ready - self._now()).total_seconds()))

    async def resend(self, person: Person) -> NumberOutcome:
        """A new code to the same number: the old request is cancelled and a new one starts,
        under the same limits as any start. The limits are checked first, so a refused resend
        changes nothing and the old code keeps working; if Vonage then fails to start the new
        one, the chat is back to waiting for its number (the caller says so)."""
        async with self._readers() as session:
            flow = await repo.get_flow(session, chat_id=person.chat_id)
            if flow is None or flow.step != Step.CODE or not flow.phone_number:
                return NumberOutcome(NumberResult.NO_FLOW)
            number = parse_e164(flow.phone_number)
            refusal = await limits_rules.rate_refusal(
                session,
                self._limits,
                chat_id=person.chat_id,
                number_hash=self._audit.hash(number.e164),
                now=self._now(),
            )
        if refusal is not None:
            return NumberOutcome(NumberResult.LIMITED, refusal=refusal)
        async with self._sessions.begin() as session:
            current = await repo.get_flow(session, chat_id=person.chat_id, lock=True)
            if current is None or current.request_id != flow.request_id:
                return NumberOutcome(NumberResult.NO_FLOW)
            current.step = Step.NUMBER
            current.request_id = None
        if flow.request_id:
            await self._cancel_quietly(flow.request_id)
        return await self.submit_number(person, number)

    async def call_instead(self, chat_id: int) -> CallResult:
        """Move the running request on to its next channel (a voice call)."""
        async with self._readers() as session:
            flow = await repo.get_flow(session, chat_id=chat_id)
        if flow is None or flow.step != Step.CODE or not flow.request_id:
            return CallResult.NO_FLOW
        try:
            await self._verify.next_channel(flow.request_id)
        except VerifyFailure as failure:
            if failure.kind is FailureKind.NO_NEXT_CHANNEL:
                return CallResult.NO_NEXT_CHANNEL
            if failure.kind is FailureKind.NOT_FOUND:
                await self._expire(flow)
                return CallResult.EXPIRED
            return CallResult.UNAVAILABLE
        async with self._sessions.begin() as session:
            current = await repo.get_flow(session, chat_id=chat_id, lock=True)
            if current is not None and current.request_id == flow.request_id:
                current.code_sent_at = self._now()
                await self._flow_event(session, flow, Event.CODE_SENT, "voice")
        return CallResult.CALLING

    async def forget(self, chat_id: int) -> None:
        """Erase what is stored about a chat: its flow (cancelled at Vonage), its login, any
        notice, and its link to the audit trail. Its counted starts stay until they age out
        (two days): they hold no number, only its hash, and without them /forget would reset
        the chat's own limits."""
        await self.cancel(chat_id)
        async with self._sessions.begin() as session:
            await repo.delete_login(session, chat_id=chat_id)
            await repo.delete_flow(session, chat_id=chat_id)
            await repo.take_notice(session, chat_id=chat_id)
            await repo.anonymise_chat_events(session, chat_id=chat_id)
            await self._audit.record(session, Event.FORGOTTEN, chat_id=0)
        logger.info("Chat %s asked to be forgotten; done", chat_id)

    async def cancel(self, chat_id: int, *, reason: str | None = None) -> bool:
        """End the chat's login flow, cancelling its Verify request; False if there was none."""
        async with self._sessions.begin() as session:
            flow = await repo.get_flow(session, chat_id=chat_id, lock=True)
            if flow is None:
                return False
            await repo.delete_flow(session, chat_id=chat_id)
            if flow.step != Step.EXPIRED:
                await self._flow_event(session, flow, Event.CANCELLED, reason)
        if flow.step == Step.CODE and flow.request_id:
            await self._cancel_quietly(flow.request_id)
        return flow.step != Step.EXPIRED

    async def logout(self, chat_id: int) -> VerifiedUser | None:
        """End the chat's login (and any flow in progress); returns what it was."""
        await self.cancel(chat_id, reason="logout")
        async with self._sessions.begin() as session:
            login = await repo.delete_login(session, chat_id=chat_id)
            if login is not None:
                await self._audit.record(
                    session,
                    Event.LOGGED_OUT,
                    chat_id=chat_id,
                    user_id=login.user_id,
                    e164=login.phone_number,
                )
            return login

    async def take_expired_notice(self, chat_id: int) -> bool:
        """True once after the chat's code expired unused (the notice is then consumed)."""
        if await self.step_of(chat_id) != Step.EXPIRED:
            return False
        async with self._sessions.begin() as session:
            flow = await repo.get_flow(session, chat_id=chat_id, lock=True)
            if flow is None or flow.step != Step.EXPIRED:
                return False
            await repo.delete_flow(session, chat_id=chat_id)
        return True

    async def expire_due(self, *, batch: int = 100) -> int:
        """Expire flows whose code has timed out (cancelling their requests); returns how many.
        Also drops flows and counted starts too old to matter."""
        now = self._now()
        async with self._readers() as session:
            due = await repo.due_flows(session, now=now, limit=batch)
        for flow in due:
            await self._expire(flow)
        async with self._sessions.begin() as session:
            await repo.purge_stale_flows(session, before=now - timedelta(days=2))
            await repo.purge_starts(session, before=now - timedelta(days=2))
            await repo.purge_notices(session, before=now - timedelta(days=2))
        return len(due)

    # ---- helpers ------------------------------------------------------------------------

    def _expired(self, flow: LoginFlow) -> bool:
        return flow.expires_at is not None and flow.expires_at <= self._now()

    async def _expire(self, flow: LoginFlow) -> None:
        async with self._sessions.begin() as session:
            current = await repo.get_flow(session, chat_id=flow.chat_id, lock=True)
            if (
                current is None
                or current.step != Step.CODE
                or current.request_id != flow.request_id
            ):
                return
            current.step = Step.EXPIRED
            current.request_id = None
            current.phone_number = None  # the notice needs no number; keep none longer
            await self._flow_event(session, flow, Event.EXPIRED)
        if flow.request_id:
            await self._cancel_quietly(flow.request_id)
        logger.info("Code for chat %s expired", flow.chat_id)

    async def _start_or_recover(self, person: Person, number: PhoneNumber) -> str | _Reused | None:
        """Start a request. On 409 (a request already running for that number): reuse it if it
        is this chat's, cancel it if nobody owns it any more, else give up (None)."""
        try:
            return await self._verify.start(number.digits)
        except VerifyFailure as failure:
            if failure.kind is not FailureKind.CONFLICT or not failure.request_id:
                raise
            running = failure.request_id
        async with self._readers() as session:
            owner = await repo.flow_with_request(session, request_id=running)
        if owner is not None and owner.chat_id == person.chat_id:
            return _Reused(running)
        if owner is not None and owner.step == Step.CODE and not self._expired(owner):
            return None
        logger.info("Cancelling a stranded request to %s", number.masked)
        await self._cancel_quietly(running)
        return await self._verify.start(number.digits)

    async def _code_sent(
        self, person: Person, number: PhoneNumber, request_id: str, *, reused: bool
    ) -> NumberOutcome:
        if reused:
            expires_at = await self._record_reused(person, number, request_id)
        else:
            expires_at = await self._codes_sent(_CodeSent(person, number, request_id))
        logger.info("Code sent to %s for chat %s", number.masked, person.chat_id)
        result = NumberResult.ALREADY_SENT if reused else NumberResult.CODE_SENT
        return NumberOutcome(result, expires_at=expires_at, phone_number=number.e164)

    async def _record_codes_sent(self, batch: list[_CodeSent]) -> list[datetime]:
        """Step CODE, with the request, a fresh expiry and all tries, for several chats in
        one transaction with their audit events: two statements in all."""
        now = self._now()
        expires_at = now + timedelta(seconds=self._policy.code_ttl_seconds)
        rows: list[dict[str, object]] = []
        events: list[dict[str, object]] = []
        for item in batch:
            rows.append(
                {
                    "chat_id": item.person.chat_id,
                    "step": Step.CODE,
                    "phone_number": item.number.e164,
                    "request_id": item.request_id,
                    "tries_left": self._policy.max_attempts,
                    "code_sent_at": now,
                    "expires_at": expires_at,
                }
            )
            events.append(
                self._audit.row(
                    Event.CODE_SENT,
                    chat_id=item.person.chat_id,
                    user_id=item.person.user_id,
                    e164=item.number.e164,
                    country_code=item.number.country_code,
                    request_id=item.request_id,
                )
            )
        async with self._sessions.begin() as session:
            updated = await repo.update_flows(session, rows=rows)
            if updated is None or updated < len(rows):
                # Some flow may be gone (purged meanwhile): the code still works for its chat.
                have_flow = await repo.locked_flow_chats(
                    session, chat_ids=[item.person.chat_id for item in batch]
                )
                missing = {
                    item.person.chat_id: {**row, "user_id": item.person.user_id, "started_at": now}
                    for item, row in zip(batch, rows, strict=True)
                    if item.person.chat_id not in have_flow
                }
                if missing:
                    await repo.add_flows(session, rows=list(missing.values()))
            await repo.add_events(session, rows=events)
        return [expires_at] * len(batch)

    async def _record_reused(
        self, person: Person, number: PhoneNumber, request_id: str
    ) -> datetime | None:
        """Step CODE with a request that was already running for this chat: it keeps the
        expiry and tries it had."""
        now = self._now()
        async with self._sessions.begin() as session:
            flow = await repo.get_flow(session, chat_id=person.chat_id, lock=True)
            if flow is None:
                flow = LoginFlow(chat_id=person.chat_id, user_id=person.user_id, started_at=now)
            flow.step = Step.CODE
            flow.phone_number = number.e164
            flow.request_id = request_id
            if flow.expires_at is None:
                flow.tries_left = self._policy.max_attempts
                flow.code_sent_at = now
                flow.expires_at = now + timedelta(seconds=self._policy.code_ttl_seconds)
            await repo.put_flow(session, flow=flow)
            await self._audit.record(
                session,
                Event.CODE_SENT,
                chat_id=person.chat_id,
                user_id=person.user_id,
                e164=number.e164,
                request_id=request_id,
                detail="reused",
            )
        return flow.expires_at

    async def _start_failed(
        self, person: Person, number: PhoneNumber, failure: VerifyFailure, start_id: int
    ) -> NumberOutcome:
        kind = failure.kind
        reason = "number_busy" if kind is FailureKind.CONFLICT else kind.value
        async with self._sessions.begin() as session:
            if failure.status is not None:
                # Vonage answered, so nothing was sent: the start does not count against
                # the user.
                await repo.remove_start(session, start_id=start_id)
            await self._audit.record(
                session,
                Event.FAILED,
                chat_id=person.chat_id,
                user_id=person.user_id,
                e164=number.e164,
                detail=reason,
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
            async with self._sessions.begin() as session:
                current = await repo.get_flow(session, chat_id=flow.chat_id, lock=True)
                if current is None or current.request_id != flow.request_id:
                    return CodeOutcome(CodeResult.NO_FLOW)
                current.tries_left = max(current.tries_left - 1, 0)
                tries_left = current.tries_left
                await self._flow_event(session, flow, Event.CODE_WRONG, f"{tries_left} left")
                if tries_left == 0:
                    await repo.delete_flow(session, chat_id=flow.chat_id)
                    await self._flow_event(session, flow, Event.FAILED, "too_many_wrong")
            if tries_left == 0:
                if flow.request_id:
                    await self._cancel_quietly(flow.request_id)
                return CodeOutcome(CodeResult.TOO_MANY)
            return CodeOutcome(CodeResult.WRONG, tries_left=tries_left)
        if kind in (FailureKind.TOO_MANY_WRONG, FailureKind.NOT_FOUND):
            async with self._sessions.begin() as session:
                await repo.delete_flow(session, chat_id=flow.chat_id)
                if kind is FailureKind.TOO_MANY_WRONG:
                    await self._flow_event(session, flow, Event.FAILED, "too_many_wrong")
                else:
                    await self._flow_event(session, flow, Event.EXPIRED, "unknown to vonage")
            if kind is FailureKind.TOO_MANY_WRONG:
                return CodeOutcome(CodeResult.TOO_MANY)
            return CodeOutcome(CodeResult.EXPIRED)
        async with self._sessions.begin() as session:
            await self._flow_event(session, flow, Event.FAILED, f"check_{kind.value}")
        return CodeOutcome(CodeResult.UNAVAILABLE, alert=await self._account_alert(kind))

    async def _cancel_quietly(self, request_id: str) -> None:
        """Cancel a request we no longer want; it expires by itself if Vonage cannot be reached."""
        try:
            await self._verify.cancel(request_id)
        except VerifyFailure as failure:
            logger.info("Could not cancel a Verify request: %s", failure.kind)

    async def _flow_event(
        self, session: AsyncSession, flow: LoginFlow, event: Event, detail: str | None = None
    ) -> None:
        """Record an event about a flow, with the flow's chat, number and request."""
        await self._audit.record(
            session,
            event,
            chat_id=flow.chat_id,
            user_id=flow.user_id,
            e164=flow.phone_number,
            request_id=flow.request_id,
            detail=detail,
        )

    async def _account_alert(self, kind: FailureKind) -> str | None:
        """For credential and credit trouble: the alert admins should get, once an hour."""
        if kind not in (FailureKind.BAD_CREDENTIALS, FailureKind.NO_CREDIT):
            return None
        return kind.value if await self._claim_alert(kind.value) else None

    async def _claim_alert(self, kind: str) -> bool:
        now = self._now()
        async with self._sessions.begin() as session:
            return await repo.claim_alert(
                session, kind=kind, now=now, quiet_since=now - ALERT_QUIET
            )


@dataclass(frozen=True, slots=True)
class _Reused:
    request_id: str


@dataclass(frozen=True, slots=True)
class _Reservation:
    """A start to count, if the limits allow it."""

    chat_id: int
    number_hash: str
    e164: str
    country_code: int


@dataclass(frozen=True, slots=True)
class _CodeSent:
    """A start Vonage accepted, to record."""

    person: Person
    number: PhoneNumber
    request_id: str
