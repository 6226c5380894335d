"""The project's ASGI application served over real HTTP on 127.0.0.1: in a thread of
the test process, so it shares the test database and settings (AsgiServer), or as a
server process of its own on the test's PostgreSQL database, as a host runs it
(ServerProcess)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import uvicorn

ROOT = Path(__file__).resolve().parents[1]


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


class ServerProcess:
    """One server process (uvicorn by default, daphne: `make run`'s, or granian) on the test
    database, started from the project's root, answering once it returns. Its stderr is
    kept (`stderr`) when `capture`."""

    def __init__(self, *, server: str = "uvicorn", capture: bool = False, **env: str) -> None:
        from django.conf import settings
        from django.db import connection

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        db = settings.DATABASES["default"]
        environ = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{connection.settings_dict['NAME']}",
            **env,
        }
        port = str(self.port)
        command = {
            "uvicorn": ["-m", "uvicorn", "nexai.asgi:application", "--host", "127.0.0.1",
                        "--port", port, "--log-level", "warning", "--lifespan", "on"],
            "daphne": ["-m", "daphne", "-b", "127.0.0.1", "-p", port, "--verbosity", "0",
                       "nexai.asgi:application"],
            # One worker (a process of its own, under granian's).
            "granian": ["-m", "granian", "--interface", "asgi", "--host", "127.0.0.1",
                        "--port", port, "--workers", "1", "--log-level", "warning",
                        "nexai.asgi:application"],
        }[server]  # fmt: skip
        self.process = subprocess.Popen(
            [sys.executable, *command],
            cwd=ROOT,
            env=environ,
            stderr=subprocess.PIPE if capture else None,
            text=True,
        )
        deadline = time.monotonic() + 60
        while True:  # no readiness signal from another process: poll its port
            assert self.process.poll() is None, "the server exited"
            try:
                httpx.get(self.url + "/v1/models", timeout=1)
                return
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.05)

    def stop(self) -> str:
        """Stops it as a supervisor does (SIGTERM); returns what it wrote to stderr."""
        if self.process.poll() is None:
            self.process.terminate()
        _, err = self.process.communicate(timeout=20)
        return err or ""
