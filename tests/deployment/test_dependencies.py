"""Dependencies are declared in one place (pyproject.toml's ranges) and locked in one (uv.lock); the images'
requirements.txt is exported from the lock, pinned exactly and hashed."""

from __future__ import annotations

import re
import subprocess
import tomllib

from tools.processes import ROOT

UV = ROOT / ".venv" / "bin" / "uv"


def uv(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(UV), *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_the_lock_holds_what_pyproject_asks_for():
    result = uv("lock", "--check")
    assert result.returncode == 0, f"uv.lock is out of date: run `make lock`\n{result.stderr}"


def test_the_images_requirements_are_the_lock_exported():
    exported = uv("export", "--frozen", "--no-dev", "--no-emit-project", "--quiet")
    assert exported.returncode == 0, exported.stderr
    written = (ROOT / "requirements.txt").read_text()
    body = lambda text: [line for line in text.splitlines() if not line.startswith("#")]  # noqa: E731
    assert body(written) == body(exported.stdout), "requirements.txt is not the lock's: run `make lock`"


def test_every_requirement_is_pinned_exactly_and_hashed():
    requirements = [line for line in (ROOT / "requirements.txt").read_text().splitlines() if "==" in line]
    assert requirements
    for line in requirements:
        assert re.match(r"^[A-Za-z0-9_.-]+==[\w.]+( ;.*)? \\$", line), line
    assert "--hash=sha256:" in (ROOT / "requirements.txt").read_text()


def test_the_runtime_needs_no_test_tool():
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    runtime = {
        re.split(r"[<>=!~ ;]", d)[0].lower()
        for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    }
    assert not runtime & {"pytest", "playwright", "schemathesis", "mypy", "ruff"}
    assert {p["name"] for p in lock["package"]} >= runtime
