"""The assembled page: its structure, as the browser's tab bar relies on it."""

import pytest

import app


def test_every_child_of_the_tabs_is_a_tab():
    """Gradio's tab bar counts the children of gr.Tabs: a component created between two
    tabs (it happened: a gr.State made after the Playground's `with gr.Tab`) made a later
    tab's button vanish and another show twice once visited."""
    config = app.build_app().config
    types = {c["id"]: (c["type"], c.get("props", {}).get("label")) for c in config["components"]}

    def tabs_children(node):
        if types.get(node["id"], ("",))[0] == "tabs":
            yield [types[c["id"]] for c in node.get("children", [])]
        for child in node.get("children", []):
            yield from tabs_children(child)

    (children,) = list(tabs_children(config["layout"]))
    assert children == [
        ("tabitem", name) for name in ("Data", "Train", "Playground", "Evaluate", "Export")
    ]


def test_the_apps_job_runner_empties_the_apps_chat_cache_before_a_job(tiny_model_dir):
    from training.chat.engine import ChatEngine

    engine = ChatEngine()
    with engine.lock:
        engine.model(str(tiny_model_dir))
    runner = app.start_runner(engine)
    try:
        for hook in runner.before_start:  # what the scheduler calls before a worker starts
            hook()
    finally:
        runner.shutdown()
    assert engine.loaded()["base"] is None


def test_launch_options_follow_the_settings():
    from training.settings import Settings

    options = app.launch_options(Settings(max_upload_mb=3))
    assert options["max_file_size"] == 3 * 1024 * 1024
    assert options["show_error"] is False  # tracebacks never reach a visitor


def test_the_apps_runner_applies_the_settings_limits_and_model_policy(tmp_path):
    from pathlib import Path

    import yaml

    from training.chat.engine import ChatEngine
    from training.config import RunConfig
    from training.settings import Settings

    settings = Settings(max_jobs_per_visitor=1, max_queued=5, max_steps=50, minutes_per_visitor=30)
    runner = app.start_runner(ChatEngine(), settings)
    runner.shutdown()  # nothing runs: submitted jobs stay queued
    data = tmp_path / "d.jsonl"
    data.write_text('{"text": "hi"}\n')
    limits = runner.max_jobs_per_owner, runner.max_queued, runner.max_steps, runner.max_minutes
    assert limits == (1, 5, 50, 30)
    for bad, why in (
        (RunConfig(data=str(data), max_steps=51), "at most 50"),
        (RunConfig(data=str(data), model=str(tmp_path)), "Only models from the list"),
        (RunConfig(data=str(data), trust_remote_code=True), "run their own code are off"),
    ):
        with pytest.raises(ValueError, match=why):
            runner.submit(bad, "alice")
    job = runner.submit(RunConfig(data=str(data), max_steps=5), "alice")
    # A saved config that asks for remote code (edited, or from before the owner turned it
    # off) is refused on resume too.
    config = Path(job.run_dir, "config.yaml")
    config.write_text(
        yaml.safe_dump({**yaml.safe_load(config.read_text()), "trust_remote_code": True})
    )
    runner.cancel(job.id, "alice")
    with pytest.raises(ValueError, match="run their own code are off"):
        runner.resume(job.id, "alice")


def test_a_space_offers_duplication_and_the_queue_is_bounded():
    from training.settings import Settings

    def buttons(demo):
        return [
            c
            for c in demo.config["components"]
            if c["type"] == "button" and "Duplicate" in str(c["props"].get("value"))
        ]

    local = app.build_app(Settings(queue_size=5))
    assert local._queue.max_size == 5 and buttons(local) == []
    space = app.build_app(Settings(space_id="someone/tunesmith"))
    [button] = buttons(space)
    assert "train privately on your own GPU" in button["props"]["value"]
    assert space._queue.max_size == 64


def test_on_a_space_only_signed_in_visitors_may_run_model_code(tmp_path):
    from training.chat.engine import ChatEngine
    from training.config import RunConfig
    from training.settings import Settings

    settings = Settings(space_id="someone/tunesmith", allow_remote_code=True)
    runner = app.start_runner(ChatEngine(), settings)
    runner.shutdown()
    data = tmp_path / "d.jsonl"
    data.write_text('{"text": "hi"}\n')
    trusting = RunConfig(data=str(data), max_steps=5, trust_remote_code=True)
    with pytest.raises(ValueError, match="off on a public Space"):
        runner.submit(trusting, "AnonymousBrowserId0123456")
    assert runner.submit(trusting, "hf:alice").owner == "hf:alice"
