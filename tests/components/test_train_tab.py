"""Train tab handlers, called directly: config from widgets, show-config round trip,
pre-flight text, job list privacy, actions with plain messages, presets."""

import json
import re
from dataclasses import replace
from pathlib import Path

import gradio as gr
import pytest
import yaml

from components import autotrain_panel as ap
from components import train_format as tf
from components import train_tab as tt
from components.visitor import Visitor
from training.backends import autotrain_config
from training.backends.preflight import SMOLLM2_135M, estimate
from training.config import DEFAULT_MODEL, RunConfig, help_text
from training.data import DataChoice, ReportSummary
from training.hardware import Hardware
from training.jobs import rundir
from training.jobs.runner import JobRunner
from training.jobs.store import Job
from training.settings import Settings

STATS = {"max_length": 1024, "examples": 20, "total_training_tokens": 2000}
CHECKED = ReportSummary(ok=True, format="messages", rows=20, errors=0, warnings=0, stats=STATS)
DATASET = DataChoice(path="/data/chats.jsonl", format="messages", summary=CHECKED)


def defaults() -> list:
    return [getattr(tf.DEFAULTS, name) for name in tf.HYPER]


def visitor(owner: str) -> Visitor:
    """A visitor the page load identified as `owner` (build inside gr.Blocks)."""
    return Visitor(gr.BrowserState(""), gr.State(owner), gr.State(""), lambda b, p: (b, owner, ""))


def values_with(**changes) -> list:
    return [changes.get(name, getattr(tf.DEFAULTS, name)) for name in tf.HYPER]


@pytest.fixture
def runner():
    r = JobRunner(device="cpu", worker_cmd=["/bin/true"])  # never started: jobs stay queued
    yield r
    r.shutdown()


def test_widgets_take_value_and_help_from_runconfig():
    with gr.Blocks():
        for name in tf.HYPER:
            w = tt.widget(name)
            assert w.value == getattr(tf.DEFAULTS, name), name
            assert w.info == help_text(name)
            if isinstance(getattr(tf.DEFAULTS, name), int | float):
                assert isinstance(w, gr.Number | gr.Slider), f"{name} must be numeric"


def test_build_config_from_widget_values_coerces_types():
    # Sliders hand back floats; int fields must arrive as ints, and the data tab's state
    # fills the data fields.
    values = values_with(batch_size=8.0, lora_r=32.0, learning_rate=1e-4, max_steps=30.0)
    cfg = tf.build_config("some/model", True, DATASET, "lora", "qlora", *values)
    assert cfg == RunConfig(
        model="some/model",
        trust_remote_code=True,
        method="qlora",
        data="/data/chats.jsonl",
        format="messages",
        batch_size=8,
        lora_r=32,
        learning_rate=1e-4,
        max_steps=30,
    )
    assert type(cfg.batch_size) is int and type(cfg.max_steps) is int
    with pytest.raises(ValueError, match=r"LoRA rank \(adapter size\) is empty"):
        tf.build_config("a/m", False, DATASET, "lora", "lora", *values_with(lora_r=None))
    with pytest.raises(ValueError, match="learning_rate must be above 0"):
        tf.build_config("a/m", False, DATASET, "lora", "lora", *values_with(learning_rate=0))


def test_show_config_yaml_and_command_reproduce_the_same_config():
    values = values_with(epochs=2.0, lora_dropout=0.1, target_modules="q_proj,v_proj")
    cfg = tf.build_config("bundled/SmolLM2-135M-Instruct", False, DATASET, "lora", "lora", *values)
    yaml_text, shell = tt.on_show_config(
        "bundled/SmolLM2-135M-Instruct", False, DATASET, "lora", "lora", *values
    )
    assert RunConfig.from_yaml(yaml_text) == cfg
    heredoc = re.search(r"<<'EOF'\n(.*)EOF\n", shell, re.S).group(1)
    assert RunConfig.from_yaml(heredoc) == cfg
    assert shell.strip().endswith("python -m training train config.yaml")
    assert tt.on_show_config("a/m", False, DATASET, "lora", "lora", *values_with(seed=None))[
        0
    ].startswith("# Seed is empty")


def test_preflight_markdown_lists_the_verdict_and_memory_parts():
    hw = Hardware("cuda", "NVIDIA L4", 22.0, "bf16")
    stats = {"examples": 200, "tokens_per_example": {"mean": 300.0, "max": 900}}
    pf = estimate(RunConfig(), stats, hardware=hw, model_config=SMOLLM2_135M)
    text = tf.preflight_markdown(pf)
    assert text.startswith("**Pre-flight estimate** ✅")
    assert "- Fits in this 22 GB NVIDIA L4: est." in text
    assert "- Estimated time:" in text and "weights 0.25 GB" in text
    too_big = estimate(RunConfig(batch_size=64, max_length=8192), None, hw, SMOLLM2_135M)
    assert tf.preflight_markdown(too_big).startswith("**Pre-flight estimate** ⛔")
    assert tt.on_estimate(
        "a/m", False, DATASET, "lora", "lora", *values_with(epochs=None)
    ).startswith("⚠️")


def test_start_needs_owner_and_checked_data_then_queues(runner):
    assert (
        "still loading"
        in tt.on_start(runner, "", "", "a/m", False, DATASET, "lora", "lora", *defaults())[0]
    )
    bad = replace(DATASET, summary=replace(CHECKED, ok=False, errors=2))
    assert not bad.ok and not replace(DATASET, summary=None).ok
    assert (
        "Data tab"
        in tt.on_start(runner, "alice", "", "a/m", False, bad, "lora", "lora", *defaults())[0]
    )
    assert runner.jobs_for("alice") == []
    message, job_id = tt.on_start(
        runner, "alice", "", "a/m", False, DATASET, "lora", "lora", *defaults()
    )
    assert job_id in message and "keeps going" in message
    [job] = runner.jobs_for("alice")
    assert job.id == job_id and job.status == "queued"
    assert RunConfig.from_yaml(Path(job.run_dir, "config.yaml")).data == DATASET.path


def test_job_list_and_poll_only_show_the_callers_runs(runner):
    cfg = RunConfig(data="x.jsonl")
    mine = [runner.submit(cfg, "alice").id for _ in range(2)]
    theirs = runner.submit(cfg, "bob")
    rundir.append_progress(theirs.run_dir, {"step": 1, "loss": 9.0})
    table, selected, status, chart, log_text, shown = tt.poll(runner, "alice", None, "")
    assert sorted(table["Run"]) == sorted(mine) and theirs.id not in set(table["Run"])
    assert selected in mine and "queued (#" in table["Status"].iloc[0]
    # Asking for someone else's run falls back to one's own: nothing of theirs leaks.
    table, selected, status, chart, log_text, shown = tt.poll(runner, "alice", theirs.id, "")
    assert selected in mine and theirs.id not in status and "9.0" not in chart.to_csv()
    assert tt.poll(runner, "", None, "")[0].empty
    # Unchanged run: chart and log are not re-sent.
    again = tt.poll(runner, "alice", selected, shown)
    assert again[3] == gr.skip() and again[4] == gr.skip()


def test_poll_lists_runs_from_the_store_and_reads_only_the_followed_runs_files(runner, monkeypatch):
    jobs = [runner.submit(RunConfig(data="x.jsonl"), "alice") for _ in range(3)]
    for job in jobs:
        rundir.append_progress(job.run_dir, {"step": 4, "loss": 1.0})
    read = []
    for name in ("read_status", "read_progress", "tail_log"):
        real = getattr(rundir, name)

        def counted(run_dir, *a, _real=real, **k):
            read.append(str(run_dir))
            return _real(run_dir, *a, **k)

        monkeypatch.setattr(rundir, name, counted)
    table, selected, status, *_ = tt.poll(runner, "alice", jobs[1].id, "")
    assert selected == jobs[1].id and len(table) == 3 and "step 4/?" in status
    assert read and set(read) == {jobs[1].run_dir}  # every 2 s per open page: one run only


def test_cancel_resume_continue_give_plain_messages(runner):
    job = runner.submit(RunConfig(data="x.jsonl"), "alice")
    act = tt.on_job_action
    assert "Select one of your runs" in act(runner, "cancel", "alice", None)
    assert act(runner, "cancel", "bob", job.id).startswith("⚠️ Only the person who started")
    assert "Stopping run" in act(runner, "cancel", "alice", job.id)
    assert runner.get(job.id).status == "cancelled"
    assert "already cancelled" in act(runner, "cancel", "alice", job.id)
    assert "queued to resume" in act(runner, "resume", "alice", job.id)
    assert "no saved adapter" in act(runner, "continue", "alice", job.id, DATASET)
    assert "There is no run" in act(runner, "resume", "alice", "nope")


def test_presets_load_into_widgets_and_back_into_the_same_config():
    choices = tt.preset_choices()
    assert {name for name, _ in choices} >= {"cpu-demo", "t4-l4", "a10g-a100"}
    for name, path in choices:
        model, method, *values = tt.on_preset(path)
        preset = RunConfig.from_yaml(Path(path))
        rebuilt = tf.build_config(
            model, False, DataChoice(path=preset.data), "lora", method, *values
        )
        assert rebuilt == preset, name
    assert tt.on_preset(None) == [gr.skip()] * (2 + len(tf.HYPER))


def test_loss_frame_and_job_text_from_the_run_directory(tmp_path, runner):
    job = runner.submit(RunConfig(data="x.jsonl"), "alice")
    for step, loss in ((5, 2.0), (10, 1.5)):
        rundir.append_progress(job.run_dir, {"step": step, "loss": loss, "eta": 125})
    rundir.append_progress(job.run_dir, {"step": 10, "eval_loss": 1.7})
    empty = tf.loss_frame(str(tmp_path))  # no progress yet: numeric axes, both series
    assert empty["loss"].isna().all() and set(empty["series"]) == {"train", "eval"}
    assert gr.LinePlot(x="step", y="loss").postprocess(empty).datatypes == {
        "step": "quantitative",
        "loss": "quantitative",
        "series": "nominal",
    }
    frame = tf.loss_frame(job.run_dir)
    assert frame.dropna().values.tolist() == [
        [5, 2.0, "train"],
        [10, 1.5, "train"],
        [10, 1.7, "eval"],
    ]
    rundir.write_status(job.run_dir, "failed", "Out of memory while training.", "Lower max_length.")
    shown = runner.live(runner.jobs_for("alice")[0])  # the run followed: read from its files
    shown.status = "failed"
    text = tf.job_markdown(shown)
    assert "step 10/?" in text and "eval loss 1.7000" in text
    assert "Out of memory" in text and "**What to try:** Lower max_length." in text
    assert "Resume" in text
    assert tf.duration(125) == "2m 05s" and tf.duration(7300) == "2h 01m"


def test_learned_view_highlights_trained_tokens_and_escapes(tiny_tokenizer):
    from training.data.labels import explain_example

    example = {
        "messages": [
            {"role": "user", "content": "<b>hi</b>"},
            {"role": "assistant", "content": "Paris."},
        ]
    }
    pairs = explain_example(tiny_tokenizer, example, 64)
    html = tf.learned_html(pairs)
    trained = "".join(text for text, t in pairs if t)
    assert trained == "Paris.<|im_end|>"  # the answer and its end-of-turn token, nothing else
    assert "<b>" not in html and "&lt;" in html
    assert f"{sum(t for _, t in pairs)} of {len(pairs)} tokens receive loss" in html
    assert html.count('title="trained"') == sum(t for _, t in pairs)
    assert "Data tab" in tt.on_learn("a/m", False, None, 64, 1)
    assert "Data tab" in tt.on_learn("a/m", False, DataChoice(), 64, 1)


def test_tab_builds_with_its_events(runner):
    with gr.Blocks() as demo:
        model = gr.Dropdown(["m"], value="m", allow_custom_value=True)
        tt.build_train_tab(model, gr.State(DATASET), runner, visitor("alice"))
    config = demo.get_config_file()
    kinds = {c["type"] for c in config["components"]}
    assert {"timer", "nativeplot", "dataframe", "slider"} <= kinds
    assert len(config["dependencies"]) > 10  # buttons, timer, page load


def test_estimate_reads_the_data_tabs_report_summary(monkeypatch):
    monkeypatch.setattr(
        tt,
        "estimate",
        lambda cfg, stats: estimate(cfg, stats, Hardware("cpu", "CPU", 16.0, "fp32"), SMOLLM2_135M),
    )
    assert tf.report_stats(DATASET) == STATS and tf.report_stats(DataChoice()) is None
    text = tt.on_estimate("a/m", False, DATASET, "lora", "lora", *defaults())
    assert "- 18 training examples, 1.8 K tokens per epoch" in text
    unchecked = tt.on_estimate("a/m", False, None, "lora", "lora", *defaults())
    assert "Check a dataset" in unchecked


def test_learn_view_renders_a_dataset_row_with_the_models_template(tiny_model_dir, tmp_path):
    data = tmp_path / "chats.jsonl"
    rows = [
        [{"role": "user", "content": f"Q{i}"}, {"role": "assistant", "content": f"A{i}"}]
        for i in range(3)
    ]
    data.write_text("".join(json.dumps({"messages": r}) + "\n" for r in rows))
    dataset = DataChoice(path=str(data))
    allowed = Settings(model_dirs=str(tiny_model_dir.parent))
    html = tt.on_learn(str(tiny_model_dir), False, dataset, 64, 2, settings=allowed)
    trained = re.findall(r'title="trained">([^<]*)</span>', html)
    assert "".join(trained) == "A1&lt;|im_end|&gt;"  # row 2's answer and its end token
    assert "tokens receive loss" in html
    missing = tt.on_learn(
        str(tiny_model_dir), False, DataChoice(path=str(tmp_path / "no.jsonl")), 64, 1, allowed
    )
    assert "ts-error" in missing and "Traceback" not in missing


def test_a_broken_runner_gives_plain_messages_not_tracebacks(runner, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(runner, "submit", boom)
    monkeypatch.setattr(runner, "jobs_for", boom)
    message, _ = tt.on_start(
        runner, "alice", "", "a/m", False, DATASET, "lora", "lora", *defaults()
    )
    assert message == f"⚠️ {tt.OUR_FAULT}" and "disk" not in message
    assert tt.poll(runner, "alice", None, "") == (gr.skip(),) * 6


def test_log_text_keeps_the_last_lines_and_the_latest_progress_bar(runner):
    job = runner.submit(RunConfig(data="x.jsonl"), "alice")
    lines = [f"line {i}" for i in range(100)] + ["bar  10%\rbar  50%\rbar 100%", "done"]
    Path(job.run_dir, "train.log").write_text("\n".join(lines) + "\n")
    text = tf.log_text(job.run_dir, last=5)
    assert text.split("\n") == ["line 97", "line 98", "line 99", "bar 100%", "done"]


# --- the AutoTrain backend: availability, install, config, export -----------------------


@pytest.fixture
def no_autotrain(tmp_path, monkeypatch):
    """AutoTrain's venv points at an empty folder (the real available() says no)."""
    venv = tmp_path / "venv-autotrain"
    monkeypatch.setenv("TUNESMITH_AUTOTRAIN_VENV", str(venv))
    return venv


def backend_radio(demo) -> dict:
    [radio] = [
        c
        for c in demo.get_config_file()["components"]
        if c["type"] == "radio" and c["props"]["label"] == "Backend"
    ]
    return radio["props"]


def test_autotrain_cannot_be_chosen_while_not_installed(no_autotrain, runner):
    assert autotrain_config.available()[0] is False
    with pytest.warns(UserWarning, match="not installed"):
        radio, note, install_box = ap.on_backend("autotrain")
    assert radio["value"] == "lora"  # the choice is refused: back to LoRA
    assert dict(radio["choices"])["AutoTrain Advanced (not installed)"] == "autotrain"
    assert "AutoTrain is unavailable" in note and "`bash scripts/setup_autotrain.sh`" in note
    assert install_box["visible"] is False and "Install AutoTrain" not in note
    # Picking LoRA is untouched; Start refuses AutoTrain even if the page still offered it.
    assert "value" not in ap.on_backend("lora")[0]
    message, job = tt.on_start(
        runner, "alice", "", "a/m", False, DATASET, "autotrain", "lora", *defaults()
    )
    assert message.startswith("⚠️ AutoTrain Advanced is not installed") and job == gr.skip()
    assert runner.jobs_for("alice") == []
    with gr.Blocks() as demo:
        tt.build_train_tab(gr.Dropdown(["m"], value="m"), gr.State(DATASET), runner, visitor("a"))
    assert ("AutoTrain Advanced (not installed)", "autotrain") in backend_radio(demo)["choices"]


def test_autotrain_is_a_backend_once_installed(no_autotrain, runner):
    (no_autotrain / "bin").mkdir(parents=True)
    (no_autotrain / "bin" / "autotrain").write_text("")
    (no_autotrain / ".tunesmith-installed").write_text("abc-cpu")
    radio, note, install_box = ap.on_backend("autotrain")
    assert "value" not in radio and ("AutoTrain Advanced", "autotrain") in radio["choices"]
    assert note.startswith("✅ AutoTrain Advanced 0.8.36 (cpu build)")
    assert install_box["visible"] is False
    message, job_id = tt.on_start(
        runner, "alice", "", "a/m", False, DATASET, "autotrain", "qlora", *defaults()
    )
    [job] = runner.jobs_for("alice")
    assert job.id == job_id
    cfg = RunConfig.from_yaml(Path(job.run_dir, "config.yaml"))
    assert (cfg.backend, cfg.method) == ("autotrain", "qlora")


def test_autotrain_config_round_trips_through_the_shown_yaml():
    values = values_with(epochs=2.0, lora_r=8.0, max_steps=40.0)
    cfg = tf.build_config("some/model", False, DATASET, "autotrain", "qlora", *values)
    assert (cfg.backend, cfg.method, cfg.lora_r) == ("autotrain", "qlora", 8)
    yaml_text, shell = tt.on_show_config(
        "some/model", False, DATASET, "autotrain", "qlora", *values
    )
    assert "backend: autotrain" in yaml_text.splitlines()
    assert RunConfig.from_yaml(yaml_text) == cfg
    heredoc = re.search(r"<<'EOF'\n(.*)EOF\n", shell, re.S).group(1)
    assert RunConfig.from_yaml(heredoc) == cfg
    assert shell.startswith("bash scripts/setup_autotrain.sh")  # its venv, before the run
    lora_shell = tt.on_show_config("a/m", False, DATASET, "lora", "lora", *defaults())[1]
    assert lora_shell.startswith("cat > config.yaml") and "backend: lora" in lora_shell


def test_export_writes_a_runnable_autotrain_yaml_without_any_token(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_NeverWriteMe123")
    monkeypatch.setenv("HUGGING_FACE_HUB_TOKEN", "hf_NorMe456")
    values = values_with(lora_r=8.0, batch_size=2.0, learning_rate=3e-4, epochs=2.0)
    path, note = ap.on_export("some/model", False, DATASET, "autotrain", "lora", *values)
    text = Path(path).read_text()
    assert Path(path).name == "autotrain.yml"
    assert "hf_NeverWriteMe123" not in text and "hf_NorMe456" not in text
    exported = yaml.safe_load(text)
    assert exported["task"] == "llm-sft" and exported["base_model"] == "some/model"
    params = exported["params"]
    got = (params["lora_r"], params["batch_size"], params["lr"], params["epochs"])
    assert got == (8, 2, 3e-4, 2)
    assert params["quantization"] is None  # plain LoRA: no 4-bit, runs on a CPU too
    assert exported["data"]["column_mapping"] == {"text_column": "messages"}
    assert "pip install autotrain-advanced==0.8.36 && autotrain --config autotrain.yml" in note
    refused = ap.on_export("a/m", False, DATASET, "lora", "lora", *values_with(seed=None))
    assert refused == (None, "⚠️ Seed is empty.")


def test_install_is_only_offered_where_the_app_may_install(no_autotrain, runner, monkeypatch):
    def never(gpu):
        raise AssertionError("the setup script must not run here")

    monkeypatch.setattr(autotrain_config, "setup_command", never)
    assert Settings().install_allowed is False
    assert Settings(allow_install=True).install_allowed is True
    assert Settings(space_id="me/space").install_allowed is True  # a Space owns its machine
    assert ap.on_backend("lora")[2]["visible"] is False
    message, *rest = ap.on_install()  # called anyway (e.g. through the API): refused
    assert "not allowed here" in message and "bash scripts/setup_autotrain.sh" in message
    assert rest == [gr.skip()] * 2
    # The tab builds the box from the settings it is handed.
    for settings, shown in ((Settings(), False), (Settings(allow_install=True), True)):
        with gr.Blocks() as demo:
            model = gr.Dropdown(["m"], value="m")
            tt.build_train_tab(model, gr.State(DATASET), runner, visitor("a"), settings=settings)
        buttons = [
            c
            for c in demo.get_config_file()["components"]
            if c["type"] == "button" and c["props"].get("value") == "Install AutoTrain"
        ]
        assert len(buttons) == 1
        assert (
            ap.on_backend("lora", install_allowed=settings.install_allowed)[2]["visible"] is shown
        )


def test_status_line_shows_autotrains_phase_while_it_prepares(runner, monkeypatch):
    job = runner.submit(RunConfig(data="x.jsonl", backend="autotrain"), "alice")
    rundir.write_status(job.run_dir, "running", pid=1, phase="loading the model")
    job.status = "running"
    monkeypatch.setattr(runner, "jobs_for", lambda owner: [job])
    status = tt.poll(runner, "alice", job.id, "")[2]
    assert status.startswith(f"**Run {job.id}** · running (loading the model)")
    job.status = "completed"  # a phase is only news while running
    assert "loading the model" not in tf.job_markdown(job, "loading the model")


def test_start_estimate_and_learn_refuse_other_paths_and_remote_code(runner, tiny_model_dir):
    """A visitor's model and trust box pass the app's rule server-side: another visitor's
    merged export is refused with one message, and so is remote code the owner has not
    allowed."""
    import os

    from training.paths import runs_dir

    merged = runs_dir() / "20260101-000000-alice" / "export" / "merged"
    merged.mkdir(parents=True)
    refused = "Only models from the list"
    for model in (str(merged), str(tiny_model_dir), "/no/such/model"):
        config = (model, False, DATASET, "lora", "lora", *defaults())
        message, job = tt.on_start(runner, "bob", "", *config)
        assert refused in message and job == gr.skip()
        estimate_text = tt.on_estimate(*config)
        assert refused in estimate_text and "config.json" not in estimate_text
        assert refused in tt.on_learn(model, False, DATASET, 64, 1)
    trusting = ("a/m", True, DATASET, "lora", "lora", *defaults())
    assert "owner has not allowed" in tt.on_start(runner, "bob", "", *trusting)[0]
    assert "owner has not allowed" in tt.on_show_config(*trusting)[0]
    assert runner.jobs_for("bob") == []
    owner = Settings(allow_remote_code=True, model_dirs=str(tiny_model_dir.parent))
    config = (str(tiny_model_dir), True, DATASET, "lora", "lora", *defaults())
    tt.on_start(runner, "bob", "", *config, settings=owner)
    cfg = RunConfig.from_yaml(Path(runner.jobs_for("bob")[0].run_dir, "config.yaml"))
    assert cfg.trust_remote_code is True and cfg.model == os.path.realpath(tiny_model_dir)


def test_the_plan_follows_the_model_and_the_data_size():
    # DATASET: 20 examples, 2 held out -> 18 to train: 3 updates per pass at 4 x 2
    lr, epochs, why = tt.on_plan(DEFAULT_MODEL, False, DATASET, "standard", 4, 2, 0.1)
    assert (lr, epochs) == (1e-3, 20)  # 60 updates for a small set
    assert "Suggested" in why and "135 M model" in why and "18 examples" in why
    assert tt.on_plan(DEFAULT_MODEL, False, DATASET, "quick", 4, 2, 0.1)[1] == 10
    # no data checked yet: the model's rate, the usual passes, and what to do next
    lr, epochs, why = tt.on_plan(DEFAULT_MODEL, False, None, "standard", 4, 2, 0.1)
    assert (lr, epochs) == (1e-3, 3) and "Check a dataset" in why
    # an odd value from an API call changes nothing
    assert tt.on_plan(DEFAULT_MODEL, False, DATASET, "standard", None, 2, 0.1)[0] == gr.skip()


def test_simple_mode_first_and_expert_settings_under_advanced(runner):
    with gr.Blocks() as demo:
        tt.build_train_tab(gr.Dropdown(["m"], value="m"), gr.State(DATASET), runner, visitor("a"))
    length = next(b for b in demo.blocks.values() if getattr(b, "elem_id", "") == "ts-length")
    assert [c[1] for c in length.choices] == ["quick", "standard", "thorough"]
    advanced = next(
        b for b in demo.blocks.values() if getattr(b, "label", "") == "Advanced settings"
    )
    assert advanced.open is False

    def inside(block, parent) -> bool:
        while block is not None:
            if block is parent:
                return True
            block = block.parent
        return False

    expert = [
        b
        for b in demo.blocks.values()
        if getattr(b, "label", "") in {tf.label(n) for n in tf.HYPER}
    ]
    assert len(expert) == len(tf.HYPER)
    assert all(inside(b, advanced) for b in expert)


def test_settings_kept_in_the_browser_come_back_checked():
    values = ["thorough", "lora", "lora", *values_with(learning_rate=5e-4, lora_r=8)]
    saved = tt.remember(*values)
    assert tt.restore(saved) == values  # a reload brings every setting back
    hostile = {
        **saved,
        "length": "forever",
        "backend": "rm -rf",
        "learning_rate": float("nan"),
        "batch_size": "4; DROP TABLE",
        "lr_scheduler": "<script>",
        "target_modules": "x" * 10_000,
        "lora_r": True,
    }
    back = dict(zip(tt.KEPT, tt.restore(hostile), strict=True))
    for name in ("length", "backend", "learning_rate", "batch_size", "lr_scheduler"):
        assert back[name] == gr.skip(), name
    assert back["target_modules"] == gr.skip() and back["lora_r"] == gr.skip()
    assert back["epochs"] == saved["epochs"]
    assert tt.restore(None) == [gr.skip()] * len(tt.KEPT) == tt.restore("junk")


def test_the_log_and_status_never_show_server_folders(tmp_path):
    run = tmp_path / "runs" / "20260101-000000-abcdef"
    run.mkdir(parents=True)
    (run / "train.log").write_text(
        f"=== start: /srv/app/.venv/bin/python -m training train {run}/config.yaml "
        f"--run-dir {run}\n"
        '  File "/usr/lib/python3.11/site-packages/peft/tuners.py", line 3\n'
        "step 2/10 · see https://huggingface.co/docs/peft\n"
    )
    text = tf.log_text(str(run))
    assert str(tmp_path) not in text and "/srv/app" not in text and "/usr/lib" not in text
    assert "…/config.yaml" in text and "…/tuners.py" in text
    assert "step 2/10" in text and "https://huggingface.co/docs/peft" in text
    job = Job("j1", str(run), "alice", "cpu", "m", "completed", 1, 0.0)
    assert str(tmp_path) not in tf.job_markdown(job)


def test_a_run_goes_to_hugging_face_jobs_with_the_pasted_token_or_the_sign_ins(runner, monkeypatch):
    """Where to train: a flavour sends the run to Hugging Face Jobs (training/jobs/hf_jobs.py,
    replaced here by a recorder), with the pasted token, else the signed-in visitor's."""
    from types import SimpleNamespace

    from training.jobs import hf_jobs

    started = []

    class Recorder:
        pid, returncode = 0, None

        def __init__(self, run_dir, flavor, token):
            started.append((Path(run_dir).name, flavor, token))

        def poll(self):
            return None

    monkeypatch.setattr(hf_jobs, "RemoteRun", Recorder)
    start = tt.start_handler(runner, Settings())
    hub_model = ("HuggingFaceTB/SmolLM2-135M-Instruct", False, DATASET, "lora", "lora")
    message, job_id = start("alice", "", "t4-small", "hf_pasted", None, *hub_model, *defaults())
    assert "going to Hugging Face Jobs (t4-small)" in message and job_id in message
    signed_in = SimpleNamespace(token="hf_from_sign_in")
    _, second = start("alice", "", "l4x1", "", signed_in, *hub_model, *defaults())
    assert started == [(job_id, "t4-small", "hf_pasted"), (second, "l4x1", "hf_from_sign_in")]
    assert runner.get(job_id).device == f"hf-jobs:t4-small:{job_id}"
    assert "sign-in" in start("alice", "", "t4-small", "", None, *hub_model, *defaults())[0]
    local = start("alice", "", "", "hf_pasted", signed_in, *hub_model, *defaults())
    assert "queued (starting now)" in local[0] and len(started) == 2  # here: no token used
    for job in runner.jobs_for("alice"):
        text = Path(job.run_dir, "config.yaml").read_text()
        assert "hf_pasted" not in text and "hf_from_sign_in" not in text


def test_the_estimate_names_the_cheapest_jobs_flavour_and_its_price(monkeypatch):
    from training.jobs import hf_jobs

    cpu = Hardware("cpu", "CPU", 16.0, "fp32")
    monkeypatch.setattr(tt, "estimate", lambda cfg, stats: estimate(cfg, stats, cpu, SMOLLM2_135M))
    monkeypatch.setattr(tt, "load_model_config", lambda name: SMOLLM2_135M)
    text = tt.on_estimate("a/m", False, DATASET, "lora", "lora", *defaults())
    assert "- On Hugging Face Jobs: **t4-small** (NVIDIA T4, 16 GB) holds it" in text
    assert "$0.40/h" in text and hf_jobs.PRICES_SOURCE in text
    with gr.Blocks():
        assert ("This machine", "") in tt.WHERE
        assert ("t4-small (NVIDIA T4, 16 GB, $0.40/h)", "t4-small") in tt.WHERE
