"""The app as its visitors reach it: `python app.py` on a free port (serve; app_process
with any interpreter and environment), and its queue HTTP API, the one the page itself
speaks (Tab): every event, private ones included, is reachable this way with any
arguments, so tests call them as an attacker would.
"""

import contextlib
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import httpx

from training.paths import REPO_ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"app exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "config", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{url}config did not answer within {timeout} s")


# The real SmolLM2-135M-Instruct, converted by scripts/setup.sh into the default state root.
CONVERTED_SMOLLM2 = REPO_ROOT / ".tunesmith" / "models" / "SmolLM2-135M-Instruct"


def model_for_test(tiny_model_dir: Path) -> str:
    ready = (CONVERTED_SMOLLM2 / "config.json").is_file()
    return str(CONVERTED_SMOLLM2 if ready else tiny_model_dir)


@contextlib.contextmanager
def serve(tmp_path: Path, model: str, **env_extra: str):
    """`python app.py` on a free port with its own state root; no traceback may be logged.
    env_extra: more environment variables (the app's settings)."""
    port = free_port()
    env = {
        **os.environ,
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_TEMP_DIR": str(tmp_path / "gradio"),
        "TUNESMITH_HOME": str(tmp_path / "home"),
        "TUNESMITH_DEFAULT_MODEL": model,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
        **env_extra,
    }
    with app_process(sys.executable, env, tmp_path / "app.log") as url:
        yield url


@contextlib.contextmanager
def launched_app(settings):
    """The whole app (app.build_app) in this process, launched on a free port; yields its URL.
    In-process, so a test can stand in for the Hub (monkeypatch) behind the app's handlers."""
    import app

    demo = app.build_app(settings)
    port = free_port()
    demo.launch(
        server_name="127.0.0.1",
        server_port=port,
        prevent_thread_lock=True,
        quiet=True,
        **app.launch_options(settings),
    )
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


@contextlib.contextmanager
def app_process(python: str | Path, env: dict, log_path: Path, timeout: float = 90):
    """`PYTHON app.py` in the repository root with exactly env (GRADIO_SERVER_PORT set),
    output to log_path; yields its URL once /config answers; no traceback may be logged."""
    log = open(log_path, "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [str(python), "app.py"], cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{env['GRADIO_SERVER_PORT']}/"
    try:
        wait_ready(url, proc, timeout)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()
    text = log_path.read_text()
    # asyncio's "Exception ignored in BaseEventLoop.__del__" (a loop garbage-collected after
    # its self-pipe closed, seen at a Space-mode start) is interpreter noise, not a handler's.
    text = re.sub(
        r"Exception ignored in: <function BaseEventLoop.__del__.*?\n(?=\S)(?!Traceback| )",
        "",
        text,
        flags=re.S,
    )
    assert "Traceback" not in text, text


class Tab:
    """One open page: a session on the app's queue."""

    def __init__(self, url: str, config: dict):
        self.http = httpx.Client(base_url=url, timeout=180)
        self.session = secrets.token_hex(8)
        self.config = config

    def call(self, dep: dict, data: list) -> list:
        """Run one event as the page does (join the queue, read its stream); its outputs."""
        body = {"data": data, "fn_index": dep["id"], "trigger_id": dep["targets"][0][0]}
        joined = self.http.post(
            "gradio_api/queue/join", json={**body, "session_hash": self.session}
        )
        joined.raise_for_status()
        event = joined.json()["event_id"]
        params = {"session_hash": self.session}
        with self.http.stream("GET", "gradio_api/queue/data", params=params) as stream:
            for line in stream.iter_lines():
                if not line.startswith("data:"):
                    continue
                msg = json.loads(line[5:])
                if msg.get("msg") == "unexpected_error":
                    raise RuntimeError(msg.get("message"))
                if msg.get("msg") == "process_completed" and msg.get("event_id") == event:
                    if not msg.get("success"):
                        raise RuntimeError(f"{dep.get('api_name')}: {msg.get('output')}")
                    return msg["output"]["data"]
        raise RuntimeError("the event stream ended before the event completed")

    def identify(self, browser_id: str | None = None) -> str:
        """What opening the page does first: the page-load event that says who the visitor is
        (components/visitor.py). browser_id: the id a browser kept (None: a first visit).
        Returns the browser id to keep (the owner itself is server-side state, never sent);
        this session's events then act as that visitor."""
        kinds = {c["id"]: c["type"] for c in self.config["components"]}
        who = ["browserstate", "state", "state"]
        dep = next(
            d for d in self.config["dependencies"] if [kinds.get(o) for o in d["outputs"]] == who
        )
        return self.call(dep, [browser_id])[0]

    def upload(self, path: Path) -> dict:
        files = {"files": (path.name, path.read_bytes(), "application/octet-stream")}
        response = self.http.post("gradio_api/upload", files=files)
        response.raise_for_status()
        server_path = response.json()[0]
        return {"path": server_path, "orig_name": path.name, "meta": {"_type": "gradio.FileData"}}


def event(config: dict, *, api_name=None, button=None, trigger=None) -> dict:
    """A dependency of the page, by API name, by the label of the button that fires it, or
    by the type of component whose event fires it (the timer)."""
    kinds = {c["id"]: c for c in config["components"]}
    for dep in config["dependencies"]:
        source = kinds.get(dep["targets"][0][0], {}) if dep["targets"] else {}
        if (
            (api_name and dep.get("api_name") == api_name)
            or (button and source.get("props", {}).get("value") == button)
            or (trigger and source.get("type") == trigger)
        ):
            return dep
    raise LookupError(api_name or button or trigger)


def run_poll(config: dict) -> dict:
    """The Train tab's timer event that lists the visitor's runs (outputs the #ts-jobs table)."""
    jobs = next(
        c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == "ts-jobs"
    )
    return next(
        d
        for d in config["dependencies"]
        if jobs in d["outputs"] and event_kind(config, d) == "timer"
    )


def event_kind(config: dict, dep: dict) -> str | None:
    kinds = {c["id"]: c["type"] for c in config["components"]}
    return kinds.get(dep["targets"][0][0]) if dep["targets"] else None


def inputs(config: dict, dep: dict, **by_label) -> list:
    """The page's initial values for an event's inputs (None for server-side state), with
    the components labelled as given set."""
    kinds = {c["id"]: c for c in config["components"]}
    values = []
    for cid in dep["inputs"]:
        props = kinds[cid].get("props", {})
        value = None if kinds[cid]["type"] in ("state", "browserstate") else props.get("value")
        values.append(by_label.get(props.get("label"), value))
    return values
