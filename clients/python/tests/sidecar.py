"""Real rivven sidecars for the tests: ``node bin/rivven serve`` from the repository, on port 0."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(os.environ.get("RIVVEN_REPO", Path(__file__).resolve().parents[3]))


class PortKeeper:
    """A TCP proxy on a port of its own, forwarding each connection to ``target`` (None: closed at once).

    A restarted sidecar keeps its address through it without binding a port again: the port a killed process
    freed can be taken meanwhile (another test's outgoing connection, the client's own reconnect).
    """

    def __init__(self) -> None:
        self.target: int | None = None
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            target = self.target
            try:
                if target is None:
                    raise OSError("down")
                upstream = socket.create_connection(("127.0.0.1", target))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        # Either side ending ends both, as one connection straight to the sidecar would.
        for s in (src, dst):
            with self._lock:
                self._open.discard(s)
            self._end(s)

    @staticmethod
    def _end(s: socket.socket) -> None:
        with contextlib.suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)
        s.close()

    def close(self) -> None:
        self._listener.close()
        with self._lock:
            for s in self._open:
                self._end(s)
            self._open.clear()


class Sidecar:
    """One ``rivven serve`` process with its own data dir; ``restart`` keeps the address and the data."""

    def __init__(self, extra_env: dict[str, str] | None = None) -> None:
        if not (REPO / "dist").is_dir():
            raise RuntimeError(f"{REPO}/dist is missing: run `npm run build` in {REPO} first (test.sh does)")
        self.dir = tempfile.mkdtemp(prefix="rivven-py-")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("RIVVEN_") and k != "NODE_OPTIONS"}
        self.env["RIVVEN_METRICS_PORT"] = "0"
        self.env.update(extra_env or {})
        self.keeper = PortKeeper()
        self.port = self.keeper.port
        self.host = "127.0.0.1"
        self.proc: subprocess.Popen[str] | None = None
        self.start()

    def start(self) -> None:
        argv = ["node", str(REPO / "bin" / "rivven"), "serve", "--port", "0", "--data-dir", self.dir]
        self.proc = subprocess.Popen(argv, cwd=self.dir, env=self.env, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 30
        for line in self.proc.stdout:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("msg") == "rivven listening":
                self.keeper.target = int(entry["address"].rsplit(":", 1)[1])
                # Keep draining its log so a chatty sidecar never blocks on a full pipe.
                threading.Thread(target=self._drain, args=(self.proc,), daemon=True).start()
                return
            if time.monotonic() > deadline:
                break
        self.proc.kill()
        raise RuntimeError(f"the sidecar did not start (exit code {self.proc.wait()})")

    @staticmethod
    def _drain(proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for _ in proc.stdout:
            pass

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        if sig in (signal.SIGKILL, signal.SIGTERM):
            self.keeper.target = None
        self.proc.send_signal(sig)
        if sig in (signal.SIGKILL, signal.SIGTERM):
            self.proc.wait()
        elif sig == signal.SIGSTOP:
            self._wait_state("T")

    def _wait_state(self, state: str) -> None:
        assert self.proc is not None
        stat = Path(f"/proc/{self.proc.pid}/stat")
        deadline = time.monotonic() + 10
        while stat.read_text().rsplit(")", 1)[1].split()[0] != state:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the sidecar did not reach state {state}")
            time.sleep(0.005)

    def restart(self) -> None:
        self.keeper.target = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.start()

    def stop(self) -> None:
        self.keeper.target = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait()
        self.keeper.close()
        shutil.rmtree(self.dir, ignore_errors=True)


async def eventually(condition: Callable[[], bool], within: float = 30.0) -> None:
    """Waits for a condition (never for a fixed time), failing after ``within`` seconds."""
    import asyncio

    deadline = time.monotonic() + within
    for _ in iter(int, 1):
        if condition():
            return
        if time.monotonic() > deadline:
            raise AssertionError("the condition did not hold in time")
        await asyncio.sleep(0.002)
