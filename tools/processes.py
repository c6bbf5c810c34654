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
from typing import IO, BinaryIO

ROOT = Path(__file__).resolve().parent.parent


def ephemeral_port_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


# Picked below the ephemeral range: a port the kernel hands out as an outgoing connection's source
# port can be taken by any client (the load generator, the services' own pools) between the moment
# we pick it and the moment the service binds it, and then the service fails to start.
_PORT_FLOOR = 20000
_port_lock = threading.Lock()
_next_port = _PORT_FLOOR + (os.getpid() * 37) % 5000  # parallel runs start at different places


def _worker_block(low: int, high: int) -> tuple[int, int]:
    """The ports [low, high) this process picks from. A pytest-xdist worker takes a block of its own: workers
    that picked from one range collided now and then (a port probed free by two before either bound it, or
    freed by a service killed for a restart and taken before it came back), and a test then spoke to
    another test's service."""
    worker, count = os.environ.get("PYTEST_XDIST_WORKER", ""), os.environ.get("PYTEST_XDIST_WORKER_COUNT", "")
    if not (worker.startswith("gw") and worker[2:].isdigit() and count.isdigit() and int(count) > 0):
        return low, high
    size = (high - low) // int(count)
    start = low + int(worker[2:]) % int(count) * size
    return start, start + size


def free_port() -> int:
    """A loopback port that is free now and outside the range the kernel gives to outgoing connections."""
    global _next_port
    low, high = ephemeral_port_range()
    floor, ceiling = _worker_block(_PORT_FLOOR, low if low > _PORT_FLOOR + 1000 else 65535)
    with _port_lock:
        if not floor <= _next_port < ceiling:
            _next_port = floor + (os.getpid() * 37) % (ceiling - floor)
        for _ in range(ceiling - floor):
            port = _next_port
            _next_port = floor if _next_port + 1 >= ceiling else _next_port + 1
            if low <= port <= high:
                continue
            with socket.socket() as probe:
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError(f"no free loopback port between {floor} and {ceiling}")


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as probe:
        return probe.connect_ex((host, port)) == 0


def venv_command(command: list[str]) -> list[str]:
    """Resolve the program of a compose command (`gunicorn`) to this interpreter's environment."""
    program = Path(sys.executable).parent / command[0]
    return [str(program), *command[1:]] if program.exists() else command


def url_answers(url: str, timeout: float = 1.0) -> bool:
    """A 2xx for an http:// URL; for tcp://host:port (a server that does not speak HTTP), a connection."""
    if url.startswith("tcp://"):
        host, _, port = url.removeprefix("tcp://").rpartition(":")
        try:
            socket.create_connection((host, int(port)), timeout=timeout).close()
            return True
        except OSError:
            return False
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
        self.process: subprocess.Popen[bytes] | None = None
        self._log_file: BinaryIO | None = None

    def start(self) -> ServiceProcess:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "SERVICE_NAME": self.name, **self.env}
        if self.log_path is not None:
            if self._log_file is not None:
                self._log_file.close()  # started again after it died: one file object at a time
            self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
            stdout: BinaryIO | int = self._log_file
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
            threading.Thread(target=self._pump, args=(self.process.stdout, self.output), daemon=True).start()
        return self

    def _pump(self, stdout: IO[bytes], output: Callable[[str, str], None]) -> None:
        for raw in stdout:
            output(self.name, raw.decode(errors="replace").rstrip())

    def _popen(self) -> subprocess.Popen[bytes]:
        """The OS process: there is one once start() has run."""
        if self.process is None:
            raise RuntimeError(f"{self.name} has not been started")
        return self.process

    @property
    def pid(self) -> int:
        """The process's id, and its process group's (it leads a session of its own); once started."""
        return self._popen().pid

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_healthy(self, timeout: float = 30.0) -> ServiceProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise RuntimeError(f"{self.name} exited with code {self._popen().returncode} before it was healthy")
            if url_answers(self.health_url, timeout=0.5):
                return self
            time.sleep(0.05)
        raise TimeoutError(f"{self.name} did not answer {self.health_url} within {timeout:.0f} s")

    def signal(self, signum: int) -> None:
        if self.running:
            os.killpg(self.pid, signum)

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
            self._log_file = None
        return self.process.returncode
