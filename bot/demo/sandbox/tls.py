"""A throwaway certificate authority for the HTTPS stand-ins.

:class:`SandboxCA` makes a fresh CA with ``trustme``, issues a
server certificate valid for ``127.0.0.1`` and ``localhost`` and writes the CA certificate to a
PEM file in a private temporary directory. Point HTTPS clients at that file (for ``requests``,
set ``REQUESTS_CA_BUNDLE`` to :attr:`SandboxCA.ca_path`) and give the server
:meth:`SandboxCA.server_ssl_context`.

Nothing here touches the system trust store; :meth:`SandboxCA.cleanup` removes the directory.
"""

from __future__ import annotations

import shutil
import ssl
import tempfile
import weakref
from pathlib import Path
from types import TracebackType
from typing import Self

import trustme

__all__ = ["SandboxCA"]

DEFAULT_IDENTITIES: tuple[str, ...] = ("127.0.0.1", "localhost")


class SandboxCA:
    """A throwaway CA plus one server certificate, with the CA PEM on disk.

    Args:
        identities: host names / IP addresses the server certificate is valid for.
        directory: where to create the private temporary directory (default: the system's).

    The object is also a (sync) context manager that calls :meth:`cleanup` on exit. If it is
    never cleaned up explicitly, the directory is removed when the object is garbage
    collected or the interpreter exits.
    """

    def __init__(
        self,
        identities: tuple[str, ...] = DEFAULT_IDENTITIES,
        *,
        directory: str | Path | None = None,
    ) -> None:
        if not identities:
            raise ValueError("at least one identity is needed for the server certificate")
        self.identities: tuple[str, ...] = tuple(identities)
        self._ca = trustme.CA(organization_name="phone-login-bot sandbox")
        self._leaf = self._ca.issue_cert(*self.identities)
        self._dir = Path(tempfile.mkdtemp(prefix="bot-sandbox-ca-", dir=directory))
        self._finalizer = weakref.finalize(self, shutil.rmtree, str(self._dir), True)
        self._ca_path = self._dir / "ca.pem"
        self._ca.cert_pem.write_to_path(str(self._ca_path))
        self._cert_path = self._dir / "server.pem"
        self._leaf.private_key_and_cert_chain_pem.write_to_path(str(self._cert_path))
        self._cert_path.chmod(0o600)

    @property
    def ca_path(self) -> Path:
        """Path of the CA certificate PEM file (for ``REQUESTS_CA_BUNDLE`` / ``SSL_CERT_FILE``)."""
        self._check_alive()
        return self._ca_path

    @property
    def ca_pem(self) -> bytes:
        """The CA certificate, PEM encoded."""
        return self._ca.cert_pem.bytes()

    @property
    def closed(self) -> bool:
        """True once :meth:`cleanup` ran (the files are gone)."""
        return not self._finalizer.alive

    def server_ssl_context(self) -> ssl.SSLContext:
        """A new server-side context presenting the sandbox certificate (TLS 1.2+)."""
        self._check_alive()
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(str(self._cert_path))
        return ctx

    def client_ssl_context(self) -> ssl.SSLContext:
        """A new client-side context that trusts (only) the sandbox CA."""
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        ctx.load_verify_locations(cadata=self.ca_pem.decode("ascii"))
        return ctx

    def cleanup(self) -> None:
        """Delete the temporary directory holding the PEM files. Idempotent."""
        self._finalizer()

    def _check_alive(self) -> None:
        if self.closed:
            raise RuntimeError("SandboxCA was cleaned up; its files no longer exist")

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()

    def __repr__(self) -> str:
        state = "cleaned up" if self.closed else str(self._ca_path)
        return f"<SandboxCA {', '.join(self.identities)} ({state})>"
