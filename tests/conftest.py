"""Shared fixtures. Offline switches are set here, before anything imports gradio or
huggingface_hub (they start network threads on import otherwise)."""

import os
import tempfile

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("GRADIO_TEMP_DIR", tempfile.mkdtemp(prefix="tunesmith-gradio-"))

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(autouse=True)
def _tunesmith_home(tmp_path, monkeypatch):
    """Every test gets its own state root, so runs and job databases never leak."""
    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path / "home"))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    from tests.assets import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-chatml"))


@pytest.fixture(scope="session")
def tiny_llama3_model_dir(tmp_path_factory):
    from tests.assets import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama3"), template="llama3")


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)
