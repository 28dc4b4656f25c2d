"""Hub datasets as data: references, the cache read offline, the CLI, and refusals from a
stand-in Hub (tests/hub_dataset.py). Nothing here reaches the network."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hub_dataset import (
    CHATS_SHA,
    CHATS_V1_SHA,
    chats_files,
    go_online,
    refusing_hub,
    serving_hub,
    use_hub_cache,
)
from training.data import preview_file, validate_file
from training.data.codes import DataError
from training.data.hub import HubRef, HubSplit, as_ref, describe, open_split, pin, revisions
from training.paths import REPO_ROOT

PINNED = f"hub:me/chats:default@{CHATS_SHA}#train"
TOKEN = "hf_" + "visitorSecret" * 3


@pytest.fixture
def cache(tmp_path, monkeypatch):
    return use_hub_cache(tmp_path, monkeypatch)


def test_references_read_and_print_back():
    assert as_ref("hub:me/chats") == HubRef("me/chats")
    ref = as_ref("hub:me/chats:short@refs/pr/1#test")
    assert ref == HubRef("me/chats", "short", "refs/pr/1", "test")
    assert str(ref) == "hub:me/chats:short@refs/pr/1#test"
    assert as_ref("hub:me/chats", split="validation").split == "validation"
    assert as_ref("me/chats") == HubRef("me/chats")  # a bare OWNER/NAME, no such file here
    assert as_ref("data/chats.jsonl") is None  # a missing file is a file, not a dataset
    assert as_ref(PINNED).pinned and not as_ref("hub:me/chats@main#train").pinned
    for bad in ("hub:me", "hub:me/chats@../../etc", "hub:me/chats#a/b"):
        with pytest.raises(DataError) as e:
            as_ref(bad)
        assert e.value.code == "hub_bad_reference"


def test_configurations_splits_and_revisions_come_from_the_cache(cache):
    meta = describe("me/chats")
    assert meta.sha == CHATS_SHA
    assert meta.configs == {
        "default": {
            "train": ["data/train-0.jsonl", "data/train-1.jsonl"],
            "test": ["data/test.parquet"],
        },
        "short": {"train": ["short/train.csv"]},
    }
    assert revisions("me/chats") == ["main", "v1"]
    assert describe("me/plain").configs == {
        "default": {
            "train": ["train.jsonl"],
            "validation": ["valid.jsonl"],
            "test": ["test.jsonl.gz"],
        }
    }


def test_a_split_is_pinned_to_its_commit(cache):
    assert str(open_split(as_ref("me/chats")).ref) == PINNED
    assert open_split(as_ref("hub:me/chats@v1")).ref.revision == CHATS_V1_SHA
    assert pin("hub:me/chats:short") == f"hub:me/chats:short@{CHATS_SHA}#train"
    assert pin(PINNED) == PINNED and pin("chats.jsonl") == "chats.jsonl"


def test_validation_reads_every_file_of_the_split_with_continuous_rows(cache):
    report = validate_file("hub:me/chats")
    assert report.format == "messages" and report.rows == 250
    [error] = report.errors
    assert error.code == "unparseable_line" and error.row == 213  # line 3 of the second file
    assert validate_file(f"hub:me/chats@{CHATS_V1_SHA}").errors[0].row == 63
    test = validate_file("hub:me/chats#test")
    assert test.format == "prompt_completion" and test.rows == 20 and test.ok
    assert validate_file("hub:me/plain#test").rows == 5  # gzipped JSON lines


def test_the_preview_reads_only_the_first_file(cache, monkeypatch):
    fetched = []
    local = HubSplit.local
    monkeypatch.setattr(
        HubSplit, "local", lambda self, name: fetched.append(name) or local(self, name)
    )
    preview = preview_file("hub:me/chats", 20)
    assert preview.format == "messages" and preview.error is None
    assert preview.row_numbers == list(range(1, 21))
    assert "Hub question 0?" in json.dumps(preview.rows[0])
    assert fetched == ["data/train-0.jsonl"]


@pytest.mark.parametrize(
    ("data", "code", "words"),
    [
        ("hub:me/chats:nope", "hub_config_missing", "it has: default, short"),
        ("hub:me/chats#dev", "hub_split_missing", "it has: train, test"),
        ("hub:me/pictures#test", "hub_unsupported_files", ".arrow"),
        ("hub:me/elsewhere", "hub_offline", "not in this machine's Hugging Face cache"),
        ("hub:me/chats@v9", "hub_offline", "hub:me/chats@v9"),
    ],
)
def test_what_cannot_be_read_says_why(cache, data, code, words):
    report = validate_file(data)
    assert [f.code for f in report.errors] == [code] and report.exit_code == 2
    assert words in report.errors[0].message


def test_a_split_over_the_limit_is_refused_before_reading(cache, monkeypatch):
    monkeypatch.setattr(HubSplit, "local", lambda *a: pytest.fail("nothing may be read"))
    with pytest.raises(DataError) as e:
        open_split(as_ref("hub:me/chats"), max_bytes=20_000)
    assert e.value.code == "hub_split_too_large" and "2 files" in str(e.value)


def validate_cli(*args, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "training", "validate", *args],
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_validates_a_hub_split(cache):
    out = validate_cli("hub:me/chats", "--split", "test", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["format"] == "prompt_completion" and report["rows"] == 20
    out = validate_cli("hub:me/chats:short")
    assert out.returncode == 0 and f"Checked hub:me/chats:short@{CHATS_SHA}#train" in out.stdout
    out = validate_cli("hub:me/chats", "--split", "dev")
    assert out.returncode == 2 and "no split “dev”" in out.stdout and "Traceback" not in out.stderr
    assert validate_cli("x.jsonl", "--split", "a").returncode == 2  # --split is for the Hub


def test_a_cached_private_dataset_is_refused_online_without_a_token(cache, tmp_path, monkeypatch):
    """Online, the Hub is asked first, with the visitor's token or none: the cache holding
    me/chats gives nobody it without the Hub's yes. The token is never written or printed."""
    home = Path(os.environ["TUNESMITH_HOME"])
    with refusing_hub() as (endpoint, seen):
        go_online(monkeypatch, endpoint)
        with pytest.raises(DataError) as e:
            open_split(as_ref("hub:me/chats"), token=False)
        assert e.value.code == "hub_needs_token" and "private or gated" in str(e.value)
        with pytest.raises(DataError) as e:
            open_split(as_ref("hub:me/chats"), token=TOKEN)
        assert e.value.code == "hub_token_refused" and TOKEN not in str(e.value)
        assert [h.get("authorization") for _, h in seen] == [None, f"Bearer {TOKEN}"]
        env = {"HF_ENDPOINT": endpoint, "HF_HUB_OFFLINE": "0", "TRANSFORMERS_OFFLINE": "0"}
        out = validate_cli("hub:me/chats", **env)
        assert out.returncode == 2 and "[hub_needs_token]" in out.stdout, out.stdout + out.stderr
        out = validate_cli("hub:me/chats", "--json", HF_TOKEN=TOKEN, **env)
        assert json.loads(out.stdout)["errors"][0]["code"] == "hub_token_refused"
        assert TOKEN not in out.stdout + out.stderr
    assert seen[-1][1].get("authorization") == f"Bearer {TOKEN}"
    files = [p for p in home.rglob("*") if p.is_file()] if home.exists() else []
    assert not any(TOKEN in p.read_text(errors="replace") for p in files)


def test_a_reference_the_server_pinned_is_read_from_the_cache_without_a_request(cache, monkeypatch):
    """A queued run (or a recheck) reads the pinned reference its check left: the listing
    kept then, the cache's files, no token and no request, online or not."""
    from training.data import hub

    hub._remember(describe("me/chats"))  # what the online check keeps
    with refusing_hub() as (endpoint, seen):
        go_online(monkeypatch, endpoint)
        assert validate_file(PINNED).rows == 250 and seen == []
        with pytest.raises(DataError):  # typed by someone, it is asked of the Hub first
            open_split(as_ref(PINNED), token=False)
    assert len(seen) == 1


def test_cli_reads_a_private_dataset_online_with_hf_token(cache, tmp_path):
    """The CLI's credentials are the process's own (HF_TOKEN): downloaded into the cache
    HF_HUB_CACHE names, the commit pinned in the report's first line."""
    sha, downloads = "7" * 40, tmp_path / "downloads"
    with serving_hub({"me/private": (sha, chats_files())}, TOKEN) as (endpoint, seen, served):
        env = {"HF_ENDPOINT": endpoint, "HF_HUB_OFFLINE": "0", "TRANSFORMERS_OFFLINE": "0"}
        out = validate_cli(
            "hub:me/private:short", HF_TOKEN=TOKEN, HF_HUB_CACHE=str(downloads), **env
        )
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.startswith(f"Checked hub:me/private:short@{sha}#train")
    assert served == ["short/train.csv"] and TOKEN not in out.stdout + out.stderr
    assert (downloads / "datasets--me--private" / "snapshots" / sha / "short/train.csv").is_file()


def test_a_gated_dataset_needs_a_token_given_access_although_its_metadata_is_public(
    cache, monkeypatch
):
    """me/chats is cached here; served as gated, its listing answers anyone, so the files
    are read only after auth_check says this token was given access."""
    repos = {"me/chats": (CHATS_SHA, chats_files())}
    with serving_hub(repos, TOKEN, gated={"me/chats"}) as (endpoint, seen, served):
        go_online(monkeypatch, endpoint)
        for token, code in ((False, "hub_needs_token"), ("hf_notAccepted", "hub_gated")):
            with pytest.raises(DataError) as e:
                open_split(as_ref("hub:me/chats"), token=token)
            assert e.value.code == code
        assert "has not been given access" in str(e.value)
        split = open_split(as_ref("hub:me/chats"), token=TOKEN)  # given access
        assert validate_file(split).rows == 250 and served == []  # the cached files
    assert sum("auth-check" in path for path, _ in seen) == 3
