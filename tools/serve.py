"""`make serve`: the Procfile's processes (both apps under gunicorn, their queue workers), after
migrating both databases. Each process's output is prefixed with its name; Ctrl-C (or SIGTERM)
stops them all, and so does any one of them ending.

Refuses to start without the production settings (README, "Running in production"): PostgreSQL
for each app, Redis for the queues and the rate limits, the secret keys.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
REQUIRED = {
    "THIRDPARTY_DATABASE_URL": "postgresql",
    "THIRDPARTY_QUEUE_URL": "redis://",
    "THIRDPARTY_RATE_LIMIT_STORAGE": "redis://",
    "THIRDPARTY_SECRET_KEY": "",
    "THIRDPARTY_TOKEN_KEY": "",
    "THIRDPARTY_BASE_URL": "http",
    "DATACUSTODIAN_DATABASE_URL": "postgresql",
    "DATACUSTODIAN_QUEUE_URL": "redis://",
    "DATACUSTODIAN_SECRET_KEY": "",
}


def processes(procfile: Path) -> list[tuple[str, str]]:
    """(name, command) of each line of a Procfile."""
    out = []
    for line in procfile.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, command = line.partition(":")
            out.append((name.strip(), command.strip()))
    return out


def relay(name: str, stream: IO[bytes]) -> None:
    for line in iter(stream.readline, b""):
        sys.stdout.write(f"{name:>16} | {line.decode(errors='replace')}")
        sys.stdout.flush()


def missing() -> list[str]:
    return [
        f"{key} ({start or 'set'}...)"
        for key, start in REQUIRED.items()
        if not os.environ.get(key, "").startswith(start) or not os.environ.get(key)
    ]


def main() -> int:
    absent = missing()
    if absent:
        print("make serve needs these environment variables:\n  " + "\n  ".join(absent),
              file=sys.stderr)  # fmt: skip
        return 2
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    for app in ("thirdparty_app", "datacustodian"):
        subprocess.run(["flask", "--app", app, "init-db"], cwd=ROOT, env=env, check=True)  # noqa: S603, S607
    running = []
    for name, command in processes(ROOT / "Procfile"):
        proc = subprocess.Popen(command, shell=True, cwd=ROOT, env=env, start_new_session=True,  # noqa: S602 - the Procfile's own lines
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
        threading.Thread(target=relay, args=(name, proc.stdout), daemon=True).start()
        running.append((name, proc))
    ended = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: ended.set())
    for _, proc in running:
        threading.Thread(target=lambda p=proc: (p.wait(), ended.set()), daemon=True).start()
    with contextlib.suppress(KeyboardInterrupt):
        while not ended.wait(0.5):
            pass
    for _, proc in running:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for name, proc in running:
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        print(f"{name}: ended ({proc.returncode})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
