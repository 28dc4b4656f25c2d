"""The Data tab's Hugging Face Hub source, its handlers called directly: the pickers fill
from a dataset's metadata (the offline cache of tests/hub_dataset.py), a split loads into the
same preview and report as an upload, and refusals from a stand-in Hub keep the token out of
every output, log and file."""

import logging
import os
from pathlib import Path

import gradio as gr
import pytest

from components import data_tab as dt
from components import hub_picker as hp
from tests.components.test_data_tab import no_progress
from tests.hub_dataset import (
    CHATS_SHA,
    CHATS_V1_SHA,
    chats_files,
    go_online,
    refusing_hub,
    serving_hub,
    use_hub_cache,
)
from training.data import DataChoice, hub
from training.settings import Settings

TOKEN = "hf_" + "visitorSecret" * 3


@pytest.fixture
def cache(tmp_path, monkeypatch):
    return use_hub_cache(tmp_path, monkeypatch)


@pytest.fixture(scope="module")
def allowed(tiny_model_dir) -> Settings:
    return Settings(model_dirs=str(tiny_model_dir.parent))


def load(*picked, model, settings, token=False, max_bytes=None) -> list[dt.View]:
    views = dt.on_hub_load(
        *picked, token, 1024, model, False, no_progress, max_bytes=max_bytes, settings=settings
    )
    return [dt.View(*v) for v in views]


def test_the_pickers_fill_from_the_datasets_metadata(cache):
    config, split, revision, splits, status = hp.on_lookup("me/chats", None, False)
    assert config == gr.update(choices=["default", "short"], value="default")
    assert split == gr.update(choices=["train", "test"], value="train")
    assert revision == gr.update(choices=["main", "v1"], value="main")
    assert splits == {"default": ["train", "test"], "short": ["train"]}
    assert "commit c0ffee0" in status and "2 configurations" in status
    assert hp.on_config("short", splits) == gr.update(choices=["train"], value="train")
    # the dataset's address and a typed reference work too; a revision picked is looked up
    _, split, _, _, _ = hp.on_lookup("https://huggingface.co/datasets/me/chats", "v1", False)
    assert split["value"] == "train"
    config, split, *_ = hp.on_lookup("hub:me/chats:short#train", None, False)
    assert config["value"] == "short" and split["value"] == "train"
    *_, status = hp.on_lookup("me/elsewhere", None, False)
    assert "Hugging Face cache, and this machine is offline" in status and "ts-error" in status
    assert "hf download --repo-type dataset" in status  # what to do about it


def test_a_split_loads_into_the_same_views_as_an_upload(cache, tiny_model_dir, allowed):
    views = load(
        "me/chats", "default", "train", "main", model=str(tiny_model_dir), settings=allowed
    )
    assert "Looking up hub:me/chats:default@main#train" in views[0].verdict
    preview, done = views[1], views[-1]
    assert "Checking" in preview.verdict and "Hub question 0?" in preview.preview
    assert preview.report == ""  # the preview comes before the full check
    assert 'data-code="unparseable_line"' in done.report and "row 213" in done.report
    choice = done.choice
    assert choice.path == f"hub:me/chats:default@{CHATS_SHA}#train"  # pinned to the commit
    assert choice.format == "messages" and choice.summary.errors == 1
    assert choice.run_fields()["data"] == choice.path
    # a recheck reads the pinned reference again (no token needed: the server checked it)
    rechecked = dt.on_format(choice, "messages", 1024, str(tiny_model_dir), False, no_progress)
    view = dt.View(*list(rechecked)[-1])
    assert view.choice.path == choice.path and view.choice.summary.errors == 1
    assert "Hub answer 5." in dt.show_row(choice, 6, str(tiny_model_dir), False, allowed)


def test_a_tag_pins_its_own_commit_and_other_configs_load(cache, tiny_model_dir, allowed):
    done = load("me/chats", "default", "train", "v1", model=str(tiny_model_dir), settings=allowed)
    assert done[-1].choice.path == f"hub:me/chats:default@{CHATS_V1_SHA}#train"
    done = load("me/chats", "short", "train", "main", model=str(tiny_model_dir), settings=allowed)
    assert done[-1].choice.ok and done[-1].choice.format == "prompt_completion"


@pytest.mark.parametrize(
    ("picked", "max_bytes", "code"),
    [
        (("me/chats", "default", "dev", "main"), None, "hub_split_missing"),
        (("me/chats", "default", "train", "main"), 20_000, "hub_split_too_large"),
        (("me/pictures", None, "test", None), None, "hub_unsupported_files"),
        (("not a dataset", None, None, None), None, "hub_bad_reference"),
    ],
)
def test_what_cannot_be_loaded_is_a_report(cache, tiny_model_dir, picked, max_bytes, code):
    views = load(*picked, model=str(tiny_model_dir), settings=None, max_bytes=max_bytes)
    assert f'data-code="{code}"' in views[-1].report and "ts-error" in views[-1].verdict
    assert views[-1].choice == DataChoice()


def test_an_upload_box_never_takes_a_dataset_reference(cache, tiny_model_dir):
    with pytest.raises(gr.Error):
        list(dt.on_upload(f"hub:me/chats:default@{CHATS_SHA}#train", None, 1024, "m", False))
    with pytest.raises(gr.Error):
        list(dt.on_upload("me/chats", None, 1024, "m", False))


def test_the_visitors_token_is_the_pasted_one_else_the_sign_ins_else_none():
    signed_in = gr.OAuthToken(token="hf_oauth", scope="openid", expires_at=0)
    assert hp.visitor_token(" hf_pasted ", signed_in) == "hf_pasted"
    assert hp.visitor_token("", signed_in) == "hf_oauth"
    assert hp.visitor_token("", None) is False  # never the Space's own HF_TOKEN


def test_refused_online_without_a_token_or_with_a_wrong_one_and_the_token_kept_nowhere(
    cache, tiny_model_dir, allowed, monkeypatch, caplog
):
    """Visitor A's check left me/chats in the cache and its listing kept; visitor B, online,
    gets nothing of it without the Hub's yes, even typing A's pinned reference."""
    model = str(tiny_model_dir)
    load("me/chats", "short", "train", "main", model=model, settings=allowed)  # A, offline
    hub._remember(hub.describe("me/chats"))  # the listing A's check online would have kept
    monkeypatch.setenv("HF_TOKEN", "hf_theSpacesOwnToken")  # never sent for a visitor
    with refusing_hub() as (endpoint, seen), caplog.at_level(logging.DEBUG):
        go_online(monkeypatch, endpoint)
        pinned = f"hub:me/chats:short@{CHATS_SHA}#train"
        views = load(pinned, None, None, None, model=model, settings=allowed)
        assert 'data-code="hub_needs_token"' in views[-1].report
        assert "Sign in with Hugging Face or paste a read token" in views[-1].report
        views += load("me/chats", None, "train", None, model=model, settings=allowed, token=TOKEN)
        assert 'data-code="hub_token_refused"' in views[-1].report
        assert views[-1].choice == DataChoice()
        lookup = hp.on_lookup("me/chats", None, TOKEN)
        assert "refused the token" in lookup[-1]
    assert [h.get("authorization") for _, h in seen][:2] == [None, f"Bearer {TOKEN}"]
    assert not any(TOKEN in str(part) for view in views for part in view)
    assert TOKEN not in caplog.text and "hf_theSpacesOwnToken" not in str(seen)
    home = Path(os.environ["TUNESMITH_HOME"])
    assert not any(TOKEN in p.read_text(errors="replace") for p in home.rglob("*") if p.is_file())


def test_a_private_dataset_online_for_its_owner_only(cache, tiny_model_dir, allowed, monkeypatch):
    """Visitor A (the right token) loads me/private from a Hub stand-in: the preview fetches
    the first file only, the check the rest, the choice is pinned. Visitor B, without a token
    or with a wrong one, is refused although the files now sit in the cache; a recheck of
    A's choice reads the cache with no request at all."""
    model, files = str(tiny_model_dir), chats_files()
    with serving_hub({"me/private": ("9" * 40, files)}, TOKEN) as (endpoint, seen, served):
        go_online(monkeypatch, endpoint)
        *_, status = hp.on_lookup("me/private", None, TOKEN)
        assert "commit 9999999" in status
        picked = ("me/private", "default", "train", "main", TOKEN)
        views = dt.on_hub_load(*picked, 1024, model, False, no_progress, settings=allowed)
        next(views)
        assert "Hub question 0?" in dt.View(*next(views)).preview
        assert served == ["data/train-0.jsonl"]  # the preview: the first file only
        done = dt.View(*list(views)[-1])
        assert served == ["data/train-0.jsonl", "data/train-1.jsonl"]
        assert done.choice.path == f"hub:me/private:default@{'9' * 40}#train"
        assert "row 213" in done.report
        for token, code in ((False, "hub_needs_token"), ("hf_wrong", "hub_token_refused")):
            b = load("me/private", None, None, None, model=model, settings=allowed, token=token)
            assert f'data-code="{code}"' in b[-1].report
        asked = len(seen)
        rechecked = dt.on_format(done.choice, "messages", 1024, model, False, no_progress)
        assert dt.View(*list(rechecked)[-1]).choice.summary.errors == 1 and len(seen) == asked
    home = Path(os.environ["TUNESMITH_HOME"])
    assert not any(TOKEN in p.read_text(errors="replace") for p in home.rglob("*") if p.is_file())
