"""Load: `python app.py` with one run training and 20 visitors at once for 40 s.

Each visitor is two open tabs' worth of traffic over Gradio's queue HTTP API, the one the
page itself speaks (the Train tab's timer is a private event, which gradio_client refuses
to call): one session refreshes the run list every 2 s, the other checks a small file on the
Data tab and chats in the Playground in turn, a second's thought in between. Half the
visitors follow the training visitor's runs (a list with a live run), half their own.
Prints p50 / p95 per endpoint; no request may fail. About 2 minutes on 2 cores.
"""

import json
import os
import signal
import statistics
import threading
import time
from contextlib import suppress
from pathlib import Path

import httpx
import pytest

from tests.app_server import Tab, event, inputs, run_poll, serve
from tests.assets import wait_for
from training.jobs.store import DB_NAME, JobStore

pytestmark = pytest.mark.slow
VISITORS, SECONDS = 20, 40


def write_chats(path: Path, n: int = 30) -> Path:
    rows = [
        {
            "messages": [
                {"role": "user", "content": f"Tell me fact {i}."},
                {"role": "assistant", "content": f"The answer is {i * 7 % 13}."},
            ]
        }
        for i in range(n)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def start_training(url: str, config: dict, data: Path) -> tuple[str, str]:
    """Open the page, check the file and press Start as a visitor would; returns (the
    notice, the visitor's browser id)."""
    tab = Tab(url, config)
    trainer = tab.identify()
    check = event(config, api_name="upload")
    values = inputs(config, check)
    values[0] = tab.upload(data)
    tab.call(check, values)  # the session's DataChoice, which Start reads
    start = event(config, button="Start training")
    values = inputs(
        config, start, **{"Max steps (updates)": 5000, "Save steps": 0, "Eval steps": 0}
    )
    return tab.call(start, values)[0], trainer


def visitor(url: str, config: dict, browser_id: str | None = None) -> Tab:
    """A page opened by a visitor: a new one, or one coming back with their browser's id."""
    tab = Tab(url, config)
    tab.identify(browser_id)
    return tab


def run_list(tab: Tab) -> list:
    return tab.call(run_poll(tab.config), [None, None, None])


def percentile(times: list[float], q: int) -> float:
    return (
        statistics.quantiles(times, n=100, method="inclusive")[q - 1]
        if len(times) > 1
        else times[0]
    )


@pytest.fixture
def app_url(tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.setenv("TUNESMITH_MODEL_DIRS", str(tiny_model_dir.parent))
    try:
        with serve(tmp_path, str(tiny_model_dir)) as url:
            yield url
    finally:  # the training worker outlives the app by design: stop it here
        db = tmp_path / "home" / DB_NAME
        for job in JobStore(db).running() if db.is_file() else []:
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(job.pid, signal.SIGKILL)


def test_twenty_visitors_while_a_run_trains(app_url, tmp_path, tiny_model_dir):
    config = httpx.get(f"{app_url}config", timeout=30).json()
    data = write_chats(tmp_path / "chats.jsonl")
    notice, trainer = start_training(app_url, config, data)
    assert "queued" in notice, notice
    watcher = visitor(app_url, config, trainer)  # the trainer's second device

    def training() -> str | None:
        status = run_list(watcher)[2]
        return status if "running" in status and "step" in status else None

    try:
        wait_for(training, timeout=120, interval=1, what="the run to train")
    except AssertionError:
        raise AssertionError(f"the run did not train: {run_list(watcher)[2]}") from None

    results: list[tuple[str, float, str | None]] = []  # (endpoint, seconds, error)
    deadline = time.monotonic() + SECONDS

    def timed(name: str, fn) -> None:
        started = time.monotonic()
        try:
            fn()
            error = None
        except Exception as e:  # counted, and shown below
            error = f"{type(e).__name__}: {e}"[:300]
        results.append((name, time.monotonic() - started, error))

    def poller(browser_id: str | None) -> None:
        tab = visitor(app_url, config, browser_id)
        while time.monotonic() < deadline:
            started = time.monotonic()
            timed("run list (poll)", lambda: run_list(tab))
            time.sleep(max(0.0, 2.0 - (time.monotonic() - started)))

    def actor(browser_id: str | None) -> None:
        tab = visitor(app_url, config, browser_id)
        check, send = event(config, api_name="upload"), event(config, api_name="playground_send")

        def validate():
            values = inputs(config, check)
            values[0] = tab.upload(data)
            verdict = tab.call(check, values)[0]
            assert "ts-error" not in json.dumps(verdict), verdict

        def chat():
            values = inputs(config, send, **{"Max new tokens": 16})
            values[0] = "Tell me fact 3."
            out = tab.call(send, values)
            assert out[2] and not str(out[-1]).startswith("⚠️"), out[-1]

        while time.monotonic() < deadline:
            timed("validate a file", validate)
            time.sleep(1.0)
            timed("playground chat", chat)
            time.sleep(1.0)

    threads = []
    for i in range(VISITORS):
        browser_id = trainer if i % 2 == 0 else None  # half are the trainer, half newcomers
        threads += [threading.Thread(target=f, args=(browser_id,)) for f in (poller, actor)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=SECONDS + 180)

    rows = []
    for name in sorted({r[0] for r in results}):
        times = [s for n, s, _ in results if n == name]
        errors = sum(1 for n, _, e in results if n == name and e)
        rows.append((name, len(times), errors, percentile(times, 50), percentile(times, 95)))
    print(f"\n{VISITORS} visitors for {SECONDS} s while a run trains:")
    print(f"{'endpoint':<18} {'calls':>6} {'errors':>6} {'p50 s':>7} {'p95 s':>7}")
    for name, calls, errors, p50, p95 in rows:
        print(f"{name:<18} {calls:>6} {errors:>6} {p50:>7.2f} {p95:>7.2f}")
    failed = [r for r in results if r[2]]
    assert not failed, failed[:5]
    assert {r[0] for r in rows} == {"run list (poll)", "validate a file", "playground chat"}
    assert training(), "the run kept training through the load"
