"""Starting, probing and stopping the suite's processes: shared by `make up`, the tests and the benchmarks."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as probe:
        return probe.connect_ex((host, port)) == 0


def venv_command(command: list[str]) -> list[str]:
    """Resolve the program of a compose command (`gunicorn`) to this interpreter's environment."""
    program = Path(sys.executable).parent / command[0]
    return [str(program), *command[1:]] if program.exists() else command


def url_answers(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 200 <= response.status < 300
    except Exception:
        return False


class ServiceProcess:
    """One service as a real OS process in its own process group, so it can be signalled as a whole."""

    def __init__(
        self,
        name: str,
        command: list[str],
        env: dict[str, str],
        health_url: str,
        *,
        output: Callable[[str, str], None] | None = None,
        log_path: Path | None = None,
    ) -> None:
        self.name = name
        self.command = venv_command(command)
        self.env = env
        self.health_url = health_url
        self.output = output
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self._log_file = None

    def start(self) -> ServiceProcess:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "SERVICE_NAME": self.name, **self.env}
        if self.log_path is not None:
            self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
            stdout = self._log_file
        else:
            stdout = subprocess.PIPE if self.output else subprocess.DEVNULL
        self.process = subprocess.Popen(
            self.command,
            cwd=ROOT,
            env=env,
            stdout=stdout,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        if self.output and self.process.stdout is not None:
            threading.Thread(target=self._pump, daemon=True).start()
        return self

    def _pump(self) -> None:
        assert self.process and self.process.stdout
        for raw in self.process.stdout:
            self.output(self.name, raw.decode(errors="replace").rstrip())

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_healthy(self, timeout: float = 30.0) -> ServiceProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise RuntimeError(f"{self.name} exited with code {self.process.returncode} before it was healthy")
            if url_answers(self.health_url, timeout=0.5):
                return self
            time.sleep(0.05)
        raise TimeoutError(f"{self.name} did not answer {self.health_url} within {timeout:.0f} s")

    def signal(self, signum: int) -> None:
        if self.running:
            os.killpg(self.process.pid, signum)

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM (gunicorn's graceful shutdown), then SIGKILL whatever is left of the group."""
        if self.process is None:
            return None
        if self.running:
            self.signal(signal.SIGCONT)  # a stopped process cannot act on SIGTERM
            self.signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # workers orphaned by a killed master
        self.process.wait()
        if self._log_file:
            self._log_file.close()
        return self.process.returncode
