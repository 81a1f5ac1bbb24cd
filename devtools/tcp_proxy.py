"""A TCP proxy on asyncio that a test can cut, slow down and count requests through.

The scale and fault suites put one between the apps and PostgreSQL (to take the database
away) and one between Rasa and the action server (to hold an action call). For a proxy in
a thread of its own, in front of a session-scoped server, see devtools/gate.py.
"""

from __future__ import annotations

import asyncio


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target; `cut()` drops every connection and refuses new
    ones until `restore()`. A client that closes its side closes the upstream one too, so a
    killed app's PostgreSQL session (and its advisory locks) ends at once."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self.down = False
        self.cuts = 0
        self.delay = 0.0  # seconds each chunk from the client waits before it is forwarded
        self.posts = 0  # HTTP POST requests seen from clients (the action calls, for Rasa's)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, slow: bool = False
    ) -> None:
        try:
            while data := await reader.read(65536):
                if slow:
                    self.posts += data.count(b"POST /")
                    if self.delay:
                        await asyncio.sleep(self.delay)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.down:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        try:
            await asyncio.gather(
                self._pipe(reader, up_writer, slow=True), self._pipe(up_reader, writer)
            )
        finally:
            self._writers -= {writer, up_writer}

    def cut(self) -> None:
        self.down = True
        self.cuts += 1
        for writer in list(self._writers):
            writer.transport.abort()

    def restore(self) -> None:
        self.down = False

    async def stop(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
