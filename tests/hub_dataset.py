"""Hub datasets for tests, without the Hub: repositories in the Hugging Face cache's standard
layout (blobs, snapshots linking to them, refs), as snapshot_download leaves them, and a
local HTTP stand-in for the Hub (its API and file downloads) serving private datasets to
one token and refusing everyone else (401).

    cache = build_hub_cache(tmp_path / "hub")   # a subprocess: HF_HUB_CACHE=cache (offline)
    use_hub_cache(tmp_path, monkeypatch)        # this process
    with refusing_hub() as (endpoint, seen):    # HF_ENDPOINT=endpoint, HF_HUB_OFFLINE=0;
        go_online(monkeypatch, endpoint)        # in this process: go_online
    with serving_hub({"me/chats": (CHATS_SHA, chats_files())}, token) as (endpoint, seen, served):

me/chats (main = CHATS_SHA, tag v1 = CHATS_V1_SHA):
    README.md        configs: default (train: data/train-*.jsonl, test: data/test.parquet),
                     short (train: short/train.csv)
    data/train-0.jsonl  210 chat rows;  data/train-1.jsonl  40 rows, its 3rd line broken
    data/test.parquet   20 prompt/completion rows;  short/train.csv  30 rows
    (v1: the same card, data/train-0.jsonl with 60 rows only)
me/plain (no card configs): train.jsonl, valid.jsonl, test.jsonl.gz
me/pictures: data/train.jsonl and data/test.arrow (a split this app does not read)
"""

import contextlib
import gzip
import hashlib
import http.server
import io
import json
import re
import secrets
import threading
import urllib.parse
from pathlib import Path

import yaml

CHATS_SHA = "c0ffee" + "0" * 34
CHATS_V1_SHA = "babe" + "1" * 36
PLAIN_SHA = "a1" * 20
PICTURES_SHA = "b2" * 20

CARD = """---
license: mit
configs:
- config_name: default
  default: true
  data_files:
  - split: train
    path: data/train-*.jsonl
  - split: test
    path: data/test.parquet
- config_name: short
  data_files:
  - split: train
    path: short/train.csv
---
# Chats

A test dataset.
"""


def chat_line(i: int) -> str:
    messages = [
        {"role": "user", "content": f"Hub question {i}?"},
        {"role": "assistant", "content": f"Hub answer {i}."},
    ]
    return json.dumps({"messages": messages}) + "\n"


def _parquet(rows: list[dict]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), out)
    return out.getvalue()


def chats_files(first: int = 210) -> dict[str, bytes]:
    second = [chat_line(i) for i in range(first, first + 40)]
    second[2] = '{"messages": [{"role": "user", "content": "broken"\n'
    pairs = [{"prompt": f"Test prompt {i}", "completion": f"Test reply {i}"} for i in range(20)]
    csv = "prompt,completion\n" + "".join(f"Short {i},Reply {i}\n" for i in range(30))
    return {
        "README.md": CARD.encode(),
        ".gitattributes": b"*.parquet filter=lfs\n",
        "data/train-0.jsonl": "".join(chat_line(i) for i in range(first)).encode(),
        "data/train-1.jsonl": "".join(second).encode(),
        "data/test.parquet": _parquet(pairs),
        "short/train.csv": csv.encode(),
    }


def add_snapshot(cache: Path, repo: str, sha: str, files: dict[str, bytes], *refs: str) -> Path:
    """One commit of a dataset repository in the cache, files stored as blobs and linked."""
    folder = cache / ("datasets--" + repo.replace("/", "--"))
    snapshot = folder / "snapshots" / sha
    for name, content in files.items():
        blob = folder / "blobs" / hashlib.sha256(content).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(content)
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        ups = [".."] * (len(Path(name).parts) + 1)  # to the repository folder
        link.symlink_to(Path(*ups, "blobs", blob.name))
    for ref in refs:
        (folder / "refs" / ref).parent.mkdir(parents=True, exist_ok=True)
        (folder / "refs" / ref).write_text(sha)
    return snapshot


def build_hub_cache(cache: Path) -> Path:
    add_snapshot(cache, "me/chats", CHATS_SHA, chats_files(), "main")
    add_snapshot(cache, "me/chats", CHATS_V1_SHA, chats_files(first=60), "v1")
    plain = {
        "README.md": b"# Plain\n",
        "train.jsonl": "".join(chat_line(i) for i in range(12)).encode(),
        "valid.jsonl": "".join(chat_line(i) for i in range(100, 104)).encode(),
        "test.jsonl.gz": gzip.compress("".join(chat_line(i) for i in range(200, 205)).encode()),
        "scripts/prepare.py": b"print('not data')\n",
    }
    add_snapshot(cache, "me/plain", PLAIN_SHA, plain, "main")
    pictures = {"data/train.jsonl": chat_line(1).encode(), "data/test.arrow": b"ARROW1"}
    add_snapshot(cache, "me/pictures", PICTURES_SHA, pictures, "main")
    return cache


class _Hub(http.server.BaseHTTPRequestHandler):
    """The few Hub routes huggingface_hub uses here: dataset_info, refs, auth-check and file
    downloads (resolve/). Without the dataset's token: 401 RepoNotFound, or 401 "Invalid
    credentials" for a wrong one, as huggingface.co answers a private dataset. A gated one
    shows its metadata to anyone, its files only to the token (GatedRepo: 401 without a
    token, 403 with one that has not been given access)."""

    def do_GET(self):  # noqa: N802 - http.server's name
        server, path = self.server, urllib.parse.urlsplit(self.path).path
        server.seen.append((self.path, dict(self.headers)))
        m = re.fullmatch(r"/(?:api/)?datasets/([^/]+/[^/]+)/(.*)", path)
        repo = server.repos.get(m[1]) if m else None
        route = urllib.parse.unquote(m[2]) if m else ""
        gated = m is not None and m[1] in server.gated
        sent = self.headers.get("Authorization")
        public = gated and (route.startswith("revision/") or route == "refs")
        if repo is None or not (public or sent == f"Bearer {server.token}"):
            if gated:
                return self._answer(403 if sent else 401, b"{}", {"X-Error-Code": "GatedRepo"})
            invalid = {"X-Error-Message": "Invalid credentials in Authorization header"}
            return self._answer(401, b"{}", invalid if sent else {"X-Error-Code": "RepoNotFound"})
        sha, files = repo
        if route == "auth-check":
            return self._answer(200, b"{}")
        if route.startswith("revision/"):
            siblings = [{"rfilename": n, "size": len(c)} for n, c in files.items()]
            card = yaml.safe_load(files.get("README.md", b"---\n---").split(b"---")[1]) or {}
            info = {"id": m[1], "sha": sha, "private": not gated, "gated": gated and "manual"}
            body = {**info, "siblings": siblings, "cardData": card}
            return self._answer(200, json.dumps(body).encode())
        if route == "refs":
            main = {"name": "main", "ref": "refs/heads/main", "targetCommit": sha}
            body = {"branches": [main], "tags": [], "converts": []}
            return self._answer(200, json.dumps(body).encode())
        name = route.removeprefix(f"resolve/{sha}/").removeprefix("resolve/main/")
        if name not in files:
            return self._answer(404, b"{}", {"X-Error-Code": "EntryNotFound"})
        content = files[name]
        etag = hashlib.sha256(content).hexdigest()
        head = {"X-Repo-Commit": sha, "ETag": f'"{etag}"'}
        if self.command == "GET":
            server.served.append(name)
        return self._answer(200, content, head)

    do_HEAD = do_GET  # noqa: N815

    def _answer(self, status: int, body: bytes, headers: dict | None = None):
        self.send_response(status)
        for key, value in {"Content-Type": "application/json", **(headers or {})}.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command == "GET":
            self.wfile.write(body)

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serving_hub(repos: dict[str, tuple[str, dict[str, bytes]]], token: str, gated=()):
    """A Hub stand-in serving private datasets, {repo: (sha, {path: content})}, to `token`
    only (gated: these repositories are gated instead, `token` the one given access):
    (endpoint URL, requests seen as (path, headers), files downloaded in order)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hub)
    server.repos, server.token, server.seen, server.served = repos, token, [], []
    server.gated = set(gated)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server.seen, server.served
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def refusing_hub():
    """(endpoint URL, requests seen as (path, headers)) of a Hub that refuses everything."""
    with serving_hub({}, secrets.token_hex(16)) as (endpoint, seen, _):
        yield endpoint, seen


def use_hub_cache(tmp_path: Path, monkeypatch) -> Path:
    """The test datasets as this process's only Hugging Face cache (huggingface_hub read
    HF_HUB_CACHE at import: its constant is set too), offline."""
    from huggingface_hub import constants

    cache = build_hub_cache(tmp_path / "hf-cache")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HOME", str(tmp_path))  # ~/.cache/huggingface/hub is searched too
    monkeypatch.delenv("HF_TOKEN", raising=False)
    return cache


def go_online(monkeypatch, endpoint: str) -> None:
    """This process talks to `endpoint` as the Hub (this test only)."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    template = endpoint + "/{repo_id}/resolve/{revision}/{filename}"  # what HF_ENDPOINT sets
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", template)
