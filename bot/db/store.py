"""Where the login's state is kept: every change the login service makes is one named
transaction here, with its audit events, so the service reads as the login's rules and never
opens a session itself.

The busiest steps of an update burst (loading a chat's state, counting a start, recording a
sent code) are group-committed: concurrent callers share one transaction and a few
statements (see `bot.db.batching`), and each still gets exactly the answer it would alone.
Sessions that only read go to the readers (no write lock on SQLite).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import utcnow
from bot.db import repo
from bot.db.batching import Coalescer
from bot.db.models import LoginFlow, VerifiedUser
from bot.login import limits
from bot.login.audit import LIMITED_ONCE_PER, Audit, Event
from bot.login.limits import Limits, Refusal, Rule, StartLedger
from bot.login.phone import PhoneNumber
from bot.login.steps import Notice, NoticeKind, NumberResult, Person, Step

# The most old audit events (and, apart, records of handled updates) one purge deletes.
PURGE_BATCH = 10_000


@dataclass(frozen=True, slots=True)
class FlowState:
    """What a chat's next update needs first: its step, its code's expiry, whether a
    notice waits for it, and the language it chose (None: it chose none)."""

    step: Step | None
    expires_at: datetime | None
    has_notice: bool
    language: str | None = None


@dataclass(frozen=True, slots=True)
class Restarted:
    """What a restarted login replaced."""

    login: VerifiedUser | None  # the chat's current login
    in_progress: bool  # a login was already waiting for a number or a code
    running_request: str | None  # the Verify (or Gateway) request of that attempt, to cancel
    running_channel: str | None = None  # the channel it went by


class LoginStore:
    """The login's transactions, group-committed where updates come in bursts."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        readers: async_sessionmaker[AsyncSession] | None = None,
        audit: Audit,
        limits: Limits,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions = sessions
        # Sessions that only read (no write lock on SQLite); the writers' if none are given.
        self._readers = readers or sessions
        self._audit = audit
        self._limits = limits
        self._now = clock
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

    async def flow_with_request(self, request_id: str) -> LoginFlow | None:
        """The flow that owns a Verify request, if we know it."""
        async with self._readers() as session:
            return await repo.flow_with_request(session, request_id=request_id)

    async def chats_with_unanswered_starts(
        self, number: PhoneNumber, *, since: datetime, other_than: int
    ) -> set[int]:
        """The chats with a start to the number since `since` whose request is not recorded
        (at Vonage now, or its answer lost), apart from the start `other_than`."""
        async with self._readers() as session:
            return await repo.chats_with_unanswered_starts(
                session,
                number_hash=self._audit.hash(number.e164),
                since=since,
                other_than=other_than,
            )

    async def due_flows(self, *, now: datetime, limit: int) -> Sequence[LoginFlow]:
        """Flows waiting for a code whose request has expired by `now`."""
        async with self._readers() as session:
            return await repo.due_flows(session, now=now, limit=limit)

    async def flows_on_channel_since(
        self, channel: str, *, sent_before: datetime, limit: int
    ) -> Sequence[LoginFlow]:
        """Flows still waiting for a code sent by `channel` before `sent_before`."""
        async with self._readers() as session:
            return await repo.flows_on_channel_since(
                session, channel=channel, sent_before=sent_before, limit=limit
            )

    async def state(self, chat_id: int) -> FlowState:
        """The chat's step, code expiry and whether a notice waits (batched)."""
        return await self._states(chat_id)

    async def _load_states(self, chat_ids: list[int]) -> list[FlowState]:
        async with self._readers() as session:
            flows, notices, languages = await repo.flow_states(session, chat_ids=chat_ids)
        states: list[FlowState] = []
        for chat_id in chat_ids:
            step, expires_at = flows.get(chat_id, (None, None))
            states.append(
                FlowState(_step(step), expires_at, chat_id in notices, languages.get(chat_id))
            )
        return states

    async def languages_of(self, chat_ids: list[int]) -> dict[int, str]:
        """The languages these chats chose with /language (the others are absent)."""
        async with self._readers() as session:
            return await repo.chat_languages(session, chat_ids=chat_ids)

    async def set_language(self, chat_id: int, language: str) -> None:
        """Store the language a chat chose with /language."""
        async with self._sessions.begin() as session:
            await repo.put_chat_language(
                session, chat_id=chat_id, language=language, now=self._now()
            )

    async def rate_refusal(self, person: Person, number: PhoneNumber) -> Refusal | None:
        """`limits.rate_refusal` for a start by this chat to this number now, read without
        locking anything (counting the start decides again, under the locks)."""
        now = self._now()
        number_hash = self._audit.hash(number.e164)
        async with self._readers() as session:
            ledger = await self._ledger(
                session, chat_ids=[person.chat_id], number_hashes=[number_hash], now=now
            )
        return ledger.refusal(
            self._limits, chat_id=person.chat_id, number_hash=number_hash, now=now
        )

    # ---- a login's steps ----------------------------------------------------------------

    async def take_notice(self, chat_id: int) -> Notice | None:
        """The chat's waiting notice, removed as it is read."""
        async with self._sessions.begin() as session:
            taken = await repo.take_notice(session, chat_id=chat_id)
        return None if taken is None else Notice(NoticeKind(taken.kind), taken.phone_number)

    async def restart_flow(
        self, person: Person, *, reprove: bool = False, language: str | None = None
    ) -> Restarted:
        """The chat now waits for a number (recorded as `login_started`), in `language`; a
        request still running for an earlier attempt is recorded as cancelled ("restarted").
        With `reprove`, the number must be proven even if the chat is logged in with it."""
        async with self._sessions.begin() as session:
            previous = await repo.get_flow(session, chat_id=person.chat_id, lock=True)
            # put_flow() below overwrites the loaded row in place: keep what we need first.
            running = previous.request_id if previous and previous.step == Step.CODE else None
            running_channel = previous.channel if previous else None
            in_progress = previous is not None and previous.step in (Step.NUMBER, Step.CODE)
            login = await repo.get_login(session, chat_id=person.chat_id)
            if running:
                await self._person_event(
                    session,
                    person,
                    Event.CANCELLED,
                    e164=previous.phone_number if previous else None,
                    request_id=running,
                    detail="restarted",
                )
            await self._person_event(session, person, Event.LOGIN_STARTED)
            await repo.put_flow(
                session,
                exists=previous is not None,
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
                    channel=None,
                    reprove=reprove,
                    language=language,
                ),
            )
        return Restarted(login, in_progress, running, running_channel)

    async def record_limited(self, person: Person, number: PhoneNumber, rule: Rule) -> None:
        """A start refused by a rule that is checked before anything is counted (recorded
        once per chat, rule and `LIMITED_ONCE_PER`)."""
        async with self._sessions.begin() as session:
            if (person.chat_id, rule) in await self._limited_recently(session, [person.chat_id]):
                return
            await self._person_event(session, person, Event.LIMITED, e164=number.e164, detail=rule)

    async def reserve_start(
        self, person: Person, number: PhoneNumber
    ) -> int | Refusal | NumberResult:
        """Count a start by the chat to the number if it may start now (batched): the chat
        still waits for a number, is not logged in with this one, and `limits.rate_refusal`
        admits it, counting the starts admitted before it in the same batch. Returns the
        counted start's id; or the refusal (recorded as `limited`); or NO_FLOW, or
        ALREADY_YOURS (the chat's flow is then ended)."""
        return await self._reservations(_Reservation(person, number, self._audit.hash(number.e164)))

    async def _reserve_starts(
        self, batch: list[_Reservation]
    ) -> list[int | Refusal | NumberResult]:
        now = self._now()
        chat_ids = sorted({item.person.chat_id for item in batch})
        async with self._sessions.begin() as session:
            # Locks in a fixed order, the flow rows then the admissions, so two batches (of
            # this or another process) cannot deadlock.
            states = await repo.flow_steps_and_numbers(session, chat_ids=chat_ids)
            ledger = await self._ledger(
                session,
                chat_ids=chat_ids,
                number_hashes=sorted({item.number_hash for item in batch}),
                now=now,
                admitting=len(batch),
                lock=True,
            )
            # Each result: the position of the start among those to insert, or the answer.
            results: list[int | Refusal | NumberResult] = []
            admitted: list[tuple[repo.StartRow, int]] = []
            refused: dict[tuple[int, str], dict[str, object]] = {}
            for item in batch:
                chat_id, number_hash = item.person.chat_id, item.number_hash
                state = states.get(chat_id)
                if state is None or state[0] != Step.NUMBER:
                    results.append(NumberResult.NO_FLOW)
                    continue
                if state[1] == item.number.e164:
                    await repo.delete_flow(session, chat_id=chat_id)
                    results.append(NumberResult.ALREADY_YOURS)
                    continue
                refusal = ledger.refusal(
                    self._limits, chat_id=chat_id, number_hash=number_hash, now=now
                )
                if refusal is not None:
                    refused.setdefault(
                        (chat_id, refusal.rule),
                        self._audit.row(
                            Event.LIMITED,
                            chat_id=chat_id,
                            user_id=item.person.user_id,
                            number=item.number,
                            detail=refusal.rule,
                        ),
                    )
                    results.append(refusal)
                    continue
                ledger.count(chat_id=chat_id, number_hash=number_hash, at=now)
                results.append(len(admitted))
                admitted.append(
                    (repo.StartRow(chat_id, number_hash, now), item.number.country_code)
                )
            ids = await repo.add_starts(session, rows=admitted) if admitted else []
            if refused:
                recorded = await self._limited_recently(session, [chat for chat, _ in refused])
                rows = [row for key, row in refused.items() if key not in recorded]
                if rows:
                    await repo.add_events(session, rows=rows)
        return [ids[result] if isinstance(result, int) else result for result in results]

    async def _ledger(
        self,
        session: AsyncSession,
        *,
        chat_ids: Sequence[int],
        number_hashes: Sequence[str],
        now: datetime,
        admitting: int = 1,
        lock: bool = False,
    ) -> StartLedger:
        """The counted starts `limits.rate_refusal` needs to decide on up to `admitting`
        starts by these chats to these numbers. With `lock`, no other admission runs until
        the transaction ends, so two starts (of any chats, in any process) cannot both take
        the same last free slot of any limit."""
        if lock:
            await repo.lock_admissions(session)
        recent = await repo.recent_starts(
            session, chat_ids=chat_ids, number_hashes=number_hashes, since=now - limits.DAY
        )
        everyone = await repo.count_starts(session, since=now - limits.HOUR)
        needed = limits.global_oldest_needed(
            self._limits, everyone_hour=everyone, admitting=admitting
        )
        oldest = (
            await repo.oldest_starts(session, since=now - limits.HOUR, limit=needed)
            if needed
            else ()
        )
        return StartLedger(
            ((start.chat_id, start.number_hash, start.created_at) for start in recent),
            everyone_hour=everyone,
            everyone_oldest=oldest,
        )

    async def record_start_failed(
        self, person: Person, number: PhoneNumber, *, start_id: int, uncount: bool, reason: str
    ) -> None:
        """Vonage did not start the counted start (recorded as `failed`); with `uncount`, it
        no longer counts against the limits."""
        async with self._sessions.begin() as session:
            if uncount:
                await repo.remove_start(session, start_id=start_id)
            await self._person_event(session, person, Event.FAILED, e164=number.e164, detail=reason)

    async def record_code_sent(
        self,
        person: Person,
        number: PhoneNumber,
        request_id: str,
        *,
        start_id: int,
        ttl: timedelta,
        tries: int,
        channel: str,
        detail: str | None = None,
    ) -> datetime:
        """Step CODE for the chat, with the request, its expiry (`ttl` from now), its
        `tries` and the channel it goes by (batched, with the `code_sent` events, `detail`
        theirs); the counted start `start_id` learns its request. Returns the expiry."""
        return await self._codes_sent(
            _CodeSent(person, number, request_id, start_id, ttl, tries, channel, detail)
        )

    async def _record_codes_sent(self, batch: list[_CodeSent]) -> list[datetime]:
        """Three statements for the whole batch: the flows', the starts' and the events'."""
        now = self._now()
        rows: list[dict[str, object]] = []
        events: list[dict[str, object]] = []
        for item in batch:
            rows.append(
                {
                    "chat_id": item.person.chat_id,
                    "step": Step.CODE,
                    "phone_number": item.number.e164,
                    "request_id": item.request_id,
                    "tries_left": item.tries,
                    "code_sent_at": now,
                    "expires_at": now + item.ttl,
                    "channel": item.channel,
                }
            )
            events.append(
                self._audit.row(
                    Event.CODE_SENT,
                    chat_id=item.person.chat_id,
                    user_id=item.person.user_id,
                    number=item.number,
                    request_id=item.request_id,
                    detail=item.detail,
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
            await repo.answer_starts(
                session, requests=[(item.start_id, item.request_id) for item in batch]
            )
            await repo.add_events(session, rows=events)
        return [now + item.ttl for item in batch]

    async def record_reused(
        self,
        person: Person,
        number: PhoneNumber,
        request_id: str,
        *,
        start_id: int,
        ttl: timedelta,
        tries: int,
        channel: str,
    ) -> datetime | None:
        """Step CODE with a request that was already running for this chat (recorded as
        `code_sent`, "reused"): it keeps the expiry and tries it had, else gets `ttl` and
        `tries` from now. The counted start `start_id` (answered 409) learns that request.
        Returns the expiry."""
        now = self._now()
        async with self._sessions.begin() as session:
            flow = await repo.get_flow(session, chat_id=person.chat_id, lock=True)
            exists = flow is not None
            if flow is None:
                flow = LoginFlow(chat_id=person.chat_id, user_id=person.user_id, started_at=now)
            flow.step = Step.CODE
            flow.phone_number = number.e164
            flow.request_id = request_id
            if flow.expires_at is None:
                flow.tries_left = tries
                flow.code_sent_at = now
                flow.expires_at = now + ttl
                flow.channel = channel
            await repo.put_flow(session, flow=flow, exists=exists)
            await self._person_event(
                session,
                person,
                Event.CODE_SENT,
                e164=number.e164,
                request_id=request_id,
                detail="reused",
            )
            await repo.answer_starts(session, requests=[(start_id, request_id)])
        return flow.expires_at

    async def record_verified(
        self,
        person: Person,
        phone_number: str,
        request_id: str | None,
        *,
        channel: str,
    ) -> int | None:
        """The chat is logged in with the number, proven by `channel` (a `Method`: kept with
        the login, and the detail of its `verified` event), and its flow ends.
        A chat that held the number before loses its login: recorded as `number_moved`, and
        it is left a notice. Returns that chat's id, if there was one."""
        async with self._sessions.begin() as session:
            moved_from = await repo.save_login(
                session,
                chat_id=person.chat_id,
                user_id=person.user_id,
                phone_number=phone_number,
                username=person.username,
                full_name=person.full_name,
                verified_at=self._now(),
                channel=channel,
            )
            await repo.delete_flow(session, chat_id=person.chat_id)
            await self._person_event(
                session,
                person,
                Event.VERIFIED,
                e164=phone_number,
                request_id=request_id,
                detail=channel,
            )
            if moved_from is not None:
                await self._audit.record(
                    session,
                    Event.NUMBER_MOVED,
                    chat_id=moved_from,
                    e164=phone_number,
                    detail=f"to chat {person.chat_id}",
                )
                await repo.put_notice(
                    session,
                    chat_id=moved_from,
                    kind=NoticeKind.NUMBER_MOVED,
                    phone_number=phone_number,
                    at=self._now(),
                )
        return moved_from

    async def take_try(self, flow: LoginFlow) -> int | None:
        """One try less for the flow's request (recorded as `code_wrong`); at none left the
        flow ends (recorded as `failed`, "too_many_wrong"). Returns the tries left, or None
        if the chat's flow has moved on to another request meanwhile."""
        async with self._sessions.begin() as session:
            current = await repo.get_flow(session, chat_id=flow.chat_id, lock=True)
            if current is None or current.request_id != flow.request_id:
                return None
            current.tries_left = max(current.tries_left - 1, 0)
            tries_left = current.tries_left
            await self._flow_event(session, flow, Event.CODE_WRONG, f"{tries_left} left")
            if tries_left == 0:
                await repo.delete_flow(session, chat_id=flow.chat_id)
                await self._flow_event(session, flow, Event.FAILED, "too_many_wrong")
        return tries_left

    async def record_call(self, flow: LoginFlow) -> None:
        """The flow's request moved on to a voice call (recorded as `code_sent`, "voice"):
        the cooldown before another new code counts from now."""
        async with self._sessions.begin() as session:
            current = await repo.get_flow(session, chat_id=flow.chat_id, lock=True)
            if current is not None and current.request_id == flow.request_id:
                current.code_sent_at = self._now()
                current.channel = "voice"
                await self._flow_event(session, flow, Event.CODE_SENT, "voice")

    async def record_fallback(
        self, flow: LoginFlow, request_id: str, *, channel: str, reason: str
    ) -> bool:
        """The flow's code now comes by `channel` under a new request (recorded as
        `code_sent` with the channel as detail: the same login, not a new start; `reason`
        in the log only). Its expiry and tries stay. False if the flow has moved on."""
        async with self._sessions.begin() as session:
            current = await _still_waiting(session, flow)
            if current is None:
                return False
            current.request_id = request_id
            current.channel = channel
            current.code_sent_at = self._now()
            await self._audit.record(
                session,
                Event.CODE_SENT,
                chat_id=flow.chat_id,
                user_id=flow.user_id,
                e164=flow.phone_number,
                request_id=request_id,
                detail=channel,
            )
        return True

    async def record_fallback_failed(self, flow: LoginFlow, detail: str) -> None:
        """Vonage did not take over the flow's Gateway request (recorded as `failed`): it
        stays as it is, its channel timeout counted again from now."""
        async with self._sessions.begin() as session:
            current = await _still_waiting(session, flow)
            if current is not None:
                current.code_sent_at = self._now()
            await self._flow_event(session, flow, Event.FAILED, detail)

    async def record_report(self, request_id: str, status: str) -> None:
        """A delivery report of a Gateway message, recorded as `delivery_report` (the status
        its detail) in the chat of the flow waiting for it; with chat 0 when none is (the
        login has moved on: to SMS, or it ended)."""
        async with self._sessions.begin() as session:
            flow = await repo.flow_with_request(session, request_id=request_id)
            if flow is not None:
                await self._flow_event(session, flow, Event.DELIVERY_REPORT, status)
            else:
                await self._audit.record(
                    session, Event.DELIVERY_REPORT, chat_id=0, request_id=request_id, detail=status
                )

    async def drop_request(self, flow: LoginFlow) -> bool:
        """The chat waits for a number again, without the flow's request; False if the flow
        has moved on to another request meanwhile."""
        async with self._sessions.begin() as session:
            current = await repo.get_flow(session, chat_id=flow.chat_id, lock=True)
            if current is None or current.request_id != flow.request_id:
                return False
            current.step = Step.NUMBER
            current.request_id = None
        return True

    async def expire(self, flow: LoginFlow) -> bool:
        """The flow's code expired unused (recorded as `expired`): the chat is told on its next
        message. False if the flow has moved on meanwhile."""
        async with self._sessions.begin() as session:
            current = await _still_waiting(session, flow)
            if current is None:
                return False
            current.step = Step.EXPIRED
            current.request_id = None
            current.phone_number = None  # the notice needs no number; keep none longer
            await self._flow_event(session, flow, Event.EXPIRED)
        return True

    async def end_flow(self, flow: LoginFlow, event: Event, detail: str) -> None:
        """The flow ends, recorded as `event`."""
        async with self._sessions.begin() as session:
            await repo.delete_flow(session, chat_id=flow.chat_id)
            await self._flow_event(session, flow, event, detail)

    async def record_flow_event(self, flow: LoginFlow, event: Event, detail: str) -> None:
        """Something happened to the flow that changes nothing stored."""
        async with self._sessions.begin() as session:
            await self._flow_event(session, flow, event, detail)

    async def cancel_flow(self, chat_id: int, *, reason: str | None) -> LoginFlow | None:
        """The chat's flow ends (recorded as `cancelled`, unless it had only an expired code
        left); returns what it was."""
        async with self._sessions.begin() as session:
            flow = await repo.get_flow(session, chat_id=chat_id, lock=True)
            if flow is None:
                return None
            await repo.delete_flow(session, chat_id=chat_id)
            if flow.step != Step.EXPIRED:
                await self._flow_event(session, flow, Event.CANCELLED, reason)
        return flow

    async def clear_expired(self, chat_id: int) -> bool:
        """The chat's flow ends if it had only an expired code left; whether it had."""
        async with self._sessions.begin() as session:
            flow = await repo.get_flow(session, chat_id=chat_id, lock=True)
            if flow is None or flow.step != Step.EXPIRED:
                return False
            await repo.delete_flow(session, chat_id=chat_id)
        return True

    async def end_login(self, chat_id: int) -> VerifiedUser | None:
        """The chat's login ends (recorded as `logged_out`); returns what it was."""
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

    async def forget(self, chat_id: int) -> None:
        """Erase the chat's login, flow, notice and language, and detach it from its audit
        events (recorded, with no chat, as `forgotten`)."""
        async with self._sessions.begin() as session:
            await repo.delete_login(session, chat_id=chat_id)
            await repo.delete_flow(session, chat_id=chat_id)
            await repo.take_notice(session, chat_id=chat_id)
            await repo.delete_chat_language(session, chat_id=chat_id)
            await repo.anonymise_chat_events(session, chat_id=chat_id)
            await self._audit.record(session, Event.FORGOTTEN, chat_id=0)

    async def purge(self, *, before: datetime, events_before: datetime) -> None:
        """Drop flows, counted starts, notices and records of handled updates older than
        `before`, and audit events older than `events_before` (at most `PURGE_BATCH` rows of
        each of the last two at a time, so a first purge of a large table is many short
        transactions, one per sweep)."""
        async with self._sessions.begin() as session:
            await repo.purge_stale_flows(session, before=before)
            await repo.purge_starts(session, before=before)
            await repo.purge_notices(session, before=before)
            await repo.purge_processed_updates(session, before=before, limit=PURGE_BATCH)
            await repo.purge_events(session, before=events_before, limit=PURGE_BATCH)

    async def claim_alert(self, kind: str, *, quiet: timedelta) -> bool:
        """True if admins have not been told about this kind of trouble for `quiet` (and
        records that they are being told now)."""
        now = self._now()
        async with self._sessions.begin() as session:
            return await repo.claim_alert(session, kind=kind, now=now, quiet_since=now - quiet)

    async def _limited_recently(
        self, session: AsyncSession, chat_ids: Sequence[int]
    ) -> set[tuple[int, str | None]]:
        """(chat, rule) of the refusals these chats have had recorded within
        `LIMITED_ONCE_PER`."""
        return await repo.chats_with_event(
            session,
            event=Event.LIMITED,
            chat_ids=chat_ids,
            since=self._now() - LIMITED_ONCE_PER,
        )

    async def _person_event(
        self,
        session: AsyncSession,
        person: Person,
        event: Event,
        *,
        e164: str | None = None,
        request_id: str | None = None,
        detail: str | None = None,
    ) -> None:
        """Record an event about what a person did, in their chat."""
        await self._audit.record(
            session,
            event,
            chat_id=person.chat_id,
            user_id=person.user_id,
            e164=e164,
            request_id=request_id,
            detail=detail,
        )

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


async def _still_waiting(session: AsyncSession, flow: LoginFlow) -> LoginFlow | None:
    """The chat's flow, locked, if it still waits for the code of `flow`'s request."""
    current = await repo.get_flow(session, chat_id=flow.chat_id, lock=True)
    if current is None or current.step != Step.CODE or current.request_id != flow.request_id:
        return None
    return current


def _step(stored: str | None) -> Step | None:
    return None if stored is None else Step(stored)


@dataclass(frozen=True, slots=True)
class _Reservation:
    """A start to count, if the limits allow it."""

    person: Person
    number: PhoneNumber
    number_hash: str


@dataclass(frozen=True, slots=True)
class _CodeSent:
    """A start Vonage accepted, to record."""

    person: Person
    number: PhoneNumber
    request_id: str
    start_id: int
    ttl: timedelta
    tries: int
    channel: str
    detail: str | None
