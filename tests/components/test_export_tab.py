"""Export tab handlers, called directly: ownership re-checked by every handler, real zips
to download (adapter, merged model), a card preview that shows markup as text, no server
path in a message, and a token that is never echoed."""

import zipfile
from pathlib import Path

import pytest
import yaml

from components import export_tab as ex
from tests.assets import make_run
from training.config import RunConfig
from training.jobs.runner import JobRunner
from training.paths import runs_dir

TOKEN = "hf_TabSecretToken0123456789abcdef"


@pytest.fixture
def alice_run(tiny_model_dir):
    """A run submitted through the app by visitor "alice"."""
    runner = JobRunner()  # never started: the job only needs to be recorded with its owner
    job = runner.submit(RunConfig(model=str(tiny_model_dir), data="data.jsonl"), "alice")
    run = make_run(runs_dir() / Path(job.run_dir).name, tiny_model_dir)
    yield run
    runner.shutdown()


def test_another_visitors_run_is_refused_everywhere(alice_run, monkeypatch):
    import huggingface_hub

    calls = []
    monkeypatch.setattr(huggingface_hub, "HfApi", lambda **kw: calls.append(kw))
    run = str(alice_run)
    checkpoints, card = ex.on_run(run, "adapter", "bob")
    assert checkpoints["choices"] == [] and card == ex.PICK
    assert ex.card_preview(run, "final", "adapter", "bob") == ex.PICK
    path, status = ex.download_zip(run, "final", "bob")
    assert path is None and "Pick a run" in status
    assert "Pick a run" in ex.build_merged(run, "final", False, "bob")
    path, status = ex.download_merged(run, "final", False, "bob")
    assert path is None and "Pick a run" in status
    status = ex.push_to_hub(run, "final", "adapter", "bob/stolen", True, TOKEN, False, "bob")
    assert "Pick a run" in status and TOKEN not in status
    assert calls == [] and not (alice_run / "export").exists()  # nothing exported or pushed
    checkpoints, card = ex.on_run(run, "adapter", "alice")
    assert checkpoints["choices"] == ["final", "checkpoint-2"] and "## Training setup" in card


def test_download_and_merge(alice_run):
    path, status = ex.download_zip(str(alice_run), "checkpoint-2", "alice")
    assert Path(path).is_file() and "ts-ok" in status
    names = zipfile.ZipFile(path).namelist()
    assert {"adapter_config.json", "adapter_model.safetensors", "README.md"} <= set(names)
    status = ex.build_merged(str(alice_run), "final", False, "alice")  # progress outside an event
    assert "Merged model built" in status and str(alice_run.parent) not in status
    assert (alice_run / "export" / "merged" / "config.json").is_file()


def test_merged_model_download_is_served_from_gradios_cache(alice_run):
    from gradio.utils import get_upload_folder

    cache = Path(get_upload_folder())
    path, status = ex.download_merged(str(alice_run), "final", False, "alice")
    assert Path(path).parent.parent == cache  # where Gradio serves it from without a copy
    assert "Merged model zip ready" in status and str(alice_run.parent) not in status
    assert str(cache) not in status
    names = zipfile.ZipFile(path).namelist()
    assert {"config.json", "model.safetensors", "tokenizer.json", "README.md"} <= set(names)
    again, _ = ex.download_merged(str(alice_run), "final", False, "alice")
    assert Path(again).is_file() and not Path(path).exists()  # the previous zip replaced
    assert list(cache.glob(f"tunesmith-merged-*/{Path(path).name}")) == [Path(again)]


def test_no_room_for_the_merged_zip_is_said_plainly(alice_run, monkeypatch):
    from gradio.utils import get_upload_folder

    from training.export import export

    usage = export.shutil.disk_usage(alice_run)
    monkeypatch.setattr(export.shutil, "disk_usage", lambda path: usage._replace(free=1024))
    before = set(Path(get_upload_folder()).glob("tunesmith-merged-*"))
    path, status = ex.download_merged(str(alice_run), "final", False, "alice")
    assert path is None and "Not enough disk space" in status and "ts-error" in status
    assert set(Path(get_upload_folder()).glob("tunesmith-merged-*")) == before  # nothing left


def test_card_preview_shows_markup_as_text(alice_run):
    cfg = yaml.safe_load((alice_run / "config.yaml").read_text())
    cfg["data"] = "<script>alert(1)<img src=x onerror=alert(1)>.jsonl"
    (alice_run / "config.yaml").write_text(yaml.safe_dump(cfg))
    preview = ex.card_preview(str(alice_run), "final", "merged", "alice")
    assert preview.startswith("```yaml\n") and "library_name: transformers" in preview
    assert "<script" not in preview.lower() and "<img" not in preview
    assert "&lt;script&gt;" in preview


def test_push_failure_is_plain_and_never_echoes_the_token(alice_run, monkeypatch):
    status = ex.push_to_hub(
        str(alice_run), "final", "adapter", "not a repo", True, TOKEN, False, "alice"
    )
    assert "owner/model-name" in status and TOKEN not in status
    # conftest keeps the machine offline: the real client refuses, the message says why
    status = ex.push_to_hub(
        str(alice_run), "final", "adapter", "alice/m", True, TOKEN, False, "alice"
    )
    assert "Offline mode" in status and TOKEN not in status
    monkeypatch.delenv("HF_TOKEN", raising=False)
    status = ex.push_to_hub(str(alice_run), "final", "adapter", "alice/m", True, "", False, "alice")
    assert "No Hugging Face token" in status


def test_space_secret_pushes_only_when_the_owner_allows(alice_run, monkeypatch):
    """A blank token box on a public Space must not push with the owner's HF_TOKEN."""
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    args = (str(alice_run), "final", "adapter", "alice/m", True, "", False, "alice")
    status = ex.push_to_hub(*args)
    assert "No Hugging Face token" in status and TOKEN not in status
    status = ex.push_to_hub(*args, space_token=True)  # the owner opted in (Settings)
    assert "Offline mode" in status  # got past the token check to the (offline) Hub client


def test_tab_builds(alice_run):
    import gradio as gr

    with gr.Blocks() as demo:
        ex.build_export_tab(gr.State("alice"))
    labels = {getattr(b, "label", None) for b in demo.blocks.values()}
    assert {"Run", "Checkpoint", "Hub repository", "Hugging Face token (write)"} <= labels
    token = next(
        b for b in demo.blocks.values() if getattr(b, "label", "") == "Hugging Face token (write)"
    )
    assert token.type == "password"


def test_remote_code_needs_the_owners_permission(alice_run):
    from training.settings import Settings

    status = ex.build_merged(str(alice_run), "final", True, "alice")
    assert "owner has not allowed" in status and not (alice_run / "export").exists()
    path, status = ex.download_merged(str(alice_run), "final", True, "alice")
    assert path is None and "owner has not allowed" in status
    status = ex.push_to_hub(
        str(alice_run), "final", "adapter", "alice/m", True, TOKEN, True, "alice"
    )
    assert "owner has not allowed" in status and TOKEN not in status
    # A run whose config trusts its model's code (made with the CLI, or before the owner
    # turned it off): its tokenizer loads with that, so the zip is refused as well.
    cfg = yaml.safe_load((alice_run / "config.yaml").read_text())
    (alice_run / "config.yaml").write_text(yaml.safe_dump({**cfg, "trust_remote_code": True}))
    path, status = ex.download_zip(str(alice_run), "final", "alice")
    assert path is None and "owner has not allowed" in status
    on_a_space = Settings(allow_remote_code=True, space_id="owner/space")
    path, status = ex.download_zip(str(alice_run), "final", "alice", on_a_space)
    assert path is None and "public Space" in status
    path, _ = ex.download_zip(str(alice_run), "final", "alice", Settings(allow_remote_code=True))
    assert Path(path).is_file()


def test_the_trust_box_explains_why_it_is_off():
    import gradio as gr

    from training.settings import Settings

    for settings, allowed in ((Settings(), False), (Settings(allow_remote_code=True), True)):
        with gr.Blocks() as demo:
            ex.build_export_tab(settings=settings)
        [box] = [b for b in demo.blocks.values() if getattr(b, "label", "") == "Trust remote code"]
        assert box.interactive is allowed
        assert ("owner has not allowed" in box.info) is not allowed


def test_a_signed_in_visitor_pushes_with_their_sign_in_and_it_is_never_kept(alice_run, monkeypatch):
    import gradio as gr
    import huggingface_hub

    from training.paths import home

    oauth = "hf_oauth_SignInToken0123456789abcdef"
    seen = []

    class FakeApi:
        def __init__(self, token=None, **kw):
            seen.append(token)

        def create_repo(self, repo_id, **kw):
            return None

        def upload_folder(self, **kw):
            return None

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    push = ex.push_handler(space_token=False, settings=ex.Settings(oauth_client_id="x"))
    signed_in = gr.OAuthToken(token=oauth, scope="openid profile manage-repos", expires_at=0)
    args = (str(alice_run), "final", "adapter", "alice/m", "", True)
    status = push(*args, "", False, "alice", signed_in, lambda *a, **k: None)
    assert "Pushed to" in status and seen == [oauth] and oauth not in status
    status = push(*args, TOKEN, False, "alice", signed_in, lambda *a, **k: None)
    assert seen[-1] == TOKEN  # a pasted token wins: e.g. one with access to an organisation
    status = push(*args, "", False, "alice", None, lambda *a, **k: None)
    assert "No Hugging Face token" in status  # anonymous, blank box: nothing to push with
    on_disk = b"".join(p.read_bytes() for p in home().rglob("*") if p.is_file())
    assert oauth.encode() not in on_disk and TOKEN.encode() not in on_disk


def test_the_repository_box_starts_with_the_signed_in_username():
    import gradio as gr

    alice = {"preferred_username": "alice", "name": "Alice", "profile": "", "picture": ""}
    assert ex.your_repo(gr.OAuthProfile(alice))["value"] == "alice/"
    assert ex.your_repo(None) == gr.skip()


def test_publish_a_demo_pushes_the_model_then_a_space_and_only_for_the_owner(
    alice_run, monkeypatch
):
    import huggingface_hub
    import yaml as _yaml

    calls = []

    class FakeApi:
        def __init__(self, token=None):
            calls.append(("init", token))

        def create_repo(self, repo_id, **kw):
            calls.append(("create_repo", repo_id, kw["repo_type"], kw["private"]))

        def upload_folder(self, **kw):
            calls.append(("upload_folder", kw["repo_id"], kw["repo_type"]))

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    args = ("final", "adapter", "alice/m", True, TOKEN, False)
    demo = {"space_id": "alice/m-demo"}
    # A local base model cannot run in a Space: refused before anything is pushed.
    status = ex.push_to_hub(str(alice_run), *args, "alice", lambda *a, **k: None, **demo)
    assert "folder on this machine" in status and calls == []
    cfg = _yaml.safe_load((alice_run / "config.yaml").read_text())
    cfg["model"] = "HuggingFaceTB/SmolLM2-135M-Instruct"
    (alice_run / "config.yaml").write_text(_yaml.safe_dump(cfg))
    status = ex.push_to_hub(str(alice_run), *args, "bob", lambda *a, **k: None, **demo)
    assert ex.runs.REFUSED in status
    assert calls == []  # another visitor's run: nothing pushed
    status = ex.push_to_hub(str(alice_run), *args, "alice", lambda *a, **k: None, **demo)
    assert "demo Space at https://huggingface.co/spaces/alice/m-demo" in status, status
    assert TOKEN not in status
    pushed = [c for c in calls if c[0] != "init"]
    assert pushed == [
        ("create_repo", "alice/m", "model", True),
        ("upload_folder", "alice/m", "model"),
        ("create_repo", "alice/m-demo", "space", True),
        ("upload_folder", "alice/m-demo", "space"),
    ]
