"""The demo Space: its folder is a whole app on its own (started here as its own process on
the local adapter, asked through gradio_client), its card and pins are what a Space reads,
and publishing creates a private Gradio Space with the same fake Hub client as the export."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.app_server import free_port, wait_ready
from tests.assets import make_run
from tests.training.export.test_export import TOKEN, all_bytes, fake_hub, hub_run  # noqa: F401
from training.export import demo_space, export
from training.paths import home, runs_dir


@pytest.fixture(scope="module")
def run(tiny_model_dir, tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("runs") / "run1", tiny_model_dir)


def front_matter(card: str) -> dict:
    return yaml.safe_load(card.split("---\n")[1])


def test_the_folder_is_a_space_that_starts_on_its_own_and_answers(run, tiny_model_dir, tmp_path):
    from gradio_client import Client

    folder = demo_space.build_demo_space(run, "alice/my-model")
    assert folder == run / "export" / "demo-space"
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md",
        "app.py",
        "requirements.txt",
        "tunesmith_demo.json",
    ]
    pins = folder.joinpath("requirements.txt").read_text().split()
    assert all("==" in line for line in pins) and any(p.startswith("gradio==") for p in pins)
    config = json.loads(folder.joinpath("tunesmith_demo.json").read_text())
    assert config["model"] == "alice/my-model" and config["kind"] == "adapter"
    assert config["generation"]["max_new_tokens"] == 128  # the Playground's settings

    # Started as a Space starts it, with no Tunesmith code importable, on local folders.
    port = free_port()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", str(tmp_path)),
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "HF_HUB_OFFLINE": "1",
        "DEMO_MODEL": str(run / "adapter"),
        "DEMO_BASE_MODEL": str(tiny_model_dir),
    }
    log = tmp_path / "demo.log"
    start = time.monotonic()
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "app.py"], cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            url = f"http://127.0.0.1:{port}/"
            wait_ready(url, proc, timeout=120)
            started = time.monotonic() - start
            client = Client(url, verbose=False)
            asked = time.monotonic()
            reply = client.predict("Say hello", api_name="/chat")
            first_reply = time.monotonic() - asked
            base, tuned = client.predict("Say hello", api_name="/compare")
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    print(f"\ndemo Space: started in {started:.1f} s, first reply in {first_reply:.2f} s")
    assert isinstance(reply, str) and isinstance(base, str) and isinstance(tuned, str)
    assert "Traceback" not in log.read_text(), log.read_text()


def test_the_card_names_the_model_and_hardware_and_publishing_makes_a_private_space(
    run,
    tmp_path,
    fake_hub,  # noqa: F811
):
    on_hub = hub_run(run, runs_dir() / "hubrun")
    folder = demo_space.build_demo_space(on_hub, "alice/my-model")
    meta = front_matter(folder.joinpath("README.md").read_text())
    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py"
    assert meta["models"] == ["alice/my-model", "HuggingFaceTB/SmolLM2-135M-Instruct"]
    assert meta["suggested_hardware"] == "cpu-basic"  # a 135 M model
    assert "https://huggingface.co/alice/my-model" in folder.joinpath("README.md").read_text()

    url = demo_space.publish_demo_space(on_hub, "alice/my-demo", "alice/my-model", TOKEN)
    assert url == "https://huggingface.co/alice/my-demo"
    create = next(c for c in fake_hub.calls if c[0] == "create_repo")
    assert create[1] == "alice/my-demo"
    assert create[2]["repo_type"] == "space" and create[2]["space_sdk"] == "gradio"
    assert create[2]["private"] is True  # private unless asked
    upload = next(c for c in fake_hub.calls if c[0] == "upload_folder")[1]
    assert upload["repo_type"] == "space" and Path(upload["folder_path"]) == folder
    assert TOKEN.encode() not in all_bytes(home(), on_hub)


def test_a_local_base_model_cannot_be_published_and_odd_ids_are_refused(run, fake_hub):  # noqa: F811
    with pytest.raises(export.ExportError, match="folder on this machine"):
        demo_space.publish_demo_space(run, "alice/my-demo", "alice/my-model", TOKEN)
    with pytest.raises(export.ExportError, match="owner/model-name"):
        demo_space.publish_demo_space(run, "not a repo", "alice/my-model", TOKEN)
    with pytest.raises(export.ExportError, match="token"):
        demo_space.publish_demo_space(run, "alice/my-demo", "alice/my-model", "")
    assert [c for c in fake_hub.calls if c[0] != "init"] == []


@pytest.mark.parametrize(
    ("params", "hardware"),
    [(135e6, "cpu-basic"), (1.7e9, "t4-small"), (8e9, "l4x1"), (7e10, "a10g-large")],
)
def test_hardware_follows_the_model_size(params, hardware):
    assert demo_space.suggested_hardware(params) == hardware


def test_cli_pushes_the_model_then_the_space_and_refuses_before_pushing(
    run,
    monkeypatch,
    capsys,
    fake_hub,  # noqa: F811
):
    on_hub = hub_run(run, runs_dir() / "clirun")
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    assert export.main([str(on_hub), "--demo-space", "alice/my-demo", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["pushed"] == "https://huggingface.co/alice/my-demo"  # the model, same name
    assert result["demo_space"] == "https://huggingface.co/alice/my-demo"
    kinds = [c[2]["repo_type"] for c in fake_hub.calls if c[0] == "create_repo"]
    assert kinds == ["model", "space"] and result["private"] is True
    fake_hub.calls.clear()
    assert export.main([str(run), "--demo-space", "alice/my-demo", "--json"]) == 1
    assert "folder on this machine" in json.loads(capsys.readouterr().out)["error"]
    assert [c for c in fake_hub.calls if c[0] != "init"] == []  # nothing pushed first
