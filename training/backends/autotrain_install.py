"""AutoTrain's venv built in the background, one build at a time, its state kept on disk.

    start_background_install()   # at app start (TUNESMITH_AUTOTRAIN=1) and from the Install button
    install_state()              # InstallState: not built / building / ready / failed + log tail

The build is scripts/setup_autotrain.sh (autotrain_config.install) into venv_dir(), which on
a Space is under TUNESMITH_HOME: persistent storage when the Space has it, so a restart finds
the venv built. Files under TUNESMITH_HOME:

    autotrain-install.lock     flock'ed for the whole build, by us and by the script (it
                               inherits the descriptor), so a second app start, a second click
                               or an app restarted while an orphaned script still runs never
                               starts a second pip into the same venv; holds the builder's pid
    autotrain-install.log      the last build's output
    autotrain-install.failed   why the last build failed; removed when a build starts

The marker is the script's stamp (VENV/.tunesmith-installed = "<script hash>-<cpu|gpu>",
written last): a venv stamped by the current script is reused without running anything; a
half-built one (no stamp) is wiped and built again by the script.
"""

import fcntl
import hashlib
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from training.backends import autotrain_config as atc
from training.hardware import default_device
from training.paths import REPO_ROOT, home

log = logging.getLogger(__name__)
SCRIPT = REPO_ROOT / "scripts" / "setup_autotrain.sh"
TAIL_LINES = 12
_guard = threading.Lock()  # check-then-start is one step within this process
_builder: threading.Thread | None = None


@dataclass(frozen=True)
class InstallState:
    state: Literal["not built", "building", "ready", "failed"]
    log_tail: str = ""  # the build's last output lines (the last build's, when not building)
    reason: str = ""  # ready: what is installed; failed: why; not built: how to build it


def lock_path() -> Path:
    return home() / "autotrain-install.lock"


def log_path() -> Path:
    return home() / "autotrain-install.log"


def failed_path() -> Path:
    return home() / "autotrain-install.failed"


def up_to_date() -> bool:
    """Built completely, by the setup script as it is now (the stamp holds its hash)."""
    try:
        stamp = (atc.venv_dir() / atc.STAMP).read_text(encoding="utf-8").strip()
    except OSError:
        return False
    script_hash = hashlib.sha256(SCRIPT.read_bytes()).hexdigest()[:16]  # as the script does
    return stamp.rsplit("-", 1)[0] == script_hash and atc.available()[0]


def start_background_install(gpu: bool | None = None) -> InstallState:
    """Build AutoTrain's venv in a thread, unless it is up to date or being built (here or by
    another process). gpu: the CUDA build; None = when this machine has an NVIDIA GPU."""
    global _builder
    with _guard:
        fd = None if up_to_date() else _take_lock()
        if fd is not None:
            failed_path().unlink(missing_ok=True)
            log_path().write_text("", encoding="utf-8")
            _builder = threading.Thread(target=_build, args=(fd, gpu), name="autotrain-install")
            _builder.daemon = True  # the script holds the lock on its own if the app exits
            _builder.start()
    return install_state()


def _take_lock() -> int | None:
    """The build lock's descriptor, locked, with our pid in it; None while a build holds it."""
    fd = os.open(lock_path(), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def _build(fd: int, gpu: bool | None) -> None:
    """The thread: run the setup script into the log; record a failure before unlocking, so
    no reader ever sees 'not building, not built, not failed' in between."""
    failure = None
    try:
        with open(log_path(), "a", encoding="utf-8") as out:
            try:
                cuda = default_device().startswith("cuda") if gpu is None else gpu
                for line in atc.install(gpu=cuda, pass_fds=(fd,)):
                    out.write(line + "\n")
                    out.flush()
                ok, reason = atc.available()
                if not ok:
                    failure = f"The install finished but AutoTrain is still unavailable: {reason}"
            except RuntimeError as e:
                failure = str(e)
            except Exception as e:  # a thread has no caller to raise to: keep it for the page
                log.exception("building AutoTrain's venv failed")
                failure = f"The install could not run: {e}"
            out.write(f"{failure or 'AutoTrain is ready.'}\n")
    finally:
        if failure:
            failed_path().write_text(failure, encoding="utf-8")
        os.close(fd)  # the lock goes once the script has exited too


def install_state() -> InstallState:
    """Where the build stands (cheap: a lock probe and two small reads; the page polls it)."""
    tail = log_tail()
    if _building():
        return InstallState("building", tail)
    ok, reason = atc.available()
    if ok:
        return InstallState("ready", tail, reason)
    try:
        return InstallState("failed", tail, failed_path().read_text(encoding="utf-8").strip())
    except FileNotFoundError:
        return InstallState("not built", tail, reason)


def _building() -> bool:
    with _guard:
        if _builder is not None and _builder.is_alive():
            return True
        fd = os.open(lock_path(), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # released by the close below
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False


def log_tail(lines: int = TAIL_LINES) -> str:
    """The log's last lines; of a line redrawn with carriage returns, its last state."""
    try:
        with open(log_path(), "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 16384))
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    rows = [row.rstrip("\r").rsplit("\r", 1)[-1] for row in text.split("\n")]
    return "\n".join([row for row in rows if row.strip()][-lines:])
