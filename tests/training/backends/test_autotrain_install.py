"""AutoTrain's background build: its states, one build at a time (threads and processes), the
stamp that makes a restart skip it, failure and retry. A fake setup command stands in for
scripts/setup_autotrain.sh (the real install runs in the slow tests of test_autotrain.py);
the script itself runs here with a fake Python that builds a fake venv in milliseconds."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.assets import wait_for
from training.backends import autotrain_config as atc
from training.backends import autotrain_install as ai
from training.paths import REPO_ROOT

FAKE_SETUP = """\
import os, pathlib, sys, time
venv = pathlib.Path(os.environ["TUNESMITH_AUTOTRAIN_VENV"])
with open(sys.argv[1], "a") as f:  # one line per build started
    f.write("started\\n")
print("[1/2] creating the venv <here>", flush=True)
print("token:", "present" if "HF_TOKEN" in os.environ else "absent", flush=True)
gate, deadline = pathlib.Path(sys.argv[2]), time.monotonic() + 60
while not gate.exists() and time.monotonic() < deadline:  # the test says when it may end
    time.sleep(0.02)
print("[2/2] installing", flush=True)
(venv / "bin").mkdir(parents=True, exist_ok=True)
if sys.argv[3] == "0":
    (venv / "bin" / "autotrain").write_text("")
    (venv / ".tunesmith-installed").write_text(sys.argv[4] + "-cpu")
sys.exit(int(sys.argv[3]))
"""


def script_hash() -> str:
    import hashlib

    return hashlib.sha256(ai.SCRIPT.read_bytes()).hexdigest()[:16]


class FakeSetup:
    """setup_command replaced by FAKE_SETUP: counts builds, waits for open(), exits `code`."""

    def __init__(self, tmp_path: Path, monkeypatch, code: int = 0):
        self.starts, self.gate = tmp_path / "starts", tmp_path / "gate"
        self.code = code
        command = [sys.executable, "-c", FAKE_SETUP, str(self.starts), str(self.gate)]
        monkeypatch.setattr(
            atc, "setup_command", lambda gpu: [*command, str(self.code), script_hash()]
        )

    def count(self) -> int:
        return len(self.starts.read_text().split()) if self.starts.exists() else 0

    def open(self) -> None:
        self.gate.touch()

    def finish(self) -> ai.InstallState:
        self.open()
        wait_for(lambda: ai.install_state().state != "building", what="the build's end")
        return ai.install_state()


@pytest.fixture
def venv(tmp_path, monkeypatch):
    path = tmp_path / "venv-autotrain"
    monkeypatch.setenv("TUNESMITH_AUTOTRAIN_VENV", str(path))
    monkeypatch.setattr(ai, "_builder", None)  # a fresh app process
    yield path
    if ai._builder is not None:
        ai._builder.join(timeout=30)


def restart(monkeypatch) -> None:
    """What a new app process knows: nothing in memory, only the files."""
    monkeypatch.setattr(ai, "_builder", None)


def test_progress_lines_show_while_building_then_it_is_ready(venv, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    fake = FakeSetup(tmp_path, monkeypatch)
    assert ai.install_state().state == "not built"
    assert ai.start_background_install().state == "building"
    state = wait_for(
        lambda: (s := ai.install_state()) and "creating" in s.log_tail and s, what="line 1"
    )
    assert state.state == "building"  # line 1 is readable before the build ends
    assert state.log_tail == "[1/2] creating the venv <here>\ntoken: absent"  # no Hub token
    assert int(ai.lock_path().read_text()) == os.getpid()
    done = fake.finish()
    assert done.state == "ready" and done.reason.startswith("AutoTrain Advanced 0.8.36 (cpu")
    assert done.log_tail.endswith("[2/2] installing\nAutoTrain is ready.")
    assert (venv / atc.STAMP).read_text() == f"{script_hash()}-cpu"  # the venv it was handed


def test_a_second_start_while_building_starts_nothing(venv, tmp_path, monkeypatch):
    fake = FakeSetup(tmp_path, monkeypatch)
    ai.start_background_install()
    wait_for(fake.count, what="the build's start")
    assert ai.start_background_install().state == "building"  # a click while building
    # A second app process (another start) finds the lock held and starts no thread.
    probe = (
        "import threading\n"
        "from training.backends import autotrain_config as atc, autotrain_install as ai\n"
        "atc.setup_command = lambda gpu: ['false']\n"
        "print(ai.start_background_install().state, threading.active_count())\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, cwd=REPO_ROOT
    )
    assert out.stdout.split() == ["building", "1"], out.stderr
    assert fake.finish().state == "ready" and fake.count() == 1


def test_a_finished_build_is_reused_after_a_restart_and_a_half_built_one_is_not(
    venv, tmp_path, monkeypatch
):
    fake = FakeSetup(tmp_path, monkeypatch)
    ai.start_background_install()
    assert fake.finish().state == "ready"
    restart(monkeypatch)
    assert ai.start_background_install().state == "ready"  # the stamp: nothing runs
    assert ai._builder is None and fake.count() == 1
    (venv / atc.STAMP).write_text("0123456789abcdef-cpu")  # built by an older script
    assert ai.install_state().state == "ready"  # still usable meanwhile...
    ai.start_background_install()  # ...but the current script brings it up to date
    assert fake.finish().state == "ready" and fake.count() == 2
    restart(monkeypatch)
    (venv / atc.STAMP).unlink()  # interrupted half-way: no stamp
    assert ai.install_state().state == "not built"
    assert ai.start_background_install().state == "building"
    assert fake.finish().state == "ready" and fake.count() == 3


def test_a_failed_build_says_why_survives_a_restart_and_can_be_retried(venv, tmp_path, monkeypatch):
    fake = FakeSetup(tmp_path, monkeypatch, code=3)
    ai.start_background_install()
    failed = fake.finish()
    assert failed.state == "failed"
    assert failed.reason == "The install failed (exit code 3); the lines above say why."
    assert "[2/2] installing" in failed.log_tail and failed.log_tail.endswith(failed.reason)
    restart(monkeypatch)
    assert ai.install_state() == failed  # the page after a restart still says why
    fake.code = 0
    assert ai.start_background_install().state == "building"  # retry
    assert fake.finish().state == "ready" and not ai.failed_path().exists()


def test_a_build_that_cannot_run_fails_plainly(venv, monkeypatch):
    monkeypatch.setattr(atc, "setup_command", lambda gpu: ["/no/such/setup"])
    ai.start_background_install()
    ai._builder.join(timeout=10)
    state = ai.install_state()
    assert state.state == "failed" and state.reason.startswith("The install could not run:")


def test_log_tail_keeps_the_last_lines_and_a_redrawn_lines_last_state(venv):
    lines = [f"line {i}" for i in range(30)] + ["bar 10%\rbar 100%", ""]
    ai.log_path().write_text("\n".join(lines))
    assert ai.log_tail(3).split("\n") == ["line 28", "line 29", "bar 100%"]


# --- the setup script itself, with a fake Python --------------------------------------

FAKE_PYTHON = """\
#!/bin/bash
# "python -m venv DIR": a venv whose pip only logs and provides bin/autotrain
mkdir -p "$3/bin" && touch "$3/pyvenv.cfg"
printf '#!/bin/bash\\necho "pip $*" >> "$(dirname "$0")/../pip.log"\\n\
touch "$(dirname "$0")/autotrain"; chmod +x "$(dirname "$0")/autotrain"\\n' > "$3/bin/pip"
printf '#!/bin/bash\\nexit 0\\n' > "$3/bin/python"
chmod +x "$3/bin/pip" "$3/bin/python"
"""


def test_the_setup_script_builds_where_it_is_told_and_rebuilds_a_half_built_venv(
    venv, tmp_path, monkeypatch
):
    python = tmp_path / "fake-python"
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    env = {**os.environ, "PYTHON": str(python), "TUNESMITH_AUTOTRAIN_VENV": str(venv)}

    def setup() -> str:
        return subprocess.run(
            ["bash", str(ai.SCRIPT)], env=env, check=True, capture_output=True, text=True
        ).stdout

    assert f"AutoTrain ready: {venv}/bin/autotrain" in setup()
    assert (venv / atc.STAMP).read_text().strip() == f"{script_hash()}-cpu"
    assert ai.up_to_date() and ai.install_state().state == "ready"
    pip_calls = (venv / "pip.log").read_text()
    assert setup() == "" and (venv / "pip.log").read_text() == pip_calls  # built: a no-op
    (venv / atc.STAMP).unlink()  # half-built
    (venv / "leftover").touch()
    setup()
    assert not (venv / "leftover").exists() and ai.up_to_date()  # wiped, then built again
    # A folder that is not a venv is never removed, whatever the variable says.
    other = tmp_path / "not-a-venv"
    other.mkdir()
    (other / "keep").touch()
    env["TUNESMITH_AUTOTRAIN_VENV"] = str(other)
    setup()
    assert (other / "keep").exists()


def test_the_venv_is_in_the_repo_when_built_there_else_under_the_apps_home(tmp_path, monkeypatch):
    monkeypatch.delenv("TUNESMITH_AUTOTRAIN_VENV", raising=False)
    local = REPO_ROOT / ".venv-autotrain"
    expected = local if local.exists() else tmp_path / "home" / "venv-autotrain"
    assert atc.venv_dir() == expected  # conftest: TUNESMITH_HOME=tmp_path/home
    monkeypatch.setattr(atc, "REPO_ROOT", tmp_path / "fresh-clone")  # no .venv-autotrain
    monkeypatch.setattr(atc, "home", lambda: Path("/data/tunesmith"))
    assert atc.venv_dir() == Path("/data/tunesmith/venv-autotrain")  # a Space's storage
    monkeypatch.setenv("TUNESMITH_AUTOTRAIN_VENV", str(tmp_path / "v"))
    assert atc.venv_dir() == tmp_path / "v"
