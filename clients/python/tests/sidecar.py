"""Real rivven sidecars for the tests: ``node bin/rivven serve`` from the repository, on port 0."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(os.environ.get("RIVVEN_REPO", Path(__file__).resolve().parents[3]))


class Sidecar:
    """One ``rivven serve`` process with its own data dir; ``restart`` keeps the port and the data."""

    def __init__(self, extra_env: dict[str, str] | None = None) -> None:
        if not (REPO / "dist").is_dir():
            raise RuntimeError(f"{REPO}/dist is missing: run `npm run build` in {REPO} first (test.sh does)")
        self.dir = tempfile.mkdtemp(prefix="rivven-py-")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("RIVVEN_") and k != "NODE_OPTIONS"}
        self.env["RIVVEN_METRICS_PORT"] = "0"
        self.env.update(extra_env or {})
        self.port = 0
        self.host = "127.0.0.1"
        self.proc: subprocess.Popen[str] | None = None
        self.start()

    def start(self) -> None:
        argv = ["node", str(REPO / "bin" / "rivven"), "serve", "--port", str(self.port), "--data-dir", self.dir]
        self.proc = subprocess.Popen(argv, cwd=self.dir, env=self.env, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 30
        for line in self.proc.stdout:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("msg") == "rivven listening":
                host, port = entry["address"].rsplit(":", 1)
                self.host, self.port = host, int(port)
                # Keep draining its log so a chatty sidecar never blocks on a full pipe.
                import threading

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
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.start()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait()
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
