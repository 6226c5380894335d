"""The project's ASGI application served over real HTTP on 127.0.0.1, in a thread of
the test process so it shares the test database and settings."""

from __future__ import annotations

import asyncio
import socket
import threading

import uvicorn


class AsgiServer:
    def __init__(self, app: str = "nexai.asgi:application") -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", lifespan="off", ws="websockets-sansio")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="asgi-server", daemon=True)

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        from providers import http

        try:
            await self._server.serve(sockets=[self._sock])
        finally:
            await http.aclose()

    def start(self) -> AsgiServer:
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the ASGI server failed to start")
            self._thread.join(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._sock.close()
