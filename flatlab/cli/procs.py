"""The processes `flatlab up` starts: pid files, the API's listening socket, stopping.

`flatlab up` binds the API's port itself and hands the socket to uvicorn
(`--fd`): if the port is taken, `up` fails at once saying so, and whatever
answers on the port afterwards is the API it started, never another program
that happened to listen there.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from flatlab.settings import Settings

PROCESSES = ("api", "worker")


class PortTaken(OSError):
    """The API's port is in use by another program."""


def run_dir(settings: Settings) -> Path:
    return settings.home.resolve() / "run"


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on (host, port), inheritable by a child; `PortTaken` if used."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # rebinding after TIME_WAIT only
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise PortTaken(f"{host}:{port} is already in use ({exc.strerror})") from exc
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def spawn(
    argv: list[str], env: dict[str, str], log_path: Path, pass_fds: tuple[int, ...] = ()
) -> subprocess.Popen[bytes]:
    if log_path.exists():  # keep the previous run's log; readiness reads only this one
        log_path.replace(log_path.with_suffix(".log.1"))
    with open(log_path, "wb") as log:
        # A session of its own: `down` signals the whole group (a worker and its pool children).
        return subprocess.Popen(
            argv,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            pass_fds=pass_fds,
        )


def live_pids(folder: Path) -> dict[str, int]:
    """The processes of `folder`'s pid files that still run (stale pid files are removed)."""
    out = {}
    for name in PROCESSES:
        pid_file = folder / f"{name}.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text().strip() or 0)
            if pid and _alive(pid):
                out[name] = pid
            else:
                pid_file.unlink()
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")  # a recycled pid is not ours
    if not cmdline.exists():
        return True
    text = cmdline.read_bytes()
    return b"flatlab" in text or b"uvicorn" in text or b"celery" in text


def stop_all(folder: Path, grace: float = 60.0) -> list[str]:
    """SIGTERM each process group, wait up to `grace` seconds, then SIGKILL what is left."""
    pids = live_pids(folder)
    for pid in pids.values():
        _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_group_alive(p) for p in pids.values()):
        time.sleep(0.2)
    for pid in pids.values():
        _signal_group(pid, signal.SIGKILL)
    for name in pids:
        (folder / f"{name}.pid").unlink(missing_ok=True)
    (folder / "api.url").unlink(missing_ok=True)
    return list(pids)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
    _reap(pid)


def _group_alive(pgid: int) -> bool:
    _reap(pgid)
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
