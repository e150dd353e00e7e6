"""Accepting remote clients so that no client can hold up the others (torch-free).

``multiprocessing.connection.Listener.accept`` accepts a connection and authenticates it
in one blocking call: a client that connects and sends nothing stops the accept loop, and
nobody else is served. Here the loop only accepts; each connection's handshake runs in
its own thread and is cut after ``timeout`` seconds. The handshake is the one ``Listener``
performs (``deliver_challenge`` then ``answer_challenge``: an HMAC challenge both ways
with the token as key), so clients still connect with ``multiprocessing.connection.Client``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection, answer_challenge, deliver_challenge

#: Seconds a client has, from its connection, to complete the handshake (``--handshake-timeout``).
HANDSHAKE_TIMEOUT = 10.0
#: Handshakes in progress at once; connections beyond are closed at once (and reported).
MAX_PENDING = 128
#: Connections the kernel queues while the accept loop is busy.
BACKLOG = 128


def listen(address: tuple[str, int]) -> socket.socket:
    """A TCP socket listening at ``address`` (``SO_REUSEADDR``, as ``Listener`` sets it)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
    except BaseException:
        sock.close()
        raise
    return sock


def accept_forever(
    sock: socket.socket,
    token: bytes,
    on_client: Callable[[Connection], None],
    *,
    timeout: float = HANDSHAKE_TIMEOUT,
    max_pending: int = MAX_PENDING,
    report: Callable[[str], None] = print,
) -> None:
    """Accept connections on ``sock`` until interrupted; call ``on_client`` (in the
    connection's own thread) with each one that completes the handshake in time.

    Refused connections (wrong token, bytes that are no handshake, silence past ``timeout``)
    are closed and reported with one line each.
    """
    pending = threading.BoundedSemaphore(max_pending)
    while True:
        try:
            client, peer = sock.accept()
        except OSError as exc:  # e.g. out of file descriptors: report, let connections end
            report(f"cannot accept a connection: {exc}")
            time.sleep(0.1)
            continue
        where = f"{peer[0]}:{peer[1]}"
        if not pending.acquire(blocking=False):
            client.close()
            report(f"refused a connection from {where}: {max_pending} handshakes already in progress")
            continue
        threading.Thread(
            target=_admit_then_serve,
            args=(client, where, token, timeout, on_client, report, pending),
            name=f"runner-dataserver-client-{where}",
            daemon=True,
        ).start()


def _admit_then_serve(
    client: socket.socket,
    where: str,
    token: bytes,
    timeout: float,
    on_client: Callable[[Connection], None],
    report: Callable[[str], None],
    pending: threading.BoundedSemaphore,
) -> None:
    try:
        conn = admit(client, token, timeout)
    except Exception as exc:
        report(f"refused a connection from {where}: {type(exc).__name__}: {exc}")
        return
    finally:
        pending.release()
    on_client(conn)


def admit(client: socket.socket, token: bytes, timeout: float) -> Connection:
    """Authenticate the accepted socket ``client`` within ``timeout`` seconds.

    Returns its ``Connection``; raises ``TimeoutError`` (no handshake in time),
    ``AuthenticationError`` (wrong token) or ``OSError``/``EOFError`` (anything else).
    ``client`` itself is closed in every case: the connection holds its own descriptor.
    """
    client.setblocking(True)
    conn = Connection(os.dup(client.fileno()))
    lock = threading.Lock()
    finished = expired = False

    def expire() -> None:
        # shutdown() wakes the handshake's blocked read (it sees the end of the stream).
        nonlocal expired
        with lock:
            if finished:
                return
            expired = True
            with contextlib.suppress(OSError):  # the client hung up already
                client.shutdown(socket.SHUT_RDWR)

    timer = threading.Timer(timeout, expire)
    timer.daemon = True
    timer.start()
    try:
        try:
            deliver_challenge(conn, token)
            answer_challenge(conn, token)
        finally:
            timer.cancel()
            with lock:
                finished = True
        if expired:
            raise EOFError
    except BaseException:
        conn.close()
        if expired:
            raise TimeoutError(f"no handshake within {timeout:g} s") from None
        raise
    finally:
        client.close()
    return conn
