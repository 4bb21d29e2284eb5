"""The conformance harness (conformance/README.md): one process per test session, spoken to in JSON lines."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import threading
from pathlib import Path
from typing import Any

from .sidecar import REPO

#: The conformance kit; RIVVEN_CONFORMANCE_DIR points elsewhere (another checkout) when set.
CONFORMANCE = Path(os.environ.get("RIVVEN_CONFORMANCE_DIR", REPO / "conformance")).resolve()


class HarnessError(Exception):
    pass


class Harness:
    def __init__(self) -> None:
        if not (CONFORMANCE / "harness.ts").is_file():
            raise RuntimeError(f"no conformance harness at {CONFORMANCE} (set RIVVEN_CONFORMANCE_DIR)")
        root = CONFORMANCE.parent
        env = {k: v for k, v in os.environ.items() if k != "NODE_OPTIONS" and not k.startswith("RIVVEN_")}
        self.proc = subprocess.Popen(
            ["node", "--import", "tsx", str(CONFORMANCE / "harness.ts")],
            cwd=root,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        first = json.loads(self._readline())
        if first.get("ready") is not True:
            raise RuntimeError(f"the harness did not start: {first}")

    def _readline(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the harness exited (code {self.proc.poll()})")
        return line

    def cmd(self, cmd: str, **args: Any) -> dict[str, Any]:
        """One command, one reply line; raises HarnessError with the harness's message when it says ok: false."""
        assert self.proc.stdin is not None
        with self._lock:
            rid = next(self._ids)
            self.proc.stdin.write(json.dumps({"id": rid, "cmd": cmd, **args}) + "\n")
            self.proc.stdin.flush()
            reply: dict[str, Any] = json.loads(self._readline())
        if reply.get("id") != rid:
            raise RuntimeError(f"the harness answered {reply.get('id')} to {rid}")
        if not reply.get("ok"):
            raise HarnessError(str(reply.get("error")))
        return reply

    def close(self) -> None:
        assert self.proc.stdin is not None
        with self._lock:
            self.proc.stdin.close()  # EOF: the harness kills what it started and exits
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
