"""Every query the bot makes. Functions take the session first and keyword-only arguments;
callers own the transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    Select,
    String,
    Table,
    bindparam,
    delete,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.locks import ADMISSIONS_NAMESPACE
from bot.db.models import (
    AdminAlert,
    AuthEvent,
    ChatLanguage,
    ChatNotice,
    LoginFlow,
    ProcessedUpdate,
    VerificationStart,
    VerifiedUser,
)

# ---- flows in progress ----------------------------------------------------------------


async def get_flow(session: AsyncSession, *, chat_id: int, lock: bool = False) -> LoginFlow | None:
    """The chat's login in progress, if any; with `lock`, the row is locked for the rest of
    the transaction (PostgreSQL; SQLite's writers already exclude each other), so a
    read-modify-write cannot race the sweeper or another process."""
    return await session.get(LoginFlow, chat_id, populate_existing=True, with_for_update=lock)


async def flow_states(
    session: AsyncSession, *, chat_ids: Sequence[int]
) -> tuple[dict[int, tuple[str, datetime | None]], set[int], dict[int, str]]:
    """The step and code expiry of the flows of several chats, which of them have a notice
    waiting, and the languages they chose with /language, in one query."""
    flows = select(
        LoginFlow.chat_id, LoginFlow.step, LoginFlow.expires_at, literal(0).label("kind")
    ).where(LoginFlow.chat_id.in_(chat_ids))
    notices = select(ChatNotice.chat_id, null(), null(), literal(1)).where(
        ChatNotice.chat_id.in_(chat_ids)
    )
    languages = select(ChatLanguage.chat_id, ChatLanguage.language, null(), literal(2)).where(
        ChatLanguage.chat_id.in_(chat_ids)
    )
    states: dict[int, tuple[str, datetime | None]] = {}
    with_notice: set[int] = set()
    chosen: dict[int, str] = {}
    for chat_id, value, expires_at, kind in await session.execute(
        union_all(flows, notices, languages)
    ):
        if kind == 0:
            states[chat_id] = (value, expires_at)
        elif kind == 1:
            with_notice.add(chat_id)
        else:
            chosen[chat_id] = value
    return states, with_notice, chosen


async def locked_flow_chats(session: AsyncSession, *, chat_ids: Sequence[int]) -> set[int]:
    """Which of these chats have a flow, locking those rows for the rest of the transaction
    (PostgreSQL; in chat order, so two such transactions cannot deadlock)."""
    result = await session.execute(
        select(LoginFlow.chat_id)
        .where(LoginFlow.chat_id.in_(chat_ids))
        .order_by(LoginFlow.chat_id)
        .with_for_update()
    )
    return set(result.scalars())


async def update_flows(session: AsyncSession, *, rows: Sequence[dict[str, object]]) -> int | None:
    """Update several flows by chat id in one executemany (each row: `chat_id` and the
    columns to set, the same columns in every row). Returns how many rows were updated (fewer
    than given: some chats have no flow), or None where the driver cannot tell (asyncpg)."""
    if not rows:
        return 0
    table = cast(Table, LoginFlow.__table__)
    columns = [name for name in rows[0] if name != "chat_id"]
    statement = (
        update(table)
        .where(table.c.chat_id == bindparam("flow_chat_id"))
        .values({name: bindparam(f"new_{name}") for name in columns})
    )
    params = [
        {"flow_chat_id": row["chat_id"], **{f"new_{name}": row[name] for name in columns}}
        for row in rows
    ]
    result = await session.execute(statement, params)
    if len(params) > 1 and not result.supports_sane_multi_rowcount():  # type: ignore[attr-defined]
        return None
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def add_flows(session: AsyncSession, *, rows: Sequence[dict[str, object]]) -> None:
    """Insert several flows (each row: every column)."""
    await session.execute(insert(LoginFlow), rows)


async def put_flow(session: AsyncSession, *, flow: LoginFlow, exists: bool) -> LoginFlow:
    """Insert or replace the chat's flow row; `exists`: whether the transaction has found
    (and, on PostgreSQL, locked) one, so no query needs to look again."""
    if exists:
        return await session.merge(flow)
    session.add(flow)
    return flow


async def delete_flow(session: AsyncSession, *, chat_id: int) -> None:
    """Forget the chat's login in progress."""
    await session.execute(delete(LoginFlow).where(LoginFlow.chat_id == chat_id))


async def flow_with_request(session: AsyncSession, *, request_id: str) -> LoginFlow | None:
    """The flow that owns a Verify request, if we know it."""
    result = await session.execute(select(LoginFlow).where(LoginFlow.request_id == request_id))
    return result.scalars().first()


async def due_flows(session: AsyncSession, *, now: datetime, limit: int) -> Sequence[LoginFlow]:
    """Flows waiting for a code whose request has expired."""
    result = await session.execute(
        select(LoginFlow)
        .where(LoginFlow.step == "code", LoginFlow.expires_at <= now)
        .order_by(LoginFlow.expires_at)
        .limit(limit)
    )
    return result.scalars().all()


async def flows_on_channel_since(
    session: AsyncSession, *, channel: str, sent_before: datetime, limit: int
) -> Sequence[LoginFlow]:
    """Flows waiting for a code sent by `channel` before `sent_before` (oldest first)."""
    result = await session.execute(
        select(LoginFlow)
        .where(
            LoginFlow.step == "code",
            LoginFlow.channel == channel,
            LoginFlow.code_sent_at <= sent_before,
        )
        .order_by(LoginFlow.code_sent_at)
        .limit(limit)
    )
    return result.scalars().all()


async def purge_stale_flows(session: AsyncSession, *, before: datetime) -> int:
    """Drop flows nobody came back to (expired notices, abandoned number prompts)."""
    result = await session.execute(delete(LoginFlow).where(LoginFlow.started_at < before))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# ---- verified logins --------------------------------------------------------------------


async def flow_steps_and_numbers(
    session: AsyncSession, *, chat_ids: Sequence[int]
) -> dict[int, tuple[str, str | None]]:
    """For several chats in one query, the flow's step and the number the chat is logged in
    with (None when the flow must prove it again; chats without a flow are left out), locking
    the flow rows in chat order (PostgreSQL; SQLite's writers already exclude each other)."""
    query = (
        select(LoginFlow.chat_id, LoginFlow.step, VerifiedUser.phone_number)
        .select_from(LoginFlow)
        .outerjoin(
            VerifiedUser,
            (VerifiedUser.chat_id == LoginFlow.chat_id) & LoginFlow.reprove.is_(False),
        )
        .where(LoginFlow.chat_id.in_(chat_ids))
        .order_by(LoginFlow.chat_id)
        .with_for_update(of=LoginFlow)
    )
    return {chat_id: (step, number) for chat_id, step, number in await session.execute(query)}


async def get_login(session: AsyncSession, *, chat_id: int) -> VerifiedUser | None:
    """The chat's current login, if any."""
    return await session.get(VerifiedUser, chat_id, populate_existing=True)


async def login_by_number(session: AsyncSession, *, phone_number: str) -> VerifiedUser | None:
    """The chat currently holding a number, if any."""
    result = await session.execute(
        select(VerifiedUser).where(VerifiedUser.phone_number == phone_number)
    )
    return result.scalars().first()


async def save_login(
    session: AsyncSession,
    *,
    chat_id: int,
    user_id: int,
    phone_number: str,
    username: str | None,
    full_name: str | None,
    verified_at: datetime,
    channel: str | None,
) -> int | None:
    """Record a verified number for a chat. A number belongs to one chat at a time: a chat
    that held it before loses its login. Returns that chat's id, if there was one."""
    # The chat's login and the number's holder, in one query.
    found = await session.execute(
        select(VerifiedUser)
        .where(or_(VerifiedUser.chat_id == chat_id, VerifiedUser.phone_number == phone_number))
        .execution_options(populate_existing=True)
    )
    rows = found.scalars().all()
    holder = next((row for row in rows if row.phone_number == phone_number), None)
    own = next((row for row in rows if row.chat_id == chat_id), None)
    moved_from: int | None = None
    if holder is not None and holder.chat_id != chat_id:
        moved_from = holder.chat_id
        await session.delete(holder)
        await session.flush()
    if own is None:
        own = VerifiedUser(chat_id=chat_id)
        session.add(own)
    own.user_id = user_id
    own.phone_number = phone_number
    own.username = username
    own.full_name = full_name
    own.verified_at = verified_at
    own.channel = channel
    return moved_from


async def delete_login(session: AsyncSession, *, chat_id: int) -> VerifiedUser | None:
    """End a chat's login; returns what it was."""
    login = await get_login(session, chat_id=chat_id)
    if login is not None:
        await session.delete(login)
    return login


async def count_logins(session: AsyncSession) -> int:
    """How many chats are logged in."""
    return int(await session.scalar(select(func.count()).select_from(VerifiedUser)) or 0)


async def page_logins(session: AsyncSession, *, offset: int, limit: int) -> Sequence[VerifiedUser]:
    """One page of logins, newest first."""
    result = await session.execute(
        select(VerifiedUser)
        .order_by(VerifiedUser.verified_at.desc(), VerifiedUser.chat_id)
        .offset(offset)
        .limit(limit)
    )
    return result.scalars().all()


async def stream_logins(session: AsyncSession) -> AsyncIterator[VerifiedUser]:
    """Every login, newest first, fetched in batches rather than all at once."""
    result = await session.stream(
        select(VerifiedUser)
        .order_by(VerifiedUser.verified_at.desc(), VerifiedUser.chat_id)
        .execution_options(yield_per=500)
    )
    async for row in result.scalars():
        yield row


# ---- verification starts (the limits) -----------------------------------------------------


async def lock_admissions(session: AsyncSession) -> None:
    """Admit starts one transaction at a time, across processes, for the rest of the
    transaction: every limit (per chat, per number, and the global one, which every start
    counts against) is then decided on counts no other admission is changing. Batches of one
    process already run one after another, so this only makes processes take turns, each
    for a few statements. SQLite needs nothing: every transaction there already holds the
    database's write lock."""
    if session.bind.dialect.name == "postgresql":
        await session.execute(
            text("SELECT pg_advisory_xact_lock(:namespace, 0)"),
            {"namespace": ADMISSIONS_NAMESPACE},
        )


@dataclass(frozen=True, slots=True)
class StartRow:
    """One counted verification start, as the limits see it."""

    chat_id: int
    number_hash: str
    created_at: datetime


async def recent_starts(
    session: AsyncSession,
    *,
    chat_ids: Sequence[int],
    number_hashes: Sequence[str],
    since: datetime,
) -> list[StartRow]:
    """Starts since a time by any of these chats or to any of these numbers."""
    vs = VerificationStart
    result = await session.execute(
        select(vs.chat_id, vs.number_hash, vs.created_at).where(
            vs.created_at > since, vs.chat_id.in_(chat_ids) | vs.number_hash.in_(number_hashes)
        )
    )
    return [StartRow(chat_id, number_hash, at) for chat_id, number_hash, at in result]


async def chats_with_unanswered_starts(
    session: AsyncSession, *, number_hash: str, since: datetime, other_than: int
) -> set[int]:
    """The chats with a start to a number since a time whose request is not recorded (still
    at Vonage, or its answer lost), leaving out one start (the caller's)."""
    vs = VerificationStart
    result = await session.execute(
        select(vs.chat_id)
        .distinct()
        .where(
            vs.number_hash == number_hash,
            vs.created_at > since,
            vs.request_id.is_(None),
            vs.id != other_than,
        )
    )
    return set(result.scalars())


async def answer_starts(session: AsyncSession, *, requests: Sequence[tuple[int, str]]) -> None:
    """Record the request Vonage answered for each of these starts: (start id, request id)."""
    if not requests:
        return
    table = cast(Table, VerificationStart.__table__)
    await session.execute(
        update(table)
        .where(table.c.id == bindparam("start_id"))
        .values(request_id=bindparam("answered_request_id")),
        [{"start_id": start, "answered_request_id": request} for start, request in requests],
    )


async def add_starts(session: AsyncSession, *, rows: Sequence[tuple[StartRow, int]]) -> list[int]:
    """Count several starts (each with its number's country code); returns their ids, in
    the order given."""
    result = await session.execute(
        insert(VerificationStart).returning(VerificationStart.id, sort_by_parameter_order=True),
        [
            {
                "chat_id": start.chat_id,
                "number_hash": start.number_hash,
                "country_code": country_code,
                "created_at": start.created_at,
            }
            for start, country_code in rows
        ],
    )
    return list(result.scalars())


async def count_starts(session: AsyncSession, *, since: datetime) -> int:
    """How many starts everyone made since a time."""
    query = select(func.count()).where(VerificationStart.created_at > since)
    return int(await session.scalar(query) or 0)


async def oldest_starts(
    session: AsyncSession, *, since: datetime, limit: int
) -> Sequence[datetime]:
    """The times of everyone's oldest starts since a time, oldest first (to say when a slot
    frees)."""
    result = await session.execute(
        select(VerificationStart.created_at)
        .where(VerificationStart.created_at > since)
        .order_by(VerificationStart.created_at)
        .limit(limit)
    )
    return result.scalars().all()


async def remove_start(session: AsyncSession, *, start_id: int) -> None:
    """Uncount a start that Vonage refused (nothing was sent, nothing was paid)."""
    await session.execute(delete(VerificationStart).where(VerificationStart.id == start_id))


async def purge_starts(session: AsyncSession, *, before: datetime) -> None:
    """Drop starts older than any limit looks at."""
    await session.execute(delete(VerificationStart).where(VerificationStart.created_at < before))


# ---- admin alerts -------------------------------------------------------------------------


async def claim_alert(
    session: AsyncSession, *, kind: str, now: datetime, quiet_since: datetime
) -> bool:
    """True if admins have not been told about this kind of trouble since `quiet_since`
    (and records that they are being told now)."""
    alert = await session.get(AdminAlert, kind, with_for_update=True)
    if alert is None:
        try:
            async with session.begin_nested():
                session.add(AdminAlert(kind=kind, sent_at=now))
        except IntegrityError:
            return False  # another process claimed it at the same moment
        return True
    if alert.sent_at > quiet_since:
        return False
    alert.sent_at = now
    return True


# ---- audit trail --------------------------------------------------------------------------


async def add_events(session: AsyncSession, *, rows: Sequence[dict[str, object]]) -> None:
    """Append audit events (in the caller's transaction), several in one statement; each
    row holds `auth_events` columns (see `Audit.row`)."""
    await session.execute(insert(AuthEvent), rows)


async def chats_with_event(
    session: AsyncSession, *, event: str, chat_ids: Sequence[int], since: datetime
) -> set[tuple[int, str | None]]:
    """(chat, detail) of the events of a kind these chats have had after a time."""
    result = await session.execute(
        select(AuthEvent.chat_id, AuthEvent.detail)
        .distinct()
        .where(AuthEvent.chat_id.in_(chat_ids), AuthEvent.at > since, AuthEvent.event == event)
    )
    return {(chat_id, detail) for chat_id, detail in result}


async def recent_events(
    session: AsyncSession,
    *,
    limit: int,
    chat_id: int | None = None,
    number_hash: str | None = None,
) -> Sequence[AuthEvent]:
    """The newest events of a chat or of a number (by its hash), newest first."""
    query = select(AuthEvent).order_by(AuthEvent.at.desc(), AuthEvent.id.desc()).limit(limit)
    if chat_id is not None:
        query = query.where(AuthEvent.chat_id == chat_id)
    if number_hash is not None:
        query = query.where(AuthEvent.number_hash == number_hash)
    return (await session.execute(query)).scalars().all()


async def chats_of_number(session: AsyncSession, *, number_hash: str) -> Sequence[int]:
    """Every chat that ever had events with this number (who used it before)."""
    result = await session.execute(
        select(AuthEvent.chat_id)
        .where(AuthEvent.number_hash == number_hash, AuthEvent.chat_id != 0)
        .group_by(AuthEvent.chat_id)
        .order_by(func.max(AuthEvent.at).desc())
    )
    return result.scalars().all()


async def stream_events(
    session: AsyncSession,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    chat_id: int | None = None,
) -> AsyncIterator[AuthEvent]:
    """Events in time order (from `since`, before `until`), fetched in batches."""
    query = select(AuthEvent).order_by(AuthEvent.at, AuthEvent.id)
    if since is not None:
        query = query.where(AuthEvent.at >= since)
    if until is not None:
        query = query.where(AuthEvent.at < until)
    if chat_id is not None:
        query = query.where(AuthEvent.chat_id == chat_id)
    result = await session.stream(query.execution_options(yield_per=1000))
    async for row in result.scalars():
        yield row


def event_counts_query(dialect: str, *, since: datetime) -> Select[Any]:
    """The statistics' query: (day, event, country code, region, detail, count) for every
    event from `since`, a UTC midnight."""
    if dialect == "postgresql":
        day = func.to_char(func.timezone("UTC", AuthEvent.at), "YYYY-MM-DD", type_=String)
        window = AuthEvent.at >= since
    else:
        # SQLite keeps UTC timestamps as ISO text: the date is its first ten characters.
        # Filtering on that same expression lets index ix_auth_events_day_counts (migration
        # 0011) answer the whole query in its order, without reading a row or sorting.
        day = func.substr(AuthEvent.at, 1, 10, type_=String)
        window = day >= since.astimezone(UTC).date().isoformat()
    grouped = (day, AuthEvent.event, AuthEvent.country_code, AuthEvent.region, AuthEvent.detail)
    return select(*grouped, func.count()).where(window).group_by(*grouped)


async def event_counts(
    session: AsyncSession, *, since: datetime
) -> Sequence[tuple[str, str, int | None, str | None, str | None, int]]:
    """(day, event, country code, region, detail, count) for every event from `since`, a
    UTC midnight."""
    query = event_counts_query(session.bind.dialect.name, since=since)
    rows = (await session.execute(query)).all()
    return [(str(d), str(e), c, r, t, int(n)) for d, e, c, r, t, n in rows]


async def purge_events(session: AsyncSession, *, before: datetime, limit: int) -> int:
    """Delete up to `limit` audit events older than a time (the oldest first are not
    guaranteed); returns how many."""
    oldest = select(AuthEvent.id).where(AuthEvent.at < before).limit(limit)
    result = await session.execute(delete(AuthEvent).where(AuthEvent.id.in_(oldest)))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def purge_processed_updates(session: AsyncSession, *, before: datetime, limit: int) -> int:
    """Delete up to `limit` records of handled updates older than a time; returns how many."""
    oldest = select(ProcessedUpdate.update_id).where(ProcessedUpdate.at < before).limit(limit)
    result = await session.execute(
        delete(ProcessedUpdate).where(ProcessedUpdate.update_id.in_(oldest))
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def anonymise_chat_events(session: AsyncSession, *, chat_id: int) -> None:
    """Detach a forgotten chat from its events: only hashed numbers remain."""
    await session.execute(
        update(AuthEvent)
        .where(AuthEvent.chat_id == chat_id)
        .values(chat_id=0, user_id=None, number_masked=None, request_id=None)
    )


# ---- notices --------------------------------------------------------------------------------


async def put_notice(
    session: AsyncSession, *, chat_id: int, kind: str, phone_number: str | None, at: datetime
) -> None:
    """Leave a chat a notice for its next message (replacing an older one)."""
    await session.merge(ChatNotice(chat_id=chat_id, kind=kind, phone_number=phone_number, at=at))


async def take_notice(session: AsyncSession, *, chat_id: int) -> ChatNotice | None:
    """The chat's pending notice, removed as it is read."""
    notice = await session.get(ChatNotice, chat_id, populate_existing=True)
    if notice is not None:
        await session.delete(notice)
    return notice


async def purge_notices(session: AsyncSession, *, before: datetime) -> None:
    """Drop notices nobody came back to read."""
    await session.execute(delete(ChatNotice).where(ChatNotice.at < before))


async def chat_languages(session: AsyncSession, *, chat_ids: Sequence[int]) -> dict[int, str]:
    """The languages these chats chose with /language (chats that chose none are absent)."""
    result = await session.execute(
        select(ChatLanguage.chat_id, ChatLanguage.language).where(
            ChatLanguage.chat_id.in_(chat_ids)
        )
    )
    return {chat_id: language for chat_id, language in result}


async def put_chat_language(
    session: AsyncSession, *, chat_id: int, language: str, now: datetime
) -> None:
    """Store the language a chat chose (replacing an earlier choice)."""
    row = await session.get(ChatLanguage, chat_id, with_for_update=True)
    if row is None:
        session.add(ChatLanguage(chat_id=chat_id, language=language, chosen_at=now))
    else:
        row.language = language
        row.chosen_at = now


async def delete_chat_language(session: AsyncSession, *, chat_id: int) -> None:
    """Forget the language a chat chose."""
    await session.execute(delete(ChatLanguage).where(ChatLanguage.chat_id == chat_id))


async def login_by_username(session: AsyncSession, *, username: str) -> VerifiedUser | None:
    """The login of a Telegram @username (case-insensitive), if any."""
    result = await session.execute(
        select(VerifiedUser).where(func.lower(VerifiedUser.username) == username.lower())
    )
    return result.scalars().first()
