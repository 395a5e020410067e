"""The fault proxy's I/O: a relay between a controller and its API (the operator and the
apiserver, over TCP on 127.0.0.1; or the twin's ``--watch`` loop and the Docker engine, unix
socket to unix socket), and the control socket through which ``reconcile-lab fault
cut|stall|heal`` switch it.

Bytes are forwarded untouched (TLS is end to end: the proxy holds no key and reads nothing).
What to do with a connection is the switchboard's decision (``switchboard.py``); here it is
done: a reset is an RST (``SO_LINGER`` 0, then abort), a stall stops reading, so the sender's
TCP window fills and nothing piles up in memory.

Only loopback: the listener binds 127.0.0.1 and the upstream must be a loopback address.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import signal
import socket
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reconcile_lab.faults import kubeconfigs, switchboard

LISTEN = "127.0.0.1"
_CHUNK = 64 * 1024


class ProxyError(RuntimeError):
    pass


# Where the bytes go: an apiserver on a loopback TCP port, or an engine's unix socket.
Target = kubeconfigs.Upstream | Path


async def _open(target: Target) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    if isinstance(target, Path):
        return await asyncio.open_unix_connection(str(target))
    return await asyncio.open_connection(*target)


def _reset(writer: asyncio.StreamWriter | None) -> None:
    """Close with an RST, as a host that forgot the connection would answer."""
    if writer is None or writer.transport.is_closing():
        return
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


# Where clients connect: a TCP port on 127.0.0.1 (0: a free one), or a unix socket (mode 0600:
# an engine reached through it must not become reachable by every local user).
Listen = int | Path


class Proxy:
    def __init__(self, upstream: Target, *, control: Path, listen: Listen = 0) -> None:
        self.upstream = upstream
        self.control = control
        self.listen = listen
        self.board = switchboard.Switchboard()
        self._ids = itertools.count(1)
        self._writers: dict[int, list[asyncio.StreamWriter]] = {}
        self._gates: dict[int, asyncio.Event] = {}
        self._servers: list[asyncio.AbstractServer] = []

    async def start(self) -> Listen:
        """Listen; returns the TCP port, or the socket's path."""
        self.control.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(self.listen, Path):
            self.listen.unlink(missing_ok=True)
            server = await asyncio.start_unix_server(self._client, path=str(self.listen))
            self.listen.chmod(0o600)
        else:
            server = await asyncio.start_server(self._client, LISTEN, self.listen)
            self.listen = int(server.sockets[0].getsockname()[1])
        self.control.unlink(missing_ok=True)
        self._servers = [server, await asyncio.start_unix_server(self._command,
                                                                 path=str(self.control))]
        return self.listen

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        for conn in list(self._writers):
            self._drop(conn)
        self.control.unlink(missing_ok=True)
        if isinstance(self.listen, Path):
            self.listen.unlink(missing_ok=True)

    def switch(self, mode: switchboard.Mode) -> dict[str, Any]:
        change = self.board.switch(mode, at=time.time())
        for conn in change.reset:
            self._drop(conn)
        for conn in self.board.stalled:
            if conn in self._gates:
                self._gates[conn].clear()
        for conn in change.released:
            if conn in self._gates:
                self._gates[conn].set()
        return self.board.status()

    def _drop(self, conn: int) -> None:
        for writer in self._writers.pop(conn, []):
            _reset(writer)
        self.board.closed(conn)
        gate = self._gates.pop(conn, None)
        if gate is not None:
            gate.set()  # wakes a stalled pump, which then sees the connection gone

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = next(self._ids)
        if not self.board.admit(conn):
            _reset(writer)
            return
        self._writers[conn] = [writer]
        gate = self._gates[conn] = asyncio.Event()
        gate.set()
        try:
            up_reader, up_writer = await _open(self.upstream)
        except OSError:
            self._drop(conn)
            return
        if conn not in self._writers:  # cut while connecting
            _reset(up_writer)
            return
        self._writers[conn].append(up_writer)
        try:
            await asyncio.gather(self._pump(conn, reader, up_writer),
                                 self._pump(conn, up_reader, writer))
        finally:
            if conn in self._writers:
                for w in self._writers.pop(conn):
                    w.close()
                self._gates.pop(conn, None)
                self.board.closed(conn)

    async def _pump(self, conn: int, reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(_CHUNK):
                gate = self._gates.get(conn)
                if gate is None:
                    return
                await gate.wait()  # a stalled connection reads no further
                if conn not in self._writers:
                    return
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof() and not writer.transport.is_closing():
                writer.write_eof()
        except OSError:  # reset by either side: the other side goes too
            self._drop(conn)

    async def _command(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = (await reader.readline()).decode(errors="replace")
            try:
                mode = switchboard.parse_request(line)
                reply: dict[str, Any] = (self.board.status() if mode is None
                                         else self.switch(mode))
            except switchboard.ControlError as e:
                reply = {"error": str(e)}
            writer.write(switchboard.format_reply(reply).encode())
            await writer.drain()
        finally:
            writer.close()


def send(control: Path, word: str, *, timeout: float = 5) -> dict[str, Any]:
    """One control request to the running proxy; its reply (the status after it)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(control))
            s.sendall(word.encode() + b"\n")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
    except (FileNotFoundError, ConnectionRefusedError) as e:
        raise ProxyError(f"no fault proxy answers at {control} ({e.strerror}); fix: start one "
                         "with `reconcile-lab fault proxy` (same RECONCILE_LAB_STATE)") from None
    reply: dict[str, Any] = json.loads(data)
    if "error" in reply:
        raise ProxyError(str(reply["error"]))
    return reply


def run(upstream: Target, *, control: Path, listen: Listen,
        ready: Callable[[Listen], None]) -> None:
    """Serve until SIGINT or SIGTERM; ``ready(where)`` once it listens."""

    async def main() -> None:
        proxy = Proxy(upstream, control=control, listen=listen)
        ready(await proxy.start())
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await proxy.stop()

    asyncio.run(main())
