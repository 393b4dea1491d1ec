"""The Verify client's transport: the real SDK over HTTPS to the stand-in Verify server, with
one TLS context per CA bundle instead of one per connection, and every call sent once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path

import pytest

from bot.demo.sandbox import FakeVerify, PathKind, SandboxCA
from bot.demo.sandbox.verify import DropMode
from bot.login.phone import PhoneNumber, parse_e164
from bot.login.verification import FailureKind, VerifyClient, VerifyConfig, VerifyFailure
from tests.helpers import VONAGE_KEY, VONAGE_SECRET


def to(digits: str) -> PhoneNumber:
    """A number as the client takes it, from E.164 digits."""
    return parse_e164("+" + digits)


def client(verify: FakeVerify, *, workers: int = 8) -> VerifyClient:
    return VerifyClient.from_credentials(
        config=VerifyConfig(brand="Test", code_length=6, channel_timeout=60, workflow=("sms",)),
        api_host=verify.host,
        timeout_seconds=5,
        max_workers=workers,
        api_key=VONAGE_KEY,
        api_secret=VONAGE_SECRET,
    )


async def test_new_connections_reuse_the_trust_loaded_once(
    verify: FakeVerify, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(verify.ca.ca_pem)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    vonage = client(verify)
    try:
        await vonage.start(to("447400100000"))
        # The file now names a CA that did not sign the server's certificate: a connection
        # that read it again would fail. The new connections below trust what was loaded.
        with SandboxCA() as other:
            bundle.write_bytes(other.ca_pem)
        verify.latency = 0.2  # keep the calls overlapping: each needs its own connection
        ids = await asyncio.gather(*(vonage.start(to(f"44740010000{i}")) for i in range(1, 6)))
    finally:
        await asyncio.to_thread(vonage.close)
    assert len(set(ids)) == 5
    assert len(verify.calls("start")) == 6


async def test_a_server_the_bundle_does_not_trust_is_refused(
    verify: FakeVerify, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SandboxCA() as other:
        bundle = tmp_path / "other.pem"
        bundle.write_bytes(other.ca_pem)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    vonage = client(verify)
    try:
        with pytest.raises(VerifyFailure) as failure:
            await vonage.start(to("447400100000"))
    finally:
        await asyncio.to_thread(vonage.close)
    assert failure.value.kind is FailureKind.UNAVAILABLE
    assert verify.calls("start") == []  # the TLS handshake failed: no request was sent


async def test_the_environment_is_read_once_when_the_client_is_made(
    verify: FakeVerify, no_proxies: pytest.MonkeyPatch
) -> None:
    vonage = client(verify)
    try:
        # Changed later, neither the CA bundle nor a proxy reaches the calls.
        no_proxies.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/ca.pem")
        no_proxies.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
        assert await vonage.start(to("447400100000"))
        assert await vonage.start(to("447400100001"))
    finally:
        await asyncio.to_thread(vonage.close)
    assert len(verify.calls("start")) == 2


async def test_a_proxy_from_the_environment_carries_the_calls(
    verify: FakeVerify, no_proxies: pytest.MonkeyPatch
) -> None:
    tunnels: list[bytes] = []
    handlers: list[asyncio.Task[object]] = []

    async def tunnel(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """An HTTPS proxy: CONNECT host:port, then bytes both ways."""
        task = asyncio.current_task()
        assert task is not None
        handlers.append(task)
        writers = [writer]
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            tunnels.append(head.split(b"\r\n")[0])
            host, _, port = head.split()[1].decode().rpartition(":")
            up_reader, up_writer = await asyncio.open_connection(host, int(port))
            writers.append(up_writer)
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        finally:
            for each in writers:
                each.close()
                with contextlib.suppress(OSError):
                    await each.wait_closed()

    async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()

    proxy = await asyncio.start_server(tunnel, "127.0.0.1", 0)
    port = proxy.sockets[0].getsockname()[1]
    no_proxies.setenv("HTTPS_PROXY", f"http://127.0.0.1:{port}")
    vonage = client(verify)
    try:
        assert await vonage.start(to("447400100000"))
    finally:
        await asyncio.to_thread(vonage.close)
        proxy.close()
        for handler in handlers:
            handler.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await proxy.wait_closed()
    assert [line.split()[:2] for line in tunnels] == [[b"CONNECT", verify.host.encode()]]


async def test_start_workers_runs_every_worker_thread(verify: FakeVerify) -> None:
    vonage = client(verify, workers=16)
    try:
        await asyncio.to_thread(vonage.start_workers)
        workers = vonage._executor._threads
        assert len(workers) == 16
        assert all(thread.is_alive() for thread in workers)
        # and they serve calls
        assert await vonage.start(to("447400100000"))
    finally:
        await asyncio.to_thread(vonage.close)


@pytest.mark.parametrize("mode", ["close", "truncate"])
@pytest.mark.parametrize("kind", ["start", "check", "cancel", "next"])
async def test_a_dropped_connection_is_one_attempt_and_unavailable(
    verify: FakeVerify, kind: PathKind, mode: DropMode
) -> None:
    vonage = client(verify)
    try:
        request_id = await vonage.start(to("447400100000"))
        verify.drop_all(kind, mode=mode, processed=True)
        calls: dict[PathKind, Callable[[], Awaitable[object]]] = {
            "start": partial(vonage.start, to("447400100001")),
            "check": partial(vonage.check, request_id, verify.last_code()),
            "cancel": partial(vonage.cancel, request_id),
            "next": partial(vonage.next_channel, request_id),
        }
        with pytest.raises(VerifyFailure) as failure:
            await calls[kind]()
    finally:
        await asyncio.to_thread(vonage.close)
    assert failure.value.kind is FailureKind.UNAVAILABLE
    assert failure.value.status is None
    sent = verify.calls(kind)
    assert len(sent) == (2 if kind == "start" else 1)  # the first start was the setup
    assert sent[-1].status is None  # dropped: Vonage acted on it, the answer was lost
