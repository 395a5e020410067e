"""``reconcile-lab web``'s HTTP server (aiohttp, which kopf already brings): the page, its
files, Server-Sent Events, the fault buttons and the replay.

An I/O adapter. The engines are read by ``compare.live.Reader`` (the terminal view's reader),
what a reading means for the page is ``model``'s business, a replay's frames ``replay``'s.
It runs only the commands of ``workshop.catalog``'s faults, chosen by their index: the page
never sends a command. It answers only requests addressed to 127.0.0.1 or localhost (another
Host header is a page elsewhere trying to reach it through DNS) and takes a press only as a
JSON POST, which a page of another origin cannot send without a preflight it never gets.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from reconcile_lab.compare import live
from reconcile_lab.web import model, replay

STATIC = Path(__file__).resolve().parent.parent / "assets" / "web"
HOSTS = ("127.0.0.1", "localhost")
Runner = Callable[[str], Awaitable[tuple[int, str]]]  # command → (exit code, output)


class Live:
    """The live page's state: the last model, who listens, what was pressed."""

    def __init__(self, reader: live.Reader, *, number: str, namespace: str, runner: Runner,
                 interval: float = 1.0, desired_hint: str = "", copies: str = "") -> None:
        self.reader = reader
        self.number = number
        self.namespace = namespace
        self.runner = runner
        self.interval = interval
        self.desired_hint = desired_hint
        self.copies = copies  # the example files for ``namespace``, when it is not default
        self.runs: dict[int, model.Run] = {}
        self.listeners: set[asyncio.Queue[dict[str, Any]]] = set()
        self.frame: Any = None
        self.current: dict[str, Any] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def build(self) -> dict[str, Any]:
        self.current = model.page(self.frame, number=self.number, namespace=self.namespace,
                                  runs=list(self.runs.values()), desired_hint=self.desired_hint,
                                  copies=self.copies)
        return self.current

    def publish(self) -> None:
        if self.frame is None:
            return
        data = self.build()
        for queue in self.listeners:
            if queue.full():  # a slow page gets the newest model, not a backlog
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(data)

    async def read_forever(self) -> None:
        said = ""
        while True:
            try:
                self.frame = await asyncio.to_thread(self.reader.frame)
                self.publish()
            except Exception as e:  # a reading that fails must not stop the page for good
                if repr(e) != said:
                    said = repr(e)
                    print(f"reconcile-lab: web: reading the engines failed: {e!r}; retrying",
                          file=sys.stderr, flush=True)
            await asyncio.sleep(self.interval)

    def press(self, number: str, index: int) -> model.Run:
        faults = model.exercise(number, self.namespace, self.copies)["faults"]
        fault = faults[index]  # IndexError: no such button
        run = model.Run(id=len(self.runs) + 1, t=time.time(), exercise=number,
                        label=fault["label"], engine=fault["engine"], command=fault["command"])
        self.runs[run.id] = run
        task = asyncio.create_task(self._finish(run))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self.publish()
        return run

    async def _finish(self, run: model.Run) -> None:
        code, output = await self.runner(run.command)
        self.runs[run.id] = run._replace(exit=code, output=output, ended=time.time())
        self.publish()


# --- requests -----------------------------------------------------------------------------


@web.middleware
async def _loopback_only(request: web.Request,
                         handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                         ) -> web.StreamResponse:
    host = (request.host or "").rsplit(":", 1)[0].strip("[]")
    if host not in HOSTS:
        raise web.HTTPForbidden(text=f"this page answers on 127.0.0.1 only, not {host!r}\n")
    return await handler(request)


def _file(name: str) -> web.FileResponse:
    return web.FileResponse(STATIC / name, headers={"Cache-Control": "no-store"})


async def _index(request: web.Request) -> web.StreamResponse:
    return _file("index.html")  # one page; /api/mode says which half it shows


async def _mode(request: web.Request) -> web.Response:
    return web.json_response({"mode": "replay" if "replay" in request.app else "live"})


async def _model(request: web.Request) -> web.Response:
    state: Live = request.app["live"]
    return web.json_response(state.current or {"loading": True})


async def _events(request: web.Request) -> web.StreamResponse:
    """Server-Sent Events: one ``model`` event per reading (about every second)."""
    state: Live = request.app["live"]
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-store"})
    await response.prepare(request)
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=1)
    state.listeners.add(queue)
    try:
        if state.current:
            queue.put_nowait(state.current)
        while True:
            try:
                data = await asyncio.wait_for(queue.get(), timeout=15)
                await response.write(f"event: model\ndata: {json.dumps(data)}\n\n".encode())
            except TimeoutError:
                await response.write(b": still here\n\n")  # keeps proxies and idle tabs open
    except ConnectionResetError:  # the tab was closed
        pass
    finally:
        state.listeners.discard(queue)
    return response


async def _body(request: web.Request) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise web.HTTPUnsupportedMediaType(text="send JSON (Content-Type: application/json)\n")
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="the body is not JSON\n") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="send a JSON object\n")
    return body


async def _press(request: web.Request) -> web.Response:
    state: Live = request.app["live"]
    body = await _body(request)
    number = str(body.get("exercise", state.number))
    try:
        run = state.press(number, int(body.get("fault", -1)))
    except (KeyError, IndexError, ValueError):
        raise web.HTTPNotFound(text=f"exercise {number} has no fault {body.get('fault')!r}\n"
                               ) from None
    return web.json_response({"id": run.id, "command": run.command})


async def _choose(request: web.Request) -> web.Response:
    state: Live = request.app["live"]
    number = str((await _body(request)).get("exercise", ""))
    if number not in {e["number"] for e in state.current.get("exercises", [])}:
        raise web.HTTPNotFound(text=f"no exercise {number!r} with faults\n")
    state.number = number
    state.publish()
    return web.json_response({"exercise": number})


async def _scenarios(request: web.Request) -> web.Response:
    data = request.app["replay"]
    return web.json_response({"meta": data.get("meta", {}), "scenarios": replay.scenarios(data)})


async def _scenario(request: web.Request) -> web.Response:
    try:
        found = replay.scenario(request.app["replay"], request.match_info["id"])
    except KeyError:
        raise web.HTTPNotFound(text=f"the run has no scenario {request.match_info['id']!r}\n"
                               ) from None
    return web.json_response(found)


def live_app(state: Live) -> web.Application:
    app = web.Application(middlewares=[_loopback_only])
    app["live"] = state

    async def reading(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(state.read_forever())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.cleanup_ctx.append(reading)
    app.add_routes([web.get("/", _index), web.get("/api/mode", _mode),
                    web.get("/api/model", _model), web.get("/events", _events),
                    web.post("/api/faults", _press), web.post("/api/exercise", _choose),
                    web.static("/static", STATIC)])
    return app


def replay_app(data: dict[str, Any]) -> web.Application:
    app = web.Application(middlewares=[_loopback_only])
    app["replay"] = data
    app.add_routes([web.get("/", _index), web.get("/api/mode", _mode),
                    web.get("/api/replay", _scenarios),
                    web.get("/api/replay/{id}", _scenario), web.static("/static", STATIC)])
    return app


LONGEST = 300.0  # seconds a button's command may take (`kubectl wait` and the like)


async def shell(command: str, *, env: dict[str, str], cwd: Path) -> tuple[int, str]:
    """One command in bash, as a participant's shell runs it: (exit code, its output)."""
    proc = await asyncio.create_subprocess_exec(
        "bash", "-c", command, cwd=cwd, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        start_new_session=True)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), LONGEST)
    except TimeoutError:
        proc.kill()
        out, _ = await proc.communicate()
        return -1, out.decode(errors="replace") + f"\n(stopped after {LONGEST:g} s)"
    return proc.returncode or 0, out.decode(errors="replace")
