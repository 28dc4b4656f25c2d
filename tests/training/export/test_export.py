"""Export: merged model equals base + adapter, zip contents, model card safety, Hub push with
a fake client (the token never lands on disk or in logs), and the CLI."""

import json
import logging
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from tests.assets import MSGS, make_run
from training.export import export
from training.paths import REPO_ROOT, home, runs_dir

TOKEN = "hf_TestSecretToken0123456789abcdef"
HOSTILE = "evil\n---\nlibrary_name: hacked <script>alert(1)<img src=x onerror=alert(1)> [x](javascript:alert(1)) |.jsonl"


@pytest.fixture(scope="module")
def run(tiny_model_dir, tmp_path_factory):
    run = make_run(tmp_path_factory.mktemp("runs") / "run1", tiny_model_dir)
    metrics = {"steps": 6, "train_loss": 1.234567, "train_examples": 9, "validation_examples": 3}
    for folder in (run, run / "adapter"):  # as the worker writes them
        (folder / "metrics.json").write_text(json.dumps(metrics))
    return run


def front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n")[1])


def hub_run(run: Path, dest: Path, data: str = "data.jsonl") -> Path:
    """A copy of the run whose base model is a Hub id (the card only reads config.yaml)."""
    shutil.copytree(run, dest)
    cfg = yaml.safe_load((dest / "config.yaml").read_text())
    cfg |= {"model": "HuggingFaceTB/SmolLM2-135M-Instruct", "data": data}
    (dest / "config.yaml").write_text(yaml.safe_dump(cfg))
    return dest


def test_merged_model_equals_base_plus_adapter(run, tiny_model_dir):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    merged = export.merge(run)
    assert merged == run / "export" / "merged" and list(merged.glob("*.safetensors"))
    tok = AutoTokenizer.from_pretrained(merged)
    assert (
        tok.chat_template
        and tok.chat_template == AutoTokenizer.from_pretrained(run / "adapter").chat_template
    )
    ids = tok.apply_chat_template(
        MSGS, add_generation_prompt=True, return_dict=True, return_tensors="pt"
    )
    tuned = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(tiny_model_dir), run / "adapter"
    ).eval()
    plain = AutoModelForCausalLM.from_pretrained(merged).eval()  # no peft involved
    with torch.no_grad():
        expected, got = tuned(**ids).logits, plain(**ids).logits
        with tuned.disable_adapter():
            base = tuned(**ids).logits
    assert torch.allclose(expected, got, atol=1e-5)
    assert not torch.allclose(base, got, atol=1e-3)  # the adapter really is in the weights
    meta = front_matter((merged / "README.md").read_text())
    assert meta["library_name"] == "transformers" and "base_model" not in meta  # local base
    assert not list(merged.parent.glob(".merged*"))  # no temp folder left behind
    assert export.fresh(merged, run / "adapter")


def test_no_adapter_is_refused_clearly(tmp_path, tiny_model_dir):
    from training.config import RunConfig

    RunConfig(model=str(tiny_model_dir), data="d.jsonl").to_yaml(tmp_path / "config.yaml")
    for call in (export.merge, export.adapter_zip, export.model_card):
        with pytest.raises(export.ExportError, match="no adapter"):
            call(tmp_path)
    with pytest.raises(export.ExportError, match="not a run directory") as refused:
        export.merge(tmp_path / "nothing")
    assert str(tmp_path) not in str(refused.value)  # visitors read it: no server path
    with pytest.raises(export.ExportError, match="not a checkpoint"):
        export.adapter_zip(tmp_path, "../../etc")


def test_zip_holds_adapter_tokenizer_and_card(run, tmp_path):
    archive = export.adapter_zip(run, out_dir=tmp_path)
    assert archive.name == "run1-adapter.zip" and not list(tmp_path.glob(".*"))
    names = set(zipfile.ZipFile(archive).namelist())
    assert {
        "adapter_config.json",
        "adapter_model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "README.md",
        "metrics.json",
    } <= names
    checkpoint = export.adapter_zip(run, "checkpoint-2")  # default: under RUN_DIR/export
    assert checkpoint == run / "export" / "run1-checkpoint-2-adapter.zip"
    inside = zipfile.ZipFile(checkpoint)
    assert "tokenizer.json" in inside.namelist()  # borrowed from the final adapter
    assert "checkpoint-2" in inside.read("README.md").decode()


def test_merged_zip_holds_the_merged_model_and_is_reused_while_fresh(run, tmp_path):
    said = []
    archive = export.merged_zip(run, out_dir=tmp_path, progress=said.append)
    assert archive == tmp_path / "run1-merged.zip" and not list(tmp_path.glob(".*"))
    merged = export.merged_path(run)
    with zipfile.ZipFile(archive) as inside:
        assert set(inside.namelist()) == {f.name for f in merged.iterdir()}
        assert {"config.json", "model.safetensors", "tokenizer.json", "README.md"} <= set(
            inside.namelist()
        )
        weights = inside.getinfo("model.safetensors")
        assert weights.compress_type == zipfile.ZIP_STORED  # floats hardly compress
        assert inside.read("model.safetensors") == (merged / "model.safetensors").read_bytes()
    assert said[-1] == "Zipping the merged model..."
    assert not any(str(run) in message or str(tmp_path) in message for message in said)
    built = archive.stat().st_mtime_ns
    assert export.merged_zip(run, out_dir=tmp_path) == archive  # fresh: handed out again
    assert archive.stat().st_mtime_ns == built


def test_zip_streams_to_disk_and_refuses_when_the_disk_is_short(tmp_path, monkeypatch):
    import tracemalloc

    folder = tmp_path / "model"
    folder.mkdir()
    with open(folder / "model.safetensors", "wb") as f:
        for _ in range(48):
            f.write(os.urandom(1024 * 1024))
    (folder / "config.json").write_text("{}")
    tracemalloc.start()
    try:
        archive = export._zip(folder, tmp_path / "m.zip")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert zipfile.ZipFile(archive).testzip() is None
    assert peak < 4 * 1024 * 1024, peak  # 48 MB zipped with a few MB at most in memory

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(
        export.shutil, "disk_usage", lambda path: usage._replace(free=10 * 1024 * 1024)
    )
    with pytest.raises(export.ExportError, match="Not enough disk space") as refused:
        export._zip(folder, tmp_path / "again.zip")
    assert str(tmp_path) not in str(refused.value)
    assert not (tmp_path / "again.zip").exists() and not list(tmp_path.glob(".again*"))


def test_card_front_matter_eval_verdict_and_hub_base(run, tmp_path):
    hub = hub_run(run, tmp_path / "hub")
    (hub / "eval").mkdir()
    report = {
        "rows": 3,
        "verdict": "tuned beats base on 2 of 3 rows (1 tie, 0 losses, by ROUGE-L).",
        "base": {"rouge_l": 0.1, "loss": 2.5},
        "tuned": {"rouge_l": 0.8, "loss": 0.4},
        "few_shot": None,
        "checkpoint": "final",
        "data": "/x/val.jsonl",
    }
    (hub / "eval" / "report.json").write_text(json.dumps(report))
    card = export.model_card(hub, repo_id="alice/my-model")
    meta = front_matter(card)
    assert meta["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert meta["library_name"] == "peft" and meta["pipeline_tag"] == "text-generation"
    assert {"tunesmith", "lora", "sft"} <= set(meta["tags"])
    assert "tuned beats base on 2 of 3 rows" in card and "| rouge_l | 0.1 | 0.8 |" in card
    assert 'PeftModel.from_pretrained(base, "alice/my-model")' in card
    assert "| Learning rate | 0.0002" in card and "9 training rows, 3 held out" in card
    assert "LoRA r 4, alpha 8" in card  # read from the adapter actually trained
    folder = export.adapter_folder(hub)  # loads its base from the Hub, not a local path
    config = json.loads((folder / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert "Evaluation" not in export.model_card(run)  # no report, no section


def test_card_includes_the_decision_report_when_there_is_one(run, tmp_path):
    copy = hub_run(run, tmp_path / "decided")
    assert "fine-tune at all" not in export.model_card(copy)
    (copy / "decision.md").write_text(
        "# Should I fine-tune at all?\n\n**Recommendation: retrieval.** Retrieval matches "
        "the tuned model within 2 points.\n\n## Checklist\n\n- [x] Data size: 9 rows\n"
    )
    card = export.model_card(copy)
    section = card[card.index("## Should you fine-tune at all?") : card.index("## Usage")]
    assert "**Recommendation: retrieval.** Retrieval matches" in section
    assert "### Checklist" in section and "- [x] Data size: 9 rows" in section
    assert "# Should I fine-tune" not in card  # its title gives way to the section heading


def test_hostile_names_break_neither_yaml_nor_markdown(run, tmp_path):
    hub = hub_run(run, tmp_path / "hostile", data=f"/tmp/{HOSTILE}")
    card = export.model_card(hub)
    meta = front_matter(card)
    assert meta["library_name"] == "peft" and set(meta) == {
        "base_model",
        "library_name",
        "pipeline_tag",
        "tags",
    }
    assert card.count("\n---\n") == 1  # only the end of the front matter
    assert "<script" not in card and "&lt;script&gt;" in card
    assert "[x](javascript" not in card and "javascript:" not in card
    data_row = next(line for line in card.splitlines() if line.startswith("| Data |"))
    assert data_row.count(" | ") == 1 and data_row.endswith(" |")  # the '|' cannot split the table
    for bad in (
        "alice/x<script>",
        "alice",
        "a/b/c",
        "alice/..",
        "alice/x--y",
        "-a/b",
        "a/" + "x" * 96,
    ):
        with pytest.raises(export.ExportError, match="owner/model-name"):
            export.model_card(run, repo_id=bad)


class FakeApi:
    calls: list = []
    fail_status: int | None = None

    def __init__(self, token=None):
        FakeApi.calls.append(("init", token))

    def create_repo(self, repo_id, **kwargs):
        if FakeApi.fail_status:
            import httpx2
            from huggingface_hub.errors import HfHubHTTPError

            request = httpx2.Request("POST", "https://huggingface.co/api/repos/create")
            raise HfHubHTTPError(
                f"{FakeApi.fail_status} Client Error (token {TOKEN})",
                response=httpx2.Response(FakeApi.fail_status, request=request),
            )
        FakeApi.calls.append(("create_repo", repo_id, kwargs))
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, **kwargs):
        FakeApi.calls.append(("upload_folder", kwargs))


@pytest.fixture
def fake_hub(monkeypatch):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    FakeApi.calls, FakeApi.fail_status = [], None
    return FakeApi


def all_bytes(*roots: Path) -> bytes:
    return b"".join(p.read_bytes() for root in roots for p in root.rglob("*") if p.is_file())


def test_push_creates_repo_and_uploads_without_leaking_the_token(
    fake_hub, tiny_model_dir, caplog, capfd
):
    caplog.set_level(logging.DEBUG)
    run = make_run(runs_dir() / "mine", tiny_model_dir)
    url = export.publish(run, "final", "adapter", "alice/my-model", TOKEN, private=True)
    assert url == "https://huggingface.co/alice/my-model"
    assert fake_hub.calls[0] == ("init", TOKEN)
    assert fake_hub.calls[1] == (
        "create_repo",
        "alice/my-model",
        {"private": True, "exist_ok": True, "repo_type": "model"},
    )
    kind, upload = fake_hub.calls[2]
    assert kind == "upload_folder" and upload["repo_id"] == "alice/my-model"
    assert (
        upload["repo_type"] == "model" and Path(upload["folder_path"]) == run / "export" / "adapter"
    )
    assert "alice/my-model" in (run / "export" / "adapter" / "README.md").read_text()
    merged = export.merge(run)
    built = (merged / "model.safetensors").stat().st_mtime_ns
    export.publish(run, "final", "merged", "alice/merged", TOKEN)  # reuses the fresh merge
    assert (merged / "model.safetensors").stat().st_mtime_ns == built
    assert Path(fake_hub.calls[-1][1]["folder_path"]) == merged
    assert 'from_pretrained("alice/merged")' in (merged / "README.md").read_text()
    fake_hub.fail_status = 401
    with pytest.raises(export.ExportError, match="token was refused") as refused:
        export.push(run / "export" / "adapter", "alice/my-model", TOKEN)
    assert TOKEN not in str(refused.value) and refused.value.__cause__ is None
    fake_hub.fail_status = 403
    with pytest.raises(export.ExportError, match="may not write to alice"):
        export.push(run / "export" / "adapter", "alice/my-model", TOKEN)
    out, err = capfd.readouterr()
    assert "push to alice/my-model failed" in caplog.text  # logged, with the token scrubbed
    assert TOKEN not in caplog.text + out + err
    assert TOKEN.encode() not in all_bytes(home(), run)


def test_push_refuses_before_any_call(fake_hub, run, monkeypatch):
    folder = export.adapter_folder(run)
    for bad in ("no-owner", "a/b c", "../etc/passwd", ""):
        with pytest.raises(export.ExportError, match="owner/model-name"):
            export.push(folder, bad, TOKEN)
    with pytest.raises(export.ExportError, match="No Hugging Face token"):
        export.publish(run, "checkpoint-2", "merged", "alice/x", token="  ")
    assert fake_hub.calls == [] and not export.merged_path(run, "checkpoint-2").exists()
    monkeypatch.setenv("HF_TOKEN", TOKEN)  # a Space secret stands in for a blank token
    export.push(folder, "alice/x", None, private=False)
    assert fake_hub.calls[0] == ("init", TOKEN) and fake_hub.calls[1][2]["private"] is False


def test_real_client_offline_gives_a_plain_message(run):
    """conftest sets HF_HUB_OFFLINE: the real HfApi refuses before any network call."""
    with pytest.raises(export.ExportError, match="Offline mode is on"):
        export.push(export.adapter_folder(run), "alice/my-model", TOKEN)


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "training", "export", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=120,
    )


def test_cli_json_and_errors(run, tmp_path):
    done = cli(str(run), "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert Path(result["zip"]).is_file() and result["merged"] is None and result["pushed"] is None
    assert result["checkpoint"] == "final" and result["private"] is True
    empty = tmp_path / "empty"
    empty.mkdir()
    shutil.copy(run / "config.yaml", empty / "config.yaml")
    done = cli(str(empty), "--json")
    assert done.returncode == 1 and "no adapter" in json.loads(done.stdout)["error"]
    done = cli(str(empty), "--merged")
    assert (
        done.returncode == 1
        and done.stderr.startswith("error: ")
        and "Traceback" not in done.stderr
    )
    env_token = os.environ.pop("HF_TOKEN", None)
    try:
        done = cli(str(run), "--push", "alice/my-model")
    finally:
        if env_token is not None:
            os.environ["HF_TOKEN"] = env_token
    assert done.returncode == 1 and "No Hugging Face token" in done.stderr
    assert cli(str(run), "--push", "bad id").returncode == 1
    assert "HF_TOKEN" in cli("--help").stdout


def test_card_is_valid_model_card_data_with_license_dataset_and_model_index(
    run, tmp_path, monkeypatch
):
    from huggingface_hub import ModelCard
    from huggingface_hub.repocard_data import model_index_to_eval_results

    # The base model's own card, where a download leaves it: its licence is taken from there.
    cache = tmp_path / "hf" / "hub"
    snap = cache / "models--HuggingFaceTB--SmolLM2-135M-Instruct" / "snapshots" / ("a" * 40)
    snap.mkdir(parents=True)
    (snap / "README.md").write_text("---\nlicense: apache-2.0\nlibrary_name: transformers\n---\n")
    (snap.parent.parent / "refs").mkdir()
    (snap.parent.parent / "refs" / "main").write_text("a" * 40)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    hub = hub_run(run, tmp_path / "hub", data="hub:alice/chats:short@" + "b" * 40 + "#train")
    (hub / "eval").mkdir()
    report = {
        "rows": 3,
        "verdict": "no clear improvement",
        "base": {"exact_match": 0.0, "rouge_l": 0.1},
        "tuned": {"exact_match": 0.6667, "rouge_l": 0.8, "json_valid": True},
    }
    (hub / "eval" / "report.json").write_text(json.dumps(report))
    text = export.model_card(hub, repo_id="alice/my-model")
    card = ModelCard(text)  # parses and checks the front matter as the Hub's library does
    data = card.data.to_dict()
    assert data["license"] == "apache-2.0" and data["datasets"] == ["alice/chats"]
    assert data["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert set(data["tags"]) == {"peft", "lora", "trl", "sft", "tunesmith"}
    name, results = model_index_to_eval_results(data["model-index"])
    assert name == "alice/my-model"
    got = {(r.metric_type, r.metric_value, r.dataset_type) for r in results}
    assert got == {("exact_match", 0.6667, "alice/chats"), ("rouge", 0.8, "alice/chats")}
    assert "## Training setup" in text and "## Usage" in text  # the body's sections stay
    # No evaluation: no model-index; a local base with no card: no licence claimed.
    plain = ModelCard(export.model_card(run)).data.to_dict()
    assert "model-index" not in plain and "license" not in plain and "datasets" not in plain


def test_the_merged_model_keeps_the_base_models_dtype_unless_fp32_is_asked(
    tiny_model_dir, tmp_path
):
    from safetensors import safe_open

    base = tmp_path / "bf16-base"
    shutil.copytree(tiny_model_dir, base)
    config = json.loads((base / "config.json").read_text())
    config["dtype"] = "bfloat16"
    config.pop("torch_dtype", None)
    (base / "config.json").write_text(json.dumps(config))
    run = make_run(runs_dir() / "bf16-run", base)

    def weight_dtypes(folder: Path) -> set[str]:
        found = set()
        for file in folder.glob("*.safetensors"):
            with safe_open(file, "pt") as f:
                found |= {str(f.get_slice(k).get_dtype()) for k in f.keys()}  # noqa: SIM118
        return found

    assert export.saved_dtype(str(base)) == "bfloat16"
    merged = export.merge(run)
    assert weight_dtypes(merged) == {"BF16"}
    assert export.fresh(merged, run / "adapter", "bfloat16")
    assert not export.fresh(merged, run / "adapter", "float32")  # fp32 asked: merged again
    zipped = export.merged_zip(run, fp32=True)
    assert weight_dtypes(merged) == {"F32"} and zipped.is_file()
    assert export.saved_dtype(str(tiny_model_dir)) in ("float32", "bfloat16", "float16")
