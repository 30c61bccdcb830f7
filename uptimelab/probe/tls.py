"""TLS on the socket itself: the lean client's handshake and records, done by OpenSSL on the file
descriptor, with trio only waiting for the socket to be ready.

trio's ``SSLStream`` runs OpenSSL over a pair of MemoryBIOs and moves every TLS record between
them and the socket in Python (a receive, a ``write`` into the BIO, a retry of the SSL call, a
``read`` out of the other BIO, a send), several round trips through its locks and checkpoints
per handshake flight. A ping does one handshake, one request and one short response, so that
pumping was about half of what an HTTPS ping cost. Here the socket is handed to
``SSLContext.wrap_socket`` in non-blocking mode: OpenSSL reads and writes the socket directly,
and an ``SSLWantReadError`` / ``SSLWantWriteError`` becomes ``trio.lowlevel.wait_readable`` /
``wait_writable`` (the pattern of any non-blocking TLS client, asyncio's before MemoryBIOs).

Errors are those of ``SSLSocket``: ``ssl.SSLError`` (a certificate or an alert: ``tls``), OSError
(reset: ``network``). A close without ``close_notify`` after the handshake ends the stream, as
``https_compatible=True`` does for ``SSLStream`` (``suppress_ragged_eofs``); during the handshake
it is an ``ssl.SSLEOFError`` (``tls``), as with ``SSLStream``.
"""

from __future__ import annotations

import socket
import ssl

import trio
from trio.lowlevel import wait_readable, wait_writable


class TLSSocketStream(trio.abc.Stream):
    """A client TLS connection on a connected socket; made by :func:`open_tls`."""

    __slots__ = ("ssl_socket",)

    def __init__(self, ssl_socket: ssl.SSLSocket) -> None:
        self.ssl_socket = ssl_socket

    async def do_handshake(self) -> None:
        tls = self.ssl_socket
        while True:
            try:
                tls.do_handshake()
            except ssl.SSLWantReadError:
                await wait_readable(tls)
            except ssl.SSLWantWriteError:
                await wait_writable(tls)
            else:
                return

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        tls = self.ssl_socket
        view = memoryview(data)
        while view:
            try:
                sent = tls.send(view)
            except ssl.SSLWantWriteError:
                await wait_writable(tls)
            except ssl.SSLWantReadError:
                await wait_readable(tls)
            else:
                view = view[sent:]

    async def wait_send_all_might_not_block(self) -> None:
        await wait_writable(self.ssl_socket)

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        tls = self.ssl_socket
        while True:
            try:
                return tls.recv(max_bytes or 65536)
            except ssl.SSLWantReadError:
                await wait_readable(tls)
            except ssl.SSLWantWriteError:
                await wait_writable(tls)

    async def aclose(self) -> None:
        # No close_notify: the response is read (or abandoned), and the server closes anyway.
        self.ssl_socket.close()
        await trio.lowlevel.checkpoint()


async def open_tls(
    stream: trio.SocketStream, context: ssl.SSLContext, server_hostname: str
) -> TLSSocketStream:
    """Take over ``stream``'s socket and complete a TLS handshake on it (verified as ``context``
    says, for ``server_hostname``). The socket is closed if the handshake fails or is cancelled.
    Raises ssl.SSLError, OSError."""
    sock = stream.socket
    raw = socket.socket(sock.family, sock.type, sock.proto, fileno=sock.detach())
    try:
        raw.setblocking(False)
        tls = TLSSocketStream(
            context.wrap_socket(raw, server_hostname=server_hostname, do_handshake_on_connect=False)
        )
    except BaseException:  # also cancelled: the socket is ours to close either way
        raw.close()
        raise
    try:
        await tls.do_handshake()
    except BaseException:
        tls.ssl_socket.close()
        raise
    return tls
