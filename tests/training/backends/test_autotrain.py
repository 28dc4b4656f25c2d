"""The AutoTrain backend. Pure tests replay AutoTrain output captured from the real
0.8.36 CLI (tests/fixtures/autotrain/); AutoTrain's own parser validates our YAML; a fake
`autotrain` (a script dumping its environment) checks what reaches it and how the process
tree is stopped; slow tests run the real AutoTrain from .venv-autotrain on the tiny model,
offline, through the worker and the job runner. CI builds that venv
(scripts/setup_autotrain.sh), so none of this is skipped there."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from tests.assets import wait_for
from training.backends import autotrain_config as atc
from training.backends.autotrain import stop_group
from training.backends.autotrain_log import AutoTrainLog
from training.config import RunConfig
from training.jobs import rundir
from training.paths import REPO_ROOT

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "autotrain"
ENV_SECRETS = {
    "SPACE_ID": "me/space",
    "ENDPOINT_ID": "me/ep",
    "HF_TOKEN": "hf_secret",
    "HUGGING_FACE_HUB_TOKEN": "hf_secret2",
    "OAUTH_CLIENT_SECRET": "s3",
}


def replay(name: str, chunk: int = 97, **kw) -> tuple[AutoTrainLog, list]:
    log, events = AutoTrainLog(**kw), []
    text = (FIXTURES / name).read_text(encoding="utf-8")
    for i in range(0, len(text), chunk):  # odd chunk sizes: fragments split anywhere
        events += log.feed(text[i : i + chunk])
    return log, events + log.flush()


def chats(n: int = 40) -> list[dict]:
    return [
        {
            "messages": [
                {"role": "user", "content": f"What is {i}+{i}?"},
                {"role": "assistant", "content": f"The answer is {2 * i}."},
            ]
        }
        for i in range(n)
    ]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def autotrain_cfg(model, data, **kw) -> RunConfig:
    base = dict(
        model=str(model),
        data=str(data),
        backend="autotrain",
        epochs=2,
        batch_size=2,
        grad_accum=1,
        max_length=64,
        logging_steps=2,
        learning_rate=1e-3,
        lora_r=8,
        lora_alpha=16,
        validation_split=0.1,
    )
    return RunConfig(**{**base, **kw})


def worker(cfg: RunConfig, run_dir: Path, env: dict, *extra: str) -> subprocess.Popen:
    """The worker as the job runner starts it: own session, output into train.log."""
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg.to_yaml(run_dir / rundir.CONFIG)
    cmd = [sys.executable, "-m", "training", "train", str(run_dir / rundir.CONFIG)]
    with open(run_dir / rundir.LOG, "ab") as log:
        return subprocess.Popen(
            [*cmd, "--run-dir", str(run_dir), *extra],
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def proc_env(pid: int) -> dict:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode(errors="replace").split("=", 1) for item in raw if b"=" in item)


# --- the log parser, on real captured output -------------------------------------------


def test_success_log_becomes_progress_records():
    log, events = replay("success.log", tokens_per_step=2 * 64)
    records = [v for k, v in events if k == "progress"]
    assert [r["step"] for r in records] == list(range(2, 67, 2))  # "Logging steps: 2"
    assert {r["total_steps"] for r in records} == {66}  # from the trainer's tqdm bar
    assert records[0]["loss"] == 6.0872 and records[-1]["loss"] == 5.6669
    assert records[-1]["epoch"] == 2.0 and records[-1]["learning_rate"] == 0.0
    assert records[-1]["eta"] == 0.0 and records[5]["eta"] > 0
    assert all(r["tokens_per_second"] > 0 for r in records[1:])
    assert log.summary["train_loss"] == pytest.approx(5.8309, abs=1e-4)
    assert log.failure() is None
    phases = [v for k, v in events if k == "phase"]
    assert phases == [
        "starting the trainer",
        "preparing data",
        "loading the model",
        "training",
        "saving the adapter",
    ]
    lines = [v for k, v in events if k == "line"]
    assert not any("it/s]" in line or "examples/s]" in line for line in lines)  # no redraws
    assert any("Finished training, saving model" in line for line in lines)
    assert any(
        line.startswith("/work/") and "UserWarning" in line for line in lines
    )  # was after a bar


def test_failed_run_exiting_0_is_recognised_with_autotrains_message():
    log, events = replay("bad_model.log")
    assert log.failure().startswith("Incorrect path_or_model_id: '/tmp/atx/no-such-model'")
    assert not [v for k, v in events if k == "progress"]


def test_bar_glued_to_a_record_and_bars_that_are_not_the_trainers():
    log = AutoTrainLog(logging_steps=1, tokens_per_step=100)
    head = "INFO     | 2026-01-01 10:00:00 | autotrain."
    text = (
        "Map: 100%|██████████| 20/20 [00:00<00:00, 1368.90 examples/s]\r\n"
        f"{head}trainers.common:on_train_begin:386 - Starting to train...\n"
        "\r  0%|          | 0/4 [00:00<?, ?it/s]"
        f"\r 25%|██▌       | 1/4 [00:02<00:06, 2.00s/it]{head}trainers.common:on_log:367 - "
        "{'loss': 1.5, 'learning_rate': 0.1, 'epoch': 1.0}\n"
        "\r100%|██████████| 9/9 [00:01<00:00, 9.00it/s]"  # an evaluation bar: other total
        f"\n{head}trainers.common:on_log:367 - {{'eval_loss': 1.25, 'epoch': 1.0}}\n"
    )
    events = log.feed(text) + log.flush()
    progress = [v for k, v in events if k == "progress"]
    assert progress[0] == {
        "step": 1,
        "total_steps": 4,
        "epoch": 1.0,
        "loss": 1.5,
        "learning_rate": 0.1,
        "tokens_per_second": 50.0,
        "elapsed": 2.0,
        "eta": 6.0,
    }
    assert progress[1]["eval_loss"] == 1.25 and log.total_steps == 4


# --- config conversion, checked by AutoTrain's own parser ------------------------------


def test_params_on_cpu_and_for_qlora_on_a_gpu(tmp_path):
    cfg = autotrain_cfg("m", "d.jsonl", lora_dropout=0.1, target_modules="q_proj,v_proj")
    kw = dict(model="M", data_dir="D", chat=True, project="p", epochs=3, has_val=False)
    cpu = atc.params_for(cfg, precision=None, **kw)
    assert cpu["task"] == "llm-sft" and cpu["backend"] == "local"
    assert cpu["data"]["chat_template"] == "tokenizer"
    assert cpu["data"]["column_mapping"] == {"text_column": "messages"}
    p = cpu["params"]
    assert p["quantization"] is None and p["mixed_precision"] is None and p["peft"] is True
    assert (p["lora_r"], p["lora_alpha"], p["lora_dropout"]) == (8, 16, 0.1)
    assert p["target_modules"] == "q_proj,v_proj" and p["epochs"] == 3
    assert (p["block_size"], p["model_max_length"], p["lr"]) == (64, 64, 1e-3)
    qlora = atc.params_for(
        RunConfig(**{**cfg.to_dict(), "method": "qlora"}), precision="bf16", **kw
    )
    assert qlora["params"]["quantization"] == "int4"
    assert qlora["params"]["mixed_precision"] == "bf16"
    assert qlora["params"]["disable_gradient_checkpointing"] is False
    text = atc.params_for(cfg, precision=None, **{**kw, "chat": False})
    assert text["data"]["chat_template"] is None
    assert text["data"]["column_mapping"] == {"text_column": "text"}


@pytest.mark.slow  # imports AutoTrain (~5 s, more on a busy machine)
def test_exported_config_is_accepted_by_autotrains_parser(tmp_path, monkeypatch):
    from training.backends import Splits

    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    cfg = autotrain_cfg("bundled/SmolLM2-135M-Instruct", "my chats.jsonl", max_steps=40)
    path = atc.export_config(cfg, tmp_path / "autotrain.yml", Splits(chats(8), chats(2)))
    text = path.read_text()
    assert "hf_secret" not in text and "autotrain --config autotrain.yml" in text
    assert (tmp_path / "data" / "train.jsonl").read_text().count("\n") == 8
    mapping = yaml.safe_load(text)
    assert mapping["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    script = (
        "import json, sys\nfrom autotrain.parser import AutoTrainConfigParser\n"
        "from autotrain.trainers.clm.params import LLMTrainingParams\n"
        "p = AutoTrainConfigParser(sys.argv[1])\n"
        "print(json.dumps(LLMTrainingParams(**p.parsed_config).model_dump()))"
    )
    out = subprocess.run(
        [atc.venv_dir() / "bin" / "python", "-c", script, path],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    parsed = json.loads(out.stdout.strip().splitlines()[-1])
    assert parsed["trainer"] == "sft" and parsed["text_column"] == "messages"
    assert parsed["quantization"] is None and parsed["token"] is None
    assert parsed["project_name"] == "tunesmith-my-chats" and parsed["valid_split"] == "validation"


def test_project_names_follow_autotrains_rule():
    for name in ("20261129-053000-ab12cd", "x" * 80, "runs with spaces_&_ü", "---"):
        project = atc.project_name(Path("/runs") / name)
        assert 0 < len(project) <= 50 and project.replace("-", "").isalnum(), project


@pytest.mark.slow  # loads transformers 4.48 in .venv-autotrain
def test_model_saved_by_transformers_5_loads_in_autotrains_transformers(tiny_model_dir, tmp_path):
    """Without the compat view AutoTrain's transformers 4.48 refuses the tokenizer
    (TokenizersBackend) and would silently lose a rope_parameters rope_theta."""
    src = tmp_path / "src"
    src.mkdir()
    for f in tiny_model_dir.iterdir():
        (src / f.name).symlink_to(f)
    config = json.loads((tiny_model_dir / "config.json").read_text())
    config.pop("rope_theta", None)
    (src / "config.json").unlink()
    (src / "config.json").write_text(
        json.dumps({**config, "rope_parameters": {"rope_theta": 123456.0, "rope_type": "default"}})
    )
    view = atc.compat_model_dir(src, tmp_path / "view")
    script = (
        "import sys\nfrom transformers import AutoModelForCausalLM, AutoTokenizer\n"
        "tok = AutoTokenizer.from_pretrained(sys.argv[1])\n"
        "m = AutoModelForCausalLM.from_pretrained(sys.argv[1])\n"
        "print(m.config.rope_theta, bool(tok.chat_template), tok.eos_token)"
    )
    run = lambda folder: subprocess.run(  # noqa: E731
        [atc.venv_dir() / "bin" / "python", "-c", script, folder], capture_output=True, text=True
    )
    assert run(src).returncode != 0  # the problem is real
    out = run(view)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["123456.0", "True", "<|im_end|>"]


def test_environment_loses_space_ids_and_secrets(tmp_path):
    base = {
        **ENV_SECRETS,
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": "/cache",
        "PATH": "/usr/bin",
        "CUDA_VISIBLE_DEVICES": "0",
        "SPACE_HOST": "x.hf.space",
        "PYTHONPATH": "/repo",
        "AWS_SECRET_ACCESS_KEY": "k",
        "OPENAI_API_KEY": "k",
        "TOKENIZERS_PARALLELISM": "0",
    }
    env = atc.autotrain_env(base, trust_remote_code=False, work=tmp_path)
    assert not set(ENV_SECRETS) & set(env) and "SPACE_HOST" not in env
    assert not {"AWS_SECRET_ACCESS_KEY", "OPENAI_API_KEY"} & set(env)
    assert env["TOKENIZERS_PARALLELISM"] == "0"  # "TOKEN" inside a word is no secret
    assert "hf_secret" not in json.dumps(env) and "PYTHONPATH" not in env
    assert env["HF_HUB_OFFLINE"] == "1" and env["HF_HOME"] == "/cache"
    assert env["CUDA_VISIBLE_DEVICES"] == "0" and env["PAUSE_ON_FAILURE"] == "0"
    assert env["ALLOW_REMOTE_CODE"] == "false"
    assert env["PATH"].startswith(str(atc.venv_dir() / "bin"))
    assert atc.autotrain_env(base, True, tmp_path)["ALLOW_REMOTE_CODE"] == "true"


def test_available_reports_the_setup_command_which_is_quick_once_built(tmp_path, monkeypatch):
    assert atc.available()[0], "CI builds it: bash scripts/setup_autotrain.sh"
    started = time.monotonic()
    subprocess.run(atc.setup_command(), check=True, timeout=60)
    assert time.monotonic() - started < 10  # the stamp makes a built venv a no-op
    monkeypatch.setenv("TUNESMITH_AUTOTRAIN_VENV", str(tmp_path / "nowhere"))
    ok, reason = atc.available()
    assert not ok and "bash scripts/setup_autotrain.sh" in reason


# --- a fake autotrain: environment, exit-0 failures, the process tree ----------------------

FAKE_AUTOTRAIN = r"""#!{python}
import json, os, subprocess, sys, time
json.dump(dict(os.environ), open("env.json", "w"))
if os.environ.get("FAKE_MODE") == "hang":  # autotrain -> accelerate -> trainer, like the real one
    subprocess.Popen([sys.executable, "-c", "import subprocess, sys, time; "
                      "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']); "
                      "time.sleep(600)"])
    print("INFO     | 2026-01-01 10:00:00 | autotrain.trainers.common:on_train_begin:386 - "
          "Starting to train...", flush=True)
    time.sleep(600)
print("ERROR    | 2026-01-01 10:00:00 | autotrain.trainers.common:wrapper:215 - train has "
      "failed due to an exception: Traceback (most recent call last):")
print("ValueError: the data folder is empty")
print("ERROR    | 2026-01-01 10:00:00 | autotrain.trainers.common:wrapper:216 - "
      "the data folder is empty")
sys.exit(0)
"""


@pytest.fixture
def fake_venv(tmp_path, monkeypatch):
    venv = tmp_path / "fake-venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    script = venv / "bin" / "autotrain"
    script.write_text(FAKE_AUTOTRAIN.replace("{python}", sys.executable))
    script.chmod(0o755)
    (venv / atc.STAMP).write_text("test-cpu")
    monkeypatch.setenv("TUNESMITH_AUTOTRAIN_VENV", str(venv))
    return venv


def fake_env(**extra) -> dict:
    return {**os.environ, **ENV_SECRETS, **extra}


def test_exit_0_failure_fails_the_run_and_no_secret_reaches_autotrain(
    fake_venv, tiny_model_dir, tmp_path
):
    data = write_jsonl(tmp_path / "chats.jsonl", chats(20))
    run_dir = tmp_path / "run"
    proc = worker(autotrain_cfg(tiny_model_dir, data), run_dir, fake_env())
    assert proc.wait(timeout=120) == 1
    status = rundir.read_status(run_dir)
    assert status["status"] == "failed"
    assert status["reason"] == "AutoTrain failed: the data folder is empty"
    seen = json.loads((run_dir / "autotrain" / "env.json").read_text())
    assert not set(ENV_SECRETS) & set(seen) and "hf_secret" not in json.dumps(seen)
    assert seen["HF_HUB_OFFLINE"] == "1" and seen["ALLOW_REMOTE_CODE"] == "false"
    log = (run_dir / rundir.LOG).read_text()
    assert "[autotrain] exited with code 0" in log and log.count("the data folder is empty") >= 2
    files = json.dumps(yaml.safe_load((run_dir / "autotrain" / "autotrain.yml").read_text()))
    assert "hf_secret" not in files


def autotrain_tree(worker_pid: int, run_dir: Path, at_least: int) -> list[psutil.Process]:
    """The worker's descendants in AutoTrain's process group, once there are `at_least`."""
    pgid = rundir.read_status(run_dir).get("autotrain_pgid")
    tree = []
    for p in psutil.Process(worker_pid).children(recursive=True):
        try:
            if os.getpgid(p.pid) == pgid:
                tree.append(p)
        except ProcessLookupError:
            continue
    return tree if len(tree) >= at_least else []


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_stopping_the_worker_leaves_no_autotrain_process(fake_venv, tiny_model_dir, tmp_path, how):
    """SIGTERM (cancel): the worker stops AutoTrain's group and exits cancelled. SIGKILL
    (worker killed outright): the guard notices and kills the group itself."""
    data = write_jsonl(tmp_path / "chats.jsonl", chats(20))
    run_dir = tmp_path / "run"
    proc = worker(autotrain_cfg(tiny_model_dir, data), run_dir, fake_env(FAKE_MODE="hang"))
    tree = wait_for(
        lambda: autotrain_tree(proc.pid, run_dir, 4), 60, "guard, autotrain, child, grandchild"
    )
    assert tree[0].pid == rundir.read_status(run_dir)["autotrain_pgid"]  # the guard leads
    os.killpg(proc.pid, signal.SIGTERM if how == "sigterm" else signal.SIGKILL)
    code = proc.wait(timeout=30)
    wait_for(lambda: all(gone(p.pid) for p in tree), 10, "every AutoTrain process to end")
    if how == "sigterm":
        assert code == 128 + signal.SIGTERM
        assert rundir.read_status(run_dir)["status"] == "cancelled"


def test_stop_group_kills_what_ignores_sigterm():
    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", stubborn], start_new_session=True)
    time.sleep(0.5)
    started = time.monotonic()
    stop_group(proc, grace=1.0)
    assert proc.poll() == -signal.SIGKILL and time.monotonic() - started < 4


# --- the real AutoTrain, offline, on the tiny model -------------------------------------


def adapter_changes_outputs(model_dir: Path, adapter: Path) -> bool:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(adapter)
    ids = tok.apply_chat_template(
        [{"role": "user", "content": "What is 3+3?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    base = AutoModelForCausalLM.from_pretrained(model_dir)
    with torch.no_grad():
        before = base(**ids).logits
        after = PeftModel.from_pretrained(base, adapter)(**ids).logits
    return not torch.allclose(before, after)


@pytest.mark.slow
def test_real_autotrain_run_through_the_job_runner(tiny_model_dir, tmp_path, monkeypatch):
    from training.chat.engine import ChatEngine, Row, Settings
    from training.jobs.runner import JobRunner

    monkeypatch.setenv("SPACE_ID", "me/space")  # the app runs in a Space: AutoTrain must not know
    data = write_jsonl(tmp_path / "chats.jsonl", chats(40))
    runner = JobRunner(db_path=tmp_path / "jobs.db", device="cpu", tick_s=0.2).start()
    try:
        # max_steps, which AutoTrain lacks, becomes whole epochs counted as it packs rows
        cfg = autotrain_cfg(tiny_model_dir, data, max_steps=20)
        job = runner.submit(cfg, owner="me")
        wait_for(lambda: runner.get(job.id).status in rundir.FINAL, 600, "the run to end")
    finally:
        runner.shutdown(stop_workers=True)
    run_dir = Path(job.run_dir)
    status = rundir.read_status(run_dir)
    assert status["status"] == "completed", rundir.tail_log(run_dir)
    progress = rundir.read_progress(run_dir)
    steps = [r["step"] for r in progress]
    assert steps == sorted(steps) and steps[-1] == progress[-1]["total_steps"]
    assert 15 <= steps[-1] <= 25  # 20 asked; 36 rows of ~34 tokens pack into 10 steps/epoch
    assert all(r["loss"] > 0 and r["learning_rate"] is not None for r in progress)
    assert status["metrics"]["backend"] == "autotrain" and status["metrics"]["train_loss"] > 0
    adapter = run_dir / rundir.ADAPTER
    assert rundir.adapter_complete(run_dir) and (adapter / rundir.CONFIG).is_file()
    assert json.loads((adapter / "adapter_config.json").read_text())[
        "base_model_name_or_path"
    ] == str(tiny_model_dir.resolve())
    assert adapter_changes_outputs(tiny_model_dir, adapter)
    log = (run_dir / rundir.LOG).read_text()
    assert "[progress]" in log and "Starting to train" in log and "Pausing space" not in log
    replies = ChatEngine().generate(
        str(tiny_model_dir),
        [Row([{"role": "user", "content": "What is 3+3?"}], adapter)],
        Settings(temperature=0, max_new_tokens=8),
        tokenizer_dir=adapter,
    )
    assert replies[0].stats.generated_tokens > 0  # the playground loads and runs it


@pytest.mark.slow
def test_real_bad_model_path_fails_with_autotrains_message_although_it_exits_0(tmp_path):
    """Straight into the backend: the worker's own data check would stop a missing model
    before AutoTrain ever sees it."""
    from training.backends import Splits, autotrain

    run_dir, missing = tmp_path / "run", tmp_path / "no-such-model"
    run_dir.mkdir()
    cfg = autotrain_cfg(missing, tmp_path / "unused.jsonl")
    with pytest.raises(ValueError) as failure:
        autotrain.train(
            cfg, run_dir, Splits(chats(10), []), resume=False, should_stop=lambda: False
        )
    assert str(failure.value).startswith(
        f"AutoTrain failed: Incorrect path_or_model_id: '{missing}'"
    )
    assert "[autotrain] exited with code 0" in (run_dir / rundir.LOG).read_text()
    assert not (run_dir / rundir.ADAPTER).exists()


@pytest.mark.slow
def test_real_model_too_new_for_autotrain_fails_through_the_worker(tiny_model_dir, tmp_path):
    """A model transformers 5 reads but AutoTrain's 4.48 does not (here: type qwen3) passes
    our checks; AutoTrain fails, exits 0, and the run ends failed with its message."""
    model = tmp_path / "new-model"
    model.mkdir()
    for f in tiny_model_dir.iterdir():
        (model / f.name).symlink_to(f)
    config = json.loads((tiny_model_dir / "config.json").read_text())
    (model / "config.json").unlink()
    (model / "config.json").write_text(
        json.dumps({**config, "model_type": "qwen3", "architectures": ["Qwen3ForCausalLM"]})
    )
    data = write_jsonl(tmp_path / "chats.jsonl", chats(10))
    run_dir = tmp_path / "run"
    cfg = autotrain_cfg(model, data, backend="lora")
    proc = worker(cfg, run_dir, dict(os.environ), "--backend", "autotrain")  # the CLI flag
    assert proc.wait(timeout=600) == 1
    status = rundir.read_status(run_dir)
    assert status["status"] == "failed" and status["backend"] == "autotrain"
    assert status["reason"].startswith("AutoTrain failed: The checkpoint you are trying to load")
    assert "`qwen3`" in status["reason"] and "LoRA backend" in status["reason"]
    assert "[autotrain] exited with code 0" in (run_dir / rundir.LOG).read_text()
    assert not (run_dir / rundir.ADAPTER).exists()


@pytest.mark.slow
def test_real_cancel_stops_the_whole_tree_and_no_secret_reaches_it(
    tiny_model_dir, tmp_path, monkeypatch
):
    from training.jobs.runner import JobRunner

    for name, value in ENV_SECRETS.items():
        monkeypatch.setenv(name, value)
    data = write_jsonl(tmp_path / "chats.jsonl", chats(40))
    runner = JobRunner(db_path=tmp_path / "jobs.db", device="cpu", tick_s=0.2).start()
    try:
        job = runner.submit(autotrain_cfg(tiny_model_dir, data, epochs=500), owner="me")
        run_dir = Path(job.run_dir)
        wait_for(lambda: rundir.read_progress(run_dir), 600, "training to start")
        worker_pid = runner.get(job.id).pid
        tree = autotrain_tree(worker_pid, run_dir, 4)  # guard, autotrain, accelerate, trainer
        names = " ".join(" ".join(p.cmdline()) for p in tree)
        assert "accelerate" in names and "autotrain.trainers.clm" in names, names
        assert proc_env(worker_pid)["SPACE_ID"] == "me/space"  # we had them...
        for p in tree:  # ...AutoTrain never does
            assert not set(ENV_SECRETS) & set(proc_env(p.pid)), p.cmdline()
        runner.cancel(job.id, owner="me")
        wait_for(lambda: runner.get(job.id).status in rundir.FINAL, 60, "the cancel")
    finally:
        runner.shutdown(stop_workers=True)
    assert runner.get(job.id).status == "cancelled"
    assert "no partial adapter" in rundir.read_status(run_dir)["reason"]
    wait_for(lambda: all(gone(p.pid) for p in tree), 10, "every AutoTrain process to end")
    assert gone(worker_pid)
