"""The scripted journey through gradio_client: the README's script runs as written against
the app (a stand-in Hub answers whoami and takes the push), and every endpoint keeps the
pages' ownership: another caller sees, stops and pushes nothing of it, and a file must be
uploaded (a server path is not a file a caller may name)."""

import re
from pathlib import Path

import httpx
import pytest

from tests.app_server import launched_app
from training.paths import REPO_ROOT, home
from training.settings import Settings

TOKEN = "hf_ApiScriptToken0123456789abcdef"
SAMPLE = REPO_ROOT / "samples" / "json_answers.jsonl"


def readme_script() -> str:
    text = (REPO_ROOT / "README.md").read_text()
    block = re.search(r"<!-- api-script -->\n```python\n(.*?)```\n<!-- /api-script -->", text, re.S)
    return block.group(1)


class FakeHub:
    pushed: list = []

    def __init__(self, token=None):
        self.token = token

    def create_repo(self, repo_id, **kw):
        FakeHub.pushed.append(("create_repo", repo_id, kw.get("repo_type"), self.token))
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, **kw):
        FakeHub.pushed.append(
            ("upload_folder", kw["repo_id"], sorted(Path(kw["folder_path"]).iterdir()))
        )


@pytest.fixture
def app_url(tiny_model_dir, monkeypatch):
    import huggingface_hub

    def whoami(token=None):
        if token != TOKEN:
            raise ValueError("401")
        return {"name": "alice", "orgs": []}

    monkeypatch.setattr(huggingface_hub, "whoami", whoami)
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeHub)
    FakeHub.pushed = []
    settings = Settings(model_dirs=str(tiny_model_dir.parent), default_model=str(tiny_model_dir))
    with launched_app(settings) as url:
        yield url


@pytest.mark.slow
def test_the_readme_script_trains_and_pushes(app_url, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "chats.jsonl").write_bytes(SAMPLE.read_bytes())
    script = readme_script()
    lines = [line for line in script.strip().splitlines() if line.strip()]
    assert len(lines) <= 10  # the README promises a short script
    script = script.replace("http://127.0.0.1:7860/", app_url)
    script = script.replace('{"max_steps": 30}', '{"max_steps": 3}')  # the tiny model: brief
    exec(compile(script, "README-api-script", "exec"), {})  # noqa: S102 - our own README
    assert [c[:3] for c in FakeHub.pushed if c[0] == "create_repo"] == [
        ("create_repo", "your-name/my-model", "model")
    ]
    files = {p.name for p in FakeHub.pushed[-1][2]}
    assert "adapter_config.json" in files and "README.md" in files
    on_disk = b"".join(p.read_bytes() for p in home().rglob("*") if p.is_file())
    assert TOKEN.encode() not in on_disk


def test_every_endpoint_keeps_ownership_and_reads_only_uploads(app_url, tiny_model_dir):
    from gradio_client import Client, handle_file

    client = Client(app_url, verbose=False)
    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert {"/validate", "/train", "/job_status", "/cancel", "/evaluate", "/push"} <= api.keys()
    report = client.predict(handle_file(str(SAMPLE)), api_name="/validate")
    assert report["ok"] is True and report["stats"]["examples"] == 107
    me = client.predict(api_name="/new_visitor")
    config = '{"max_steps": 2, "save_steps": 0}'
    job = client.predict(handle_file(str(SAMPLE)), config, me, "", api_name="/train")
    assert job["status"] in ("queued", "running")
    mine = client.predict(job["run"], me, "", api_name="/job_status")
    assert mine["run"] == job["run"]
    stranger = client.predict(api_name="/new_visitor")
    for name, args in {
        "/job_status": (job["run"], stranger, ""),
        "/cancel": (job["run"], stranger, ""),
        "/evaluate": (job["run"], 5, stranger, ""),
        "/push": (job["run"], "bob/stolen", "adapter", True, stranger, TOKEN),  # alice's token
    }.items():
        with pytest.raises(Exception, match="No such run of yours"):
            client.predict(*args, api_name=name)
    with pytest.raises(Exception, match="Say who this is for"):
        client.predict(job["run"], "not-an-id", "", api_name="/job_status")
    with pytest.raises(Exception, match="token was refused"):
        client.predict(job["run"], "", "hf_wrong", api_name="/job_status")
    with pytest.raises(Exception, match="cannot be set here: init_adapter"):
        client.predict(
            handle_file(str(SAMPLE)), '{"init_adapter": "/tmp/x"}', me, "", api_name="/train"
        )
    # A path on the server is not an upload: sent raw (gradio_client would upload its own
    # copy of a local file), the file input refuses it and nothing of it comes back.
    secret = home() / "server_key"
    secret.parent.mkdir(parents=True, exist_ok=True)
    secret.write_text("not for callers")
    payload = {"data": [{"path": str(secret), "meta": {"_type": "gradio.FileData"}}]}
    event = httpx.post(app_url + "gradio_api/call/validate", json=payload, timeout=30).json()
    answer = httpx.get(app_url + f"gradio_api/call/validate/{event['event_id']}", timeout=60).text
    assert "event: error" in answer and "not for callers" not in answer
    stopped = client.predict(job["run"], me, "", api_name="/cancel")
    assert stopped["run"] == job["run"]
