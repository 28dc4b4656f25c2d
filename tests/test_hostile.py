"""The hostile-input corpus (tests/hostile.py) against the CLI and the running app's API.

Every case must end in a clear message: a report whose errors say what is wrong and how to
fix it, or a one-line refusal; never a traceback, and the app keeps serving other visitors.
The app is reached through its queue HTTP API, as an attacker would reach it: private
events included, any arguments, made-up visitor ids.
"""

import json
import subprocess
import sys

import httpx
import pytest

from tests.app_server import Tab, event, inputs, serve
from tests.hostile import chats, config_corpus, data_corpus
from training.data import cli
from training.jobs import rundir
from training.paths import REPO_ROOT

pytestmark = pytest.mark.slow  # writes a 1 GB gzip bomb and 8 MB lines: ~1-2 min each


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return data_corpus(tmp_path_factory.mktemp("hostile-data"))


def test_the_corpus_is_large_and_varied(corpus, tmp_path):
    configs = config_corpus(tmp_path)
    assert len(corpus) + len(configs) >= 40
    assert {expect for _, expect in corpus} == {"refused", "ready", "either"}


def test_every_data_case_gets_a_clear_report_from_the_cli(corpus, capsys):
    problems = []
    for path, expect in corpus:
        code = cli.main([str(path), "--json"])
        out, err = capsys.readouterr()
        name = path.name
        if "Traceback" in out + err or code not in (0, 1, 2):
            problems.append(f"{name}: exit {code}, {err[-300:]}")
            continue
        report = json.loads(out)
        errors = report["errors"]
        for finding in errors + report["warnings"]:
            if not (finding["message"].strip() and finding["hint"].strip()):
                problems.append(f"{name}: a finding without message or hint: {finding}")
        if expect == "refused" and not errors:
            problems.append(f"{name}: accepted, expected a refusal ({report['rows']} rows)")
        if expect == "ready" and errors:
            problems.append(f"{name}: refused: {errors[0]['message']}")
    assert not problems, "\n".join(problems)


def test_every_hostile_config_gets_one_line_and_exit_2_from_the_cli(tmp_path):
    problems = []
    for path, expected in config_corpus(tmp_path / "configs"):
        run_dir = tmp_path / "runs" / path.stem
        done = subprocess.run(
            [sys.executable, "-m", "training", "train", str(path), "--run-dir", str(run_dir)],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        lines = done.stderr.strip().splitlines()
        if done.returncode != 2 or len(lines) != 1 or "Traceback" in done.stderr:
            problems.append(f"{path.name}: exit {done.returncode}: {done.stderr[-300:]}")
        elif expected.lower() not in lines[0].lower():
            problems.append(f"{path.name}: {lines[0]!r} does not say {expected!r}")
        status = rundir.read_status(run_dir)
        if status.get("status") != "failed" or not status.get("reason"):
            problems.append(f"{path.name}: status.json is {status}")
    assert not problems, "\n".join(problems)


@pytest.fixture
def app(tmp_path, tiny_model_dir):
    # A 64 MB upload cap: the 1 GB gzip bomb (1 MB on the wire) gets in and must be stopped
    # by the decompressed-size limit.
    env = {"TUNESMITH_MAX_UPLOAD_MB": "64", "TUNESMITH_MAX_JOBS_PER_VISITOR": "2"}
    with serve(tmp_path, str(tiny_model_dir), **env) as url:
        yield url, httpx.get(f"{url}config", timeout=30).json()


def test_the_app_answers_every_case_plainly_and_keeps_serving(app, corpus, tmp_path):
    url, config = app
    tab = Tab(url, config)
    check = event(config, api_name="upload")
    problems = []
    for path, expect in corpus:
        values = inputs(config, check)
        values[0] = tab.upload(path)
        try:
            verdict = json.dumps(tab.call(check, values)[0])
        except RuntimeError as e:  # the event failed: what a visitor would see as "Error"
            if not (expect == "refused" and "Invalid file type" in str(e)):  # gradio's own
                problems.append(f"{path.name}: {e}")
            continue
        if "Traceback" in verdict or not verdict.strip('"'):
            problems.append(f"{path.name}: {verdict[:300]}")
        if expect == "refused" and "ts-error" not in verdict:
            problems.append(f"{path.name}: no error shown")
        if expect == "ready" and "Ready to train" not in verdict:
            problems.append(f"{path.name}: not ready: {verdict[:300]}")
    assert not problems, "\n".join(problems)
    # Still serving: the page and a small good file, for a new visitor.
    assert httpx.get(url, timeout=30).status_code == 200
    good = tmp_path / "good.jsonl"
    good.write_text(chats(1))
    fresh = Tab(url, config)
    values = inputs(config, check)
    values[0] = fresh.upload(good)
    assert "Ready to train" in json.dumps(fresh.call(check, values)[0])


def test_the_apps_train_endpoint_refuses_hostile_arguments(app, tmp_path, tiny_model_dir):
    url, config = app
    data = tmp_path / "chats.jsonl"
    data.write_text(chats(20))
    check = event(config, api_name="upload")
    upload = Tab(url, config).upload(data)
    start = event(config, button="Start training")
    labels = {c["id"]: c.get("props", {}).get("label") for c in config["components"]}
    where = {labels[cid]: i for i, cid in enumerate(start["inputs"])}

    def visitor(browser_id=None) -> Tab:
        """A page as an API caller opens it: identified on load (any browser id it sends
        that the app did not make gets a new one), its data checked."""
        tab = Tab(url, config)
        tab.identify(browser_id)
        values = inputs(config, check)
        values[0] = upload
        tab.call(check, values)  # this session's checked data, which Start reads
        return tab

    def press(tab, **changes):
        values = inputs(config, start)
        values[0] = "hf:alice"  # the owner is the server's: a sent value is ignored
        for label, value in changes.items():
            values[where[label]] = value
        return str(tab.call(start, values)[0])

    # A page that never identified its visitor cannot start anything.
    assert "still loading" in press(Tab(url, config))

    other_run = tmp_path / "home" / "runs" / "someone-elses-run" / "export" / "merged"
    refusals = [
        ({"Max steps (updates)": 10**9}, "at most"),
        ({"Epochs": None}, "Epochs is empty"),
        ({"Learning rate": -1}, "⚠️"),
        ({"Base model": str(other_run)}, "Only models from the list"),
        ({"Base model": "../../../etc"}, "Only models from the list"),
        ({"Base model": "/etc/passwd"}, "Only models from the list"),
        ({"Trust remote code": True}, "own code are off"),
    ]
    mallory = visitor("hf:alice")  # claims to be a signed-in visitor: gets a new id instead
    for changes, expected in refusals:
        notice = press(mallory, **changes)
        assert notice.startswith("⚠️") and expected in notice, (changes, notice)
        assert "Traceback" not in notice
    # New visitors: each is held to its own limit, and the queue as a whole to its.
    accepted = [press(visitor(), **{"Max steps (updates)": 5}) for i in range(3)]
    assert all(n.startswith("Run **") for n in accepted), accepted
    flooder = visitor()
    flood = [press(flooder, **{"Max steps (updates)": 5}) for _ in range(4)]
    assert [n.startswith("Run **") for n in flood] == [True, True, False, False], flood
    assert "You already have 2 runs" in flood[-1]
    assert httpx.get(url, timeout=30).status_code == 200
