"""aws-xray-sdk's UDP emitter, sending the plugin's datagrams to the resolved daemon."""

from __future__ import annotations

import logging
import socket
import time
from typing import Any

from aws_xray_sdk.core.emitters.udp_emitter import UDPEmitter

from .segments import Documents
from .udp import sender

log = logging.getLogger("rhythm_xray")
RETRIES = 3  # a full socket buffer is retried this often, a millisecond apart


class DaemonEmitter(UDPEmitter):
    """Sends each document as :meth:`Documents.datagrams` cuts it.

    The SDK's own address parsing lets ``AWS_XRAY_DAEMON_ADDRESS`` override any address it is
    given, so the address comes resolved from the plugin's settings instead (worker
    configuration first). A datagram the socket refuses is counted in :attr:`failed` and
    logged once, not with a traceback each time as the SDK's ``send_entity`` does.
    """

    def __init__(self, address: tuple[str, int], documents: Documents) -> None:
        self._documents = documents
        self.sent = 0
        self.failed = 0
        super().__init__(f"{address[0]}:{address[1]}")  # makes the non-blocking socket
        self._ip, self._port = address
        self._udp: socket.socket = self._socket  # type: ignore[attr-defined]  # (no stub)
        # connected: the address is resolved once, and a send needs no address (udp.py)
        self._udp.connect(address)
        self._send_datagram = sender(self._udp)

    def set_daemon_address(self, address: Any) -> None:
        """Kept as resolved (see the class docstring)."""

    def send_document(self, document: dict[str, Any]) -> None:
        for datagram in self._documents.datagrams(document):
            self._send(datagram)

    def _send(self, datagram: bytes) -> None:
        for attempt in range(RETRIES + 1):
            try:
                self._send_datagram(datagram)
                self.sent += 1
                return
            except BlockingIOError:
                if attempt < RETRIES:
                    time.sleep(0.001)
            except ConnectionRefusedError:
                # a connected UDP socket reports that an earlier datagram found no daemon
                # (ICMP port unreachable); this one was not sent
                self._failed(ConnectionRefusedError("nothing listens on the daemon port"))
                return
            except OSError as exc:
                self._failed(exc)
                return
        self._failed(BlockingIOError("the socket's send buffer stayed full"))

    def _failed(self, exc: OSError) -> None:
        self.failed += 1
        if self.failed == 1:
            log.warning(
                "rhythm-xray: segments could not be sent to the X-Ray daemon at %s:%s (%s); "
                "counted, logged once",
                self._ip,
                self._port,
                exc,
            )

    def close(self) -> None:
        self._udp.close()
