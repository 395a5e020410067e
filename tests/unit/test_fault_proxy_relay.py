"""The fault proxy's relay on unix sockets (as in front of the Docker engine), in-process: bytes
pass both ways, the socket is the caller's alone, a cut resets and refuses, a heal forwards."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

from reconcile_lab.faults import proxy, switchboard


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(1024):
        writer.write(data)
        await writer.drain()
    writer.close()


async def _round_trip(path: Path, payload: bytes) -> bytes:
    reader, writer = await asyncio.open_unix_connection(str(path))
    try:
        writer.write(payload)
        await writer.drain()
        return await asyncio.wait_for(reader.read(1024), timeout=2)
    finally:
        writer.close()


def test_a_unix_socket_relay_forwards_is_private_and_cut_refuses(tmp_path: Path) -> None:
    async def scenario() -> None:
        engine = tmp_path / "engine.sock"
        upstream = await asyncio.start_unix_server(_echo, path=str(engine))
        relay = proxy.Proxy(engine, control=tmp_path / "control.sock",
                            listen=tmp_path / "relay.sock")
        where = await relay.start()
        assert where == tmp_path / "relay.sock"
        assert stat.S_IMODE(where.stat().st_mode) == 0o600
        assert await _round_trip(where, b"GET /_ping") == b"GET /_ping"

        relay.switch(switchboard.Mode.CUT)
        try:
            answered = await _round_trip(where, b"GET /_ping")
        except ConnectionResetError:
            answered = b""
        assert answered == b""  # closed or reset, never forwarded
        assert relay.board.status()["refused_total"] >= 1

        relay.switch(switchboard.Mode.FORWARD)
        assert await _round_trip(where, b"again") == b"again"
        await relay.stop()
        assert not where.exists()
        upstream.close()

    asyncio.run(scenario())
