"""Sending a datagram without letting go of the GIL.

``socket.send`` releases the GIL around the system call, like every blocking call in CPython.
On a worker whose event loop is busy that is costly out of all proportion: the loop takes the
GIL the moment it is free, and the sending thread waits up to the interpreter's switch
interval (5 ms) to get it back, once per datagram, so at a few hundred datagrams a second the
send thread falls behind. A non-blocking ``send`` on a UDP socket takes a few microseconds and
cannot block, so the plugin calls libc's ``send`` through ``ctypes.PyDLL``, whose calls keep
the GIL. Where that is not available, :func:`sender` falls back to ``socket.send``.
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket
from collections.abc import Callable

MSG_DONTWAIT = getattr(socket, "MSG_DONTWAIT", 0)


def _libc_send() -> Callable[[int, bytes, int, int], int] | None:
    try:
        libc = ctypes.PyDLL(None, use_errno=True)  # PyDLL: calls keep the GIL
        send = libc.send
    except (OSError, AttributeError):
        return None
    send.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int)
    send.restype = ctypes.c_ssize_t
    return send


def sender(udp: socket.socket) -> Callable[[bytes], None]:
    """``send(datagram)`` on the connected, non-blocking ``udp`` socket; raises ``OSError``
    (``BlockingIOError`` when the send buffer is full) as ``socket.send`` does."""
    send = _libc_send() if MSG_DONTWAIT else None
    if send is None:
        return udp.send  # type: ignore[return-value]
    fd = udp.fileno()

    def send_holding_gil(datagram: bytes) -> None:
        if send(fd, datagram, len(datagram), MSG_DONTWAIT) < 0:
            number = ctypes.get_errno()
            if number in (errno.EAGAIN, errno.EWOULDBLOCK):
                raise BlockingIOError(number, os.strerror(number))
            raise OSError(number, os.strerror(number))

    return send_holding_gil
