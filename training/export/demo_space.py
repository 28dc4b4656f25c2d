"""A demo Space for a tuned model: a small Gradio app anyone can open to chat with it.

    folder = build_demo_space(run_dir, "me/my-model")            # RUN_DIR/export/demo-space/
    url = publish_demo_space(run_dir, "me/my-demo", "me/my-model", token)   # private Space
    python -m training export RUN_DIR --demo-space me/my-demo [--push me/my-model] [--public]

The folder is a whole Space on its own, without Tunesmith: `app.py` (a chat page, and for an
adapter a "base vs tuned" page that switches the adapter off), `requirements.txt` pinned to
the versions Tunesmith itself runs, a README whose front matter names the model (`models:`),
the hardware the model's size suggests and links back to the model repo, and
`tunesmith_demo.json` with the model ids, the system prompt and the Playground's generation
settings. On ZeroGPU hardware the app asks for the GPU with `@spaces.GPU` (a no-op
elsewhere). `DEMO_MODEL` / `DEMO_BASE_MODEL` in the environment point it at local folders,
which is how it is tried (and tested) before publishing.
"""

import json
import shutil
from dataclasses import asdict
from pathlib import Path

from training.export import export
from training.jobs import rundir
from training.models.catalogue import hub_id

DEMO_FOLDER = "demo-space"
CONFIG_FILE = "tunesmith_demo.json"
# The demo's own requirements: the versions this app runs (requirements.txt), so the model
# loads in the Space exactly as it did here.
PINS = {
    "torch": "2.13.0",
    "gradio": "6.31.0",
    "spaces": "0.51.3",
    "transformers": "5.24.0",
    "peft": "0.21.2",
    "accelerate": "1.15.0",
}
# (up to this many parameters, Space hardware): the smallest that runs the model comfortably.
HARDWARE = ((0.6e9, "cpu-basic"), (4e9, "t4-small"), (9e9, "l4x1"))
LARGE_HARDWARE = "a10g-large"


def suggested_hardware(params: float | None) -> str:
    if not params:
        return "t4-small"
    return next((hw for top, hw in HARDWARE if params <= top), LARGE_HARDWARE)


def listed_params(model: str) -> float | None:
    """The catalogue's parameter count for a Hub model ("135M", "1.5B"), when it lists it."""
    from training.models.catalogue import HUB_MODELS

    for repo_id, params, _ in HUB_MODELS:
        if repo_id == model:
            return float(params[:-1]) * {"M": 1e6, "B": 1e9}[params[-1]]
    return None


def demo_config(run_dir, model_repo: str, kind: str = "adapter") -> dict:
    """What the demo app reads: where the model is, the system prompt, generation settings."""
    from training.chat.engine import PLAYGROUND
    from training.recipe import model_params

    cfg = export.run_config(Path(run_dir))
    base = hub_id(cfg.model) or cfg.model
    settings = asdict(PLAYGROUND)
    generation = {k: settings[k] for k in ("temperature", "top_p", "max_new_tokens", "seed")}
    generation["repetition_penalty"] = settings["repetition_penalty"]
    return {
        "model": model_repo,
        "base_model": base,
        "kind": kind,
        "system_prompt": settings["system_prompt"],
        "generation": generation,
        "hardware": suggested_hardware(model_params(cfg.model) or listed_params(base)),
        "title": f"{model_repo.split('/')[-1]}: a Tunesmith fine-tune",
    }


def build_demo_space(
    run_dir, model_repo: str, kind: str = "adapter", out_dir=None, checkpoint: str = "final"
) -> Path:
    """RUN_DIR/export/demo-space/ (or out_dir): the Space's files, built in a temp sibling."""
    run_dir, _, _ = export._source(run_dir, checkpoint)  # a run with an adapter, or refused
    model_repo = export.check_repo_id(model_repo)
    if kind not in ("adapter", "merged"):
        raise export.ExportError("The demo shows an adapter or a merged model.")
    config = demo_config(run_dir, model_repo, kind)
    target = Path(out_dir) if out_dir else run_dir / export.EXPORT / DEMO_FOLDER
    tmp = export._staging(target)
    try:
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", "utf-8")
        (tmp / "app.py").write_text(APP, "utf-8")
        pins = "".join(f"{name}=={version}\n" for name, version in PINS.items())
        (tmp / "requirements.txt").write_text(pins, "utf-8")
        (tmp / "README.md").write_text(readme(config), "utf-8")
        return rundir.replace_folder(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def readme(config: dict) -> str:
    from huggingface_hub import SpaceCard, SpaceCardData

    models = [config["model"]]
    if config["kind"] == "adapter" and export.REPO_ID.fullmatch(config["base_model"]):
        models.append(config["base_model"])
    data = SpaceCardData(
        title=config["title"][:60],
        emoji="🎛️",
        colorFrom="indigo",
        colorTo="green",
        sdk="gradio",
        sdk_version=PINS["gradio"],
        app_file="app.py",
        models=models,
        tags=["tunesmith", "peft" if config["kind"] == "adapter" else "merged"],
        suggested_hardware=config["hardware"],
        short_description="Chat with a model fine-tuned with Tunesmith",
    )
    repo = config["model"]
    body = (
        f"# {config['title']}\n\n"
        f"Chat with [{repo}](https://huggingface.co/{repo}), fine-tuned with Tunesmith from "
        f"`{config['base_model']}`.\n\n"
        + (
            "The *Base vs tuned* page answers the same prompt with the adapter off and on.\n\n"
            if config["kind"] == "adapter"
            else ""
        )
        + "Generation settings and the system prompt are in `tunesmith_demo.json`.\n"
    )
    return str(SpaceCard.from_template(data, template_str="---\n{{ card_data }}\n---\n\n" + body))


def check_publishable(run_dir, kind: str = "adapter") -> None:
    """ExportError unless a Space could load this run's model: an adapter needs its base
    model on the Hub (a merged model carries everything)."""
    cfg = export._source(run_dir, "final")[2]
    if kind == "adapter" and not hub_id(cfg.model):
        raise export.ExportError(
            "The base model is a folder on this machine, so a Space cannot load it: push the "
            "merged model and publish a demo of that instead."
        )


def publish_demo_space(
    run_dir,
    space_id: str,
    model_repo: str,
    token=None,
    private: bool = True,
    kind: str = "adapter",
    env_fallback: bool = True,
) -> str:
    """Build the demo folder and push it as a Gradio Space (private unless asked); its URL."""
    space_id = export.check_repo_id(space_id)
    token = export.hub_token(token, env_fallback)
    check_publishable(run_dir, kind)
    folder = build_demo_space(run_dir, model_repo, kind)
    from huggingface_hub import HfApi

    try:
        api = HfApi(token=token)
        url = api.create_repo(
            space_id, private=private, exist_ok=True, repo_type="space", space_sdk="gradio"
        )
        api.upload_folder(
            repo_id=space_id,
            folder_path=str(folder),
            repo_type="space",
            commit_message=f"Tunesmith: demo of {model_repo}",
        )
    except Exception as exc:
        export.log.warning(
            "demo Space %s failed: %s",
            space_id,
            export._scrub(f"{type(exc).__name__}: {exc}", token),
        )
        raise export.ExportError(export._scrub(export._hub_error(exc, space_id), token)) from None
    return str(url or f"https://huggingface.co/spaces/{space_id}")


APP = '''"""A chat demo of a model fine-tuned with Tunesmith (settings in tunesmith_demo.json)."""

import contextlib
import json
import os
from pathlib import Path

import gradio as gr
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

try:  # on ZeroGPU hardware this asks for the GPU per call; elsewhere it changes nothing
    import spaces

    gpu = spaces.GPU
except ImportError:

    def gpu(fn):
        return fn


CONFIG = json.loads((Path(__file__).parent / "tunesmith_demo.json").read_text("utf-8"))
MODEL = os.environ.get("DEMO_MODEL") or CONFIG["model"]
BASE = os.environ.get("DEMO_BASE_MODEL") or CONFIG["base_model"]
GEN = CONFIG["generation"]
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
DTYPE = torch.bfloat16 if DEVICE == "cuda" else torch.float32

tokenizer = AutoTokenizer.from_pretrained(MODEL)
if CONFIG["kind"] == "adapter":
    from peft import PeftModel

    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(BASE, dtype=DTYPE), MODEL)
else:
    model = AutoModelForCausalLM.from_pretrained(MODEL, dtype=DTYPE)
model = model.to(DEVICE).eval()


def text_of(content) -> str:
    if isinstance(content, str):
        return content
    parts = content if isinstance(content, list) else [content]
    return " ".join(p.get("text", "") for p in parts if isinstance(p, dict))


def conversation(message, history) -> list[dict]:
    turns = [{"role": "system", "content": CONFIG["system_prompt"]}] if CONFIG["system_prompt"] else []
    for turn in history or []:
        if isinstance(turn, dict) and turn.get("role") in ("user", "assistant"):
            turns.append({"role": turn["role"], "content": text_of(turn.get("content"))})
    return turns + [{"role": "user", "content": text_of(message)}]


@gpu
def generate(messages: list[dict], tuned: bool = True) -> str:
    inputs = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_dict=True, return_tensors="pt"
    ).to(DEVICE)
    torch.manual_seed(GEN["seed"])
    sample = GEN["temperature"] > 0
    off = model.disable_adapter() if not tuned and hasattr(model, "disable_adapter") else None
    with torch.no_grad(), off or contextlib.nullcontext():
        out = model.generate(
            **inputs,
            max_new_tokens=GEN["max_new_tokens"],
            do_sample=sample,
            temperature=GEN["temperature"] if sample else None,
            top_p=GEN["top_p"] if sample else None,
            repetition_penalty=GEN["repetition_penalty"],
            pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
        )
    return tokenizer.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True).strip()


def chat(message, history):
    return generate(conversation(message, history))


def compare(message):
    turns = conversation(message, [])
    return generate(turns, tuned=False), generate(turns, tuned=True)


with gr.Blocks(title=CONFIG["title"]) as demo:
    repo = CONFIG["model"]
    gr.Markdown(
        f"## {CONFIG['title']}\\n"
        f"Fine-tuned with Tunesmith from `{CONFIG['base_model']}`: "
        f"[the model on the Hub](https://huggingface.co/{repo})."
    )
    with gr.Tab("Chat"):
        gr.ChatInterface(chat, api_name="chat")
    if CONFIG["kind"] == "adapter":
        with gr.Tab("Base vs tuned"):
            prompt = gr.Textbox(label="Prompt")
            ask = gr.Button("Ask both")
            with gr.Row():
                base_out = gr.Textbox(label="Base model")
                tuned_out = gr.Textbox(label="Tuned model")
            ask.click(compare, prompt, [base_out, tuned_out], api_name="compare")

if __name__ == "__main__":
    demo.launch()
'''
