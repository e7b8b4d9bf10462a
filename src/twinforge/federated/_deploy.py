"""A real deployment on Flower's Deployment Engine: the server runs a SuperLink and submits the twinforge App
to it; every site runs a SuperNode that connects to the SuperLink and answers with its own table.

``serve`` (``twinforge federated server``):

1. writes a working folder next to the output: the Flower App (a ``pyproject.toml`` whose components are
   :mod:`twinforge.federated.app`), the run's settings and a Flower configuration (``FLWR_HOME``) naming the
   SuperLink, so nothing is read from or written to ``~/.flwr``;
2. starts ``flower-superlink`` (runtime dependency installation off: the App runs in this environment);
3. submits the App with ``flwr run`` and streams its log until the ServerApp has saved the model;
4. stops the SuperLink. Restarted with the same arguments, the ServerApp resumes from its last checkpoint.

``join`` runs ``flower-supernode`` with the site's table in its node config (``data-path``); the ClientApp reads
the table when the server asks and sends back only aggregates and weights. ``run_site`` (``twinforge federated
client``) starts a new SuperNode whenever one ends, so the sites rejoin a restarted server by themselves.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from twinforge.errors import DataError, ParameterError
from twinforge.federated._apps import _checkpoint_dir, checkpoint_round

__all__ = ["free_port", "join", "run_site", "serve"]

_APP_TOML = """[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "twinforge-federated"
version = "1.0.0"
description = "twinforge: one synthetic-data generator trained across sites"
license = "Apache-2.0"
dependencies = []

[tool.hatch.build.targets.wheel]
packages = ["."]

[tool.flwr.app]
publisher = "twinforge"

[tool.flwr.app.components]
serverapp = "twinforge.federated.app:server_app"
clientapp = "twinforge.federated.app:client_app"

[tool.flwr.app.config]
settings-file = ""
"""

_FLWR_CONFIG = """[superlink]
default = "twinforge"

[superlink.twinforge]
address = "{address}"
insecure = true
"""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _parse_address(server: str) -> tuple[str, int]:
    host, sep, port = server.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ParameterError(f"--server must be HOST:PORT (e.g. 10.0.0.5:9092), got {server!r}")
    return host.strip("[]"), int(port)


def _env(flwr_home: Path) -> dict[str, str]:
    """The child processes' environment: this venv's scripts first (the SuperLink spawns ``flower-superexec``)."""
    env = dict(os.environ)
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    env["FLWR_HOME"] = str(flwr_home)
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def _script(name: str) -> str:
    path = Path(sys.executable).parent / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if found is None:  # pragma: no cover - depends on the installation
        raise ParameterError(f'{name} not found: pip install -c constraints.txt -e ".[federated]"')
    return found


def _wait_port(host: str, port: int, proc: subprocess.Popen, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DataError(f"{what} stopped at start (exit code {proc.returncode}); its log: {log}")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.2)
    raise DataError(f"{what} did not listen on {host}:{port} within {timeout:g} s; its log: {log}")


def _stop(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """Stop a child started in its own process group, and everything it started.

    Also when the child has ended by itself: a SuperNode refused by a new SuperLink exits while the ClientApp
    process it started may still be training, in its group (call this right after the child ends).
    """
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(grace)


@contextlib.contextmanager
def _started(cmd: list[str], env: dict[str, str], log: IO[str] | None) -> Iterator[subprocess.Popen]:
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield proc
    finally:
        _stop(proc)


def serve(
    settings: Any,
    *,
    host: str = "0.0.0.0",
    port: int = 9092,
    log: IO[str] | None = None,
    start_timeout: float = 60.0,
    run_timeout: float | None = None,
) -> Path:
    """Run a SuperLink on ``host:port``, train ``settings`` across the SuperNodes that join, save the model.

    ``log`` receives the Flower run's log (default: this process's stderr). Returns the model directory.
    """
    settings.check()
    out = Path(settings.out).resolve()
    settings.out = str(out)
    if out.exists() and not settings.overwrite:
        raise ParameterError(f"{str(out)!r} already exists: choose another --out or pass --overwrite")
    work = out.with_name(f".{out.name}.federated-run")
    (work / "app").mkdir(parents=True, exist_ok=True)
    (work / "home").mkdir(exist_ok=True)
    (work / "app" / "pyproject.toml").write_text(_APP_TOML)
    (work / "settings.json").write_text(settings.to_json())
    local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    (work / "home" / "config.toml").write_text(_FLWR_CONFIG.format(address=f"{local}:{port}"))
    env = _env(work / "home")
    link_log = work / "superlink.log"
    target = log if log is not None else sys.stderr
    done = checkpoint_round(settings)
    if done is not None:  # said here: the ServerApp's own log stays in its process
        target.write(f"resuming from round {done} of {settings.rounds} (checkpoint {_checkpoint_dir(settings)})\n")
    link_cmd = [
        _script("flower-superlink"),
        "--insecure",
        "--host",
        host,
        "--port",
        str(port),
        "--disable-runtime-dependency-installation",
    ]
    with open(link_log, "w") as link_out, _started(link_cmd, env, link_out) as link:
        _wait_port(local, port, link, start_timeout, "the SuperLink", link_log)
        run_cmd = [
            _script("flwr"),
            "run",
            str(work / "app"),
            "twinforge",
            "--run-config",
            f"settings-file={_toml_string(str(work / 'settings.json'))}",
            "--stream",
        ]
        proc = subprocess.Popen(run_cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = None if run_timeout is None else time.monotonic() + run_timeout
        assert proc.stdout is not None
        streamed = False
        try:
            for text in _compact(proc.stdout):
                if text:
                    target.write(text)
                    target.flush()
                if deadline is not None and time.monotonic() > deadline:
                    raise DataError(f"the federated run did not finish within {run_timeout:g} s; log: {link_log}")
            streamed = True
        finally:
            if streamed:  # the stream ends with the run; interrupted (Ctrl-C, SIGTERM, timeout): stop it now
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(30)
            if proc.poll() is None:
                proc.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(10)
    if not out.exists():
        raise DataError(f"the federated run ended without a model (see the log above and {link_log})")
    shutil.rmtree(work, ignore_errors=True)
    return out


def _compact(lines: Iterable[str], limit: int = 1000) -> Iterator[str]:
    """The run's log for the server's terminal, one text per line read ("" for a line left out).

    Flower logs each round's config in full (the model's header: tens of kilobytes of JSON and base64), cut to
    ``limit`` characters here, and repeats "Waiting for nodes to connect" every second, counted here instead.
    """
    last, repeats = None, 0
    for line in lines:
        if line == last:
            repeats += 1
            yield ""
            continue
        if repeats:
            yield f"(the line above {repeats} more times)\n"
        last, repeats = line, 0
        body = line.rstrip("\n")
        yield line if len(body) <= limit else f"{body[:limit]} ... ({len(body) - limit:,} more characters)\n"
    if repeats:
        yield f"(the line above {repeats} more times)\n"


def join(
    data: str | os.PathLike,
    server: str,
    *,
    name: str | None = None,
    port: int | None = None,
    insecure: bool = True,
    max_wait: float | None = None,
    log: IO[str] | None = None,
    own_session: bool = True,
) -> subprocess.Popen:
    """Start this site's SuperNode (``flower-supernode``) for ``server`` (HOST:PORT); returns the process.

    The site's table is read when the server asks (checked against the agreed schema then); here only that it
    exists and can be read. ``own_session``: the SuperNode gets its own process group (stop it with
    :func:`_stop`); without, it shares the caller's, so a signal to the caller's group reaches it too.
    """
    from twinforge.io import read_table

    _parse_address(server)
    path = Path(data).resolve()
    read_table(path).head(1)  # a clear error now rather than at the first query
    for label, text in (("--data", str(path)), ("--name", name or "")):
        if "'" in text or '"' in text:
            raise ParameterError(f"{label} must not contain quotes, got {text!r}")
    site = name or path.stem
    home = Path(tempfile.mkdtemp(prefix="twinforge-supernode-"))
    cmd = [
        _script("flower-supernode"),
        "--superlink",
        server,
        "--port",
        str(port or free_port()),
        "--node-config",
        f"data-path='{path}' site-name='{site}'",
    ]
    if insecure:
        cmd.append("--insecure")
    if max_wait is not None:
        cmd += ["--max-wait-time", str(max_wait)]
    return subprocess.Popen(
        cmd,
        env=_env(home),
        stdout=log,
        stderr=subprocess.STDOUT if log is not None else None,
        start_new_session=own_session,
    )


def run_site(
    data: str | os.PathLike,
    server: str,
    *,
    name: str | None = None,
    port: int | None = None,
    restart_delay: float = 5.0,
    say: Any = None,
) -> None:
    """Keep this site joined to ``server`` until interrupted (Ctrl-C, SIGTERM: the SuperNode stops with it).

    A SuperNode ends when the SuperLink it registered with is replaced: a restarted server's SuperLink does not
    know the node and refuses it. The site then starts a new SuperNode after ``restart_delay`` seconds, so a
    server restarted after a crash finds its sites again and resumes. Three SuperNodes in a row that end within
    30 s of their start are a clear error (a wrong address or port, a SuperLink that refuses this site).
    """
    say = say or (lambda text: print(text, file=sys.stderr, flush=True))
    site = name or Path(data).stem
    quick = 0
    while True:
        started = time.monotonic()
        proc = join(data, server, name=name, port=port)
        try:
            code = proc.wait()
        finally:
            _stop(proc)  # interrupted: the SuperNode and its ClientApps stop with this site
        quick = quick + 1 if time.monotonic() - started < 30 else 0
        if quick >= 3:
            raise DataError(
                f"site {site}: the SuperNode for {server} ended {quick} times within 30 s of its start (last exit "
                f"code {code}); check --server and that the server is running (its log above)"
            )
        say(f"site {site}: the SuperNode ended (exit code {code}); joining {server} again in {restart_delay:g} s")
        time.sleep(restart_delay)


def _toml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
