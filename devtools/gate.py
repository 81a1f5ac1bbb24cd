"""A TCP forwarder that tests can close and reopen, to cut a real server off mid-run.

It can also hold each request for `delay` seconds (a slow server). It runs in its own
thread (not in a test's event loop), so a session-scoped server can
sit behind it. While closed, it accepts and at once drops connections, and it drops the
connections it was forwarding, as a crashed or unreachable peer would.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
import time


class Gate:
    def __init__(self, target_port: int, host: str = "127.0.0.1") -> None:
        self.target = (host, target_port)
        self._listener = socket.create_server((host, 0))
        self.port: int = self._listener.getsockname()[1]
        self._open = threading.Event()
        self._open.set()
        self._lock = threading.Lock()
        self._links: set[socket.socket] = set()
        self._stopped = False
        self.delay = 0.0  # seconds to hold each request chunk (a slow peer)
        threading.Thread(target=self._accept, name=f"gate-{self.port}", daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://{self.target[0]}:{self.port}"

    def open(self) -> None:
        self._open.set()

    def close(self) -> None:
        """Refuse new connections and break the ones in flight."""
        self._open.clear()
        with self._lock:
            links, self._links = self._links, set()
        for sock in links:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def stop(self) -> None:
        self._stopped = True
        self.close()
        self._listener.close()

    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._open.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._links.update((client, upstream))
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        with selectors.DefaultSelector() as sel:
            sel.register(a, selectors.EVENT_READ)
            sel.register(b, selectors.EVENT_READ)
            try:
                while True:
                    for key, _ in sel.select(timeout=1):
                        data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                        if not data:
                            return
                        if key.fileobj is a and self.delay:
                            time.sleep(self.delay)  # this link's own thread: a slow request
                        peers[key.fileobj].sendall(data)  # type: ignore[index]
            except OSError:
                return
            finally:
                with self._lock:
                    self._links.discard(a)
                    self._links.discard(b)
                for sock in (a, b):
                    sock.close()
