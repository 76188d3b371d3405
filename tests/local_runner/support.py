"""Running the ``asynccfn`` command as a user does, and finding the processes it left."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ASYNCCFN = Path(sys.executable).parent / "asynccfn"
_LAMBDA_ENDPOINT = re.compile(r"^lambda\s+function \S+ at (http://\S+),")


@dataclass
class Command:
    """A running ``asynccfn`` process; its stdout read line by line as it comes."""

    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    _queue: queue.Queue[str | None] = field(default_factory=queue.Queue)

    def wait_for(self, text: str, timeout: float = 60.0) -> str:
        """The first stdout line containing ``text`` (waits for it)."""
        deadline = time.monotonic() + timeout
        for line in self.lines:
            if text in line:
                return line
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            self.lines.append(line)
            if text in line:
                return line
        raise AssertionError(f"no line with {text!r} in:\n" + "\n".join(self.lines))

    def finish(self, timeout: float = 120.0) -> tuple[int, str, str]:
        """Wait for the exit; return (exit code, stdout, stderr).

        A command still running after ``timeout`` is stopped (SIGTERM takes it through its
        clean-up) before the failure, so that its servers do not outlive the test.
        """
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise
        while (line := self._queue.get(timeout=10)) is not None:
            self.lines.append(line)
        assert self.process.stdout is not None and self.process.stderr is not None
        err = self.process.stderr.read()
        self.process.stdout.close()
        self.process.stderr.close()
        return code, "\n".join(self.lines), err

    def stop(self) -> None:
        """End the command if it still runs: SIGTERM, then SIGKILL if that is not enough."""
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    @property
    def lambda_endpoint(self) -> str:
        """The local Lambda service's endpoint, as the command printed it."""
        for line in self.lines:
            match = _LAMBDA_ENDPOINT.match(line)
            if match:
                return match[1]
        raise AssertionError("the command did not print its Lambda endpoint")


# Sets the command's SIGINT disposition before it starts, as a shell does: a non-interactive
# shell starts a background job (`asynccfn local ... &`) with SIGINT ignored.
_WITH_SIGINT = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.Handlers(int(sys.argv[1]))); "
    "os.execv(sys.argv[2], sys.argv[2:])"
)


def start(*args: str, sigint: signal.Handlers | None = None, cwd: Path = ROOT) -> Command:
    """Start ``asynccfn ARGS`` from ``cwd``, by default the repository's root.

    ``sigint`` (``SIG_DFL`` or ``SIG_IGN``): the disposition it starts with, whatever this
    process has; by default it inherits this process's.
    """
    env = {**os.environ, "NO_COLOR": "1"}
    command = [str(ASYNCCFN), *args]
    if sigint is not None:
        command = [sys.executable, "-c", _WITH_SIGINT, str(int(sigint)), *command]
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    running = Command(process=process)

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            running._queue.put(line.rstrip("\n"))
        running._queue.put(None)

    threading.Thread(target=read, daemon=True).start()
    return running


def run(*args: str, timeout: float = 120.0, cwd: Path = ROOT) -> tuple[int, str, str, str]:
    """Run ``asynccfn ARGS`` from ``cwd`` to its end: (exit code, stdout, stderr, Lambda
    endpoint)."""
    command = start(*args, cwd=cwd)
    code, out, err = command.finish(timeout)
    return code, out, err, command.lambda_endpoint


def processes_with_env(name: str, value: str) -> list[int]:
    """Live processes whose environment has ``name=value`` (the workers of one run carry
    the run's ``AWS_ENDPOINT_URL_LAMBDA``)."""
    wanted = f"{name}={value}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if wanted in environ and state != "Z":
            found.append(int(entry.name))
    return found


def workers_of(lambda_endpoint: str) -> list[int]:
    return processes_with_env("AWS_ENDPOINT_URL_LAMBDA", lambda_endpoint)
