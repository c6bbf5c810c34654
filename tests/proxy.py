"""A TCP proxy for tests that holds back answers, as a slow network or a congested link does: what the
client sends goes on at once (so the server reads it in time), what the server answers arrives late."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections import deque


class AnswerDelayingProxy:
    """Forwards 127.0.0.1:<port> to 127.0.0.1:<target_port>. The answer to a request whose first bytes are
    `matching` (b"" matches every request) reaches the client `delay_s` after the server sent it; other
    answers pass at once. `delay_s` may change while it runs (0: pass everything)."""

    def __init__(self, target_port: int, *, delay_s: float, matching: bytes = b"") -> None:
        self.target_port = target_port
        self.delay_s = delay_s
        self.matching = matching
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> AnswerDelayingProxy:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self) -> None:
        self._closed.set()
        for sock in [self._listener, *self._sockets]:
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            self._sockets += [client, server]
            delays: deque[float] = deque()  # one per request sent, in order: HTTP/1.1 answers come in order
            threading.Thread(target=self._requests, args=(client, server, delays), daemon=True).start()
            threading.Thread(target=self._answers, args=(server, client, delays), daemon=True).start()

    def _requests(self, client: socket.socket, server: socket.socket, delays: deque[float]) -> None:
        try:
            while chunk := client.recv(65536):
                if chunk[:8].split(b" ")[0] in (b"GET", b"POST", b"PUT", b"DELETE", b"HEAD"):
                    delays.append(self.delay_s if chunk.startswith(self.matching) else 0.0)
                server.sendall(chunk)
        except OSError:
            pass
        finally:
            _close_both(client, server)

    def _answers(self, server: socket.socket, client: socket.socket, delays: deque[float]) -> None:
        try:
            while chunk := server.recv(65536):
                if chunk.startswith(b"HTTP/"):
                    delay = delays.popleft() if delays else 0.0
                    if delay and self.delay_s:
                        time.sleep(min(delay, self.delay_s))
                client.sendall(chunk)
        except OSError:
            pass
        finally:
            _close_both(client, server)


def _close_both(*sockets: socket.socket) -> None:
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            sock.close()
