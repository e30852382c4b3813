"""Live servers for the tests: ``agentmem serve`` in a child process on a free loopback port, stopped
by the test; and the small helpers around it (a memory with the model-free embedder, keys made with
the CLI). Shared by test_serve.py and test_mcp.py."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import agentmem

ENV = {**os.environ, "AGENTMEM_LOAD_PLUGINS": ""}  # built-ins only: the server is about the core


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``agentmem serve PATH`` in a child process, on a free loopback port."""

    def __init__(self, path: Path) -> None:
        self.path, self.port = path, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([sys.executable, "-m", "agentmem", "serve", str(path), "--port", str(self.port)],
                                     env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        import httpx

        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited: {self.proc.stderr.read() if self.proc.stderr else ''}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise AssertionError("server did not answer /healthz within 60 s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill9(self) -> None:
        self.proc.kill()
        self.proc.wait()


def make_memory(path: Path) -> None:
    """A memory with the model-free hashing embedder (the server uses the one its journal records)."""
    agentmem.Memory(path, embedder="hash").close()


def keys(path: Path, *args: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "agentmem", "keys", "create", str(path), *args, "--json"],
                          env=ENV, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
