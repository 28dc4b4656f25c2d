"""A local HTTP stand-in for the Hub routes a run on Hugging Face Jobs uses, recording every
request and replaying a job's lifecycle.

    with jobs_hub(token, Lifecycle(stages, log_lines, results)) as hub:   # hub.endpoint, .seen
        # HF_ENDPOINT=hub.endpoint, HF_HUB_OFFLINE=0 (a subprocess), or go_online(...) here

Routes, as huggingface_hub 2.4 calls them: whoami-v2; repos/create; a dataset's preupload and
commit (files sent inline, "regular" mode), its revision info, file tree and file downloads
(resolve/);
jobs: create, inspect, logs (server-sent events), cancel. Every route but file downloads
needs the token (401 otherwise).

The job: each inspect (GET /api/jobs/NS/ID) moves it one stage along `stages`; cancel moves
it to CANCELED. Its log stream sends `log_lines` and stays open until the job has ended, as
the Hub's does. On reaching a final stage the job "uploads" `results` (path -> bytes) to the
repo under output/, as training/jobs/hf_entry.py does.
"""

import base64
import contextlib
import hashlib
import http.server
import json
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass, field

FINAL = ("COMPLETED", "ERROR", "CANCELED", "DELETED")
USER = "alice"


@dataclass
class Lifecycle:
    stages: list[str]  # e.g. ["SCHEDULING", "RUNNING", "RUNNING", "COMPLETED"]
    log_lines: list[str]
    results: dict[str, bytes] = field(default_factory=dict)  # output/... files on the repo
    at: int = 0  # the stage now
    cancelled: bool = False

    @property
    def stage(self) -> str:
        return "CANCELED" if self.cancelled else self.stages[min(self.at, len(self.stages) - 1)]


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _route(self):
        hub, url = self.server.hub, urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        hub.seen.append((self.command, url.path, body))
        path = url.path
        if m := re.fullmatch(r"/datasets/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path):
            return self._file(m[1], urllib.parse.unquote(m[3]))
        if self.headers.get("Authorization") != f"Bearer {hub.token}":
            return self._json(401, {"error": "Invalid credentials"}, {"X-Error-Code": "Unauth"})
        if path == "/api/whoami-v2":
            return self._json(200, {"name": USER, "type": "user", "orgs": []})
        if path == "/api/repos/create":
            spec = json.loads(body)
            repo = f"{spec.get('organization') or USER}/{spec['name']}"
            hub.repos.setdefault(repo, {})
            hub.created.append({**spec, "repo": repo})
            return self._json(200, {"url": f"{hub.endpoint}/datasets/{repo}", "name": repo})
        if m := re.fullmatch(r"/api/datasets/([^/]+/[^/]+)/preupload/main", path):
            files = json.loads(body)["files"]
            modes = [
                {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files
            ]
            return self._json(200, {"files": modes})
        if m := re.fullmatch(r"/api/datasets/([^/]+/[^/]+)/commit/main", path):
            for line in body.decode().splitlines():
                item = json.loads(line)
                if item["key"] == "file":
                    content = base64.b64decode(item["value"]["content"])
                    hub.repos[m[1]][item["value"]["path"]] = content
            oid = hashlib.sha1(body).hexdigest()
            return self._json(200, {"commitUrl": f"{hub.endpoint}/c/{oid}", "commitOid": oid})
        if m := re.fullmatch(r"/api/datasets/([^/]+/[^/]+)/tree/[^/]+", path):
            files = hub.repos.get(m[1], {})
            tree = [
                {"type": "file", "path": name, "size": len(c), "oid": hashlib.sha1(c).hexdigest()}
                for name, c in files.items()
            ]
            return self._json(200, tree)
        if m := re.fullmatch(r"/api/datasets/([^/]+/[^/]+)(?:/revision/[^/]+)?", path):
            files = hub.repos.get(m[1])
            if files is None:
                return self._json(
                    404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"}
                )
            siblings = [{"rfilename": name, "size": len(c)} for name, c in files.items()]
            info = {"id": m[1], "sha": hub.sha(m[1]), "private": True, "siblings": siblings}
            return self._json(200, info)
        if m := re.fullmatch(rf"/api/jobs/{USER}", path):
            hub.jobs.append(json.loads(body))
            return self._json(200, hub.job_info())
        if m := re.fullmatch(rf"/api/jobs/{USER}/job-1/cancel", path):
            hub.lifecycle.cancelled = True
            hub.finish()
            return self._json(200, {})
        if m := re.fullmatch(rf"/api/jobs/{USER}/job-1/logs", path):
            return self._logs()
        if m := re.fullmatch(rf"/api/jobs/{USER}/job-1", path):
            hub.polls += 1
            if hub.lifecycle.stage not in FINAL:
                hub.lifecycle.at += 1
                if hub.lifecycle.stage in FINAL:
                    hub.finish()
            return self._json(200, hub.job_info())
        return self._json(404, {"error": f"no route {path}"})

    do_GET = do_POST = do_HEAD = _route  # noqa: N815 - http.server's names

    def _file(self, repo: str, name: str):
        hub = self.server.hub
        content = hub.repos.get(repo, {}).get(name)
        if content is None:
            return self._json(404, {"error": "Entry not found"}, {"X-Error-Code": "EntryNotFound"})
        etag = hashlib.sha256(content).hexdigest()
        headers = {"X-Repo-Commit": hub.sha(repo), "ETag": f'"{etag}"'}
        return self._send(200, content, "application/octet-stream", headers)

    def _logs(self):
        hub = self.server.hub
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        for line in hub.lifecycle.log_lines:
            event = {"timestamp": "2026-12-02T10:00:00.000Z", "data": line}
            self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
            self.wfile.flush()
        deadline = time.monotonic() + 60
        while hub.lifecycle.stage not in FINAL and time.monotonic() < deadline:
            time.sleep(0.02)  # open while the job runs, as the Hub's stream is
        self.close_connection = True

    def _json(self, status: int, data, headers: dict | None = None):
        return self._send(status, json.dumps(data).encode(), "application/json", headers)

    def _send(self, status: int, body: bytes, kind: str, headers: dict | None = None):
        self.send_response(status)
        for key, value in {"Content-Type": kind, **(headers or {})}.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, *args):
        pass


class JobsHub:
    def __init__(self, token: str, lifecycle: Lifecycle):
        self.token, self.lifecycle = token, lifecycle
        self.seen: list[tuple[str, str, bytes]] = []  # (method, path, body) of every request
        self.created: list[dict] = []  # repos/create bodies, with the repo's full name
        self.repos: dict[str, dict[str, bytes]] = {}  # repo -> {path: content}
        self.jobs: list[dict] = []  # job specs as run_job sent them
        self.polls = 0
        self.endpoint = ""
        self._lock = threading.Lock()

    def sha(self, repo: str) -> str:
        files = self.repos.get(repo, {})
        return hashlib.sha1(repr(sorted(files.items())).encode()).hexdigest()

    def finish(self) -> None:
        """The job's end: hf_entry uploads the run's results."""
        with self._lock:
            repo = self.jobs[-1]["environment"]["TUNESMITH_REPO"]
            for name, content in self.lifecycle.results.items():
                self.repos[repo].setdefault(f"output/{name}", content)

    def job_info(self) -> dict:
        spec = self.jobs[-1]
        return {
            "id": "job-1",
            "createdAt": "2026-12-02T10:00:00.000Z",
            "dockerImage": spec.get("dockerImage"),
            "command": spec.get("command"),
            "arguments": [],
            "environment": spec.get("environment"),
            "secrets": {name: "***" for name in spec.get("secrets", {})},
            "flavor": spec.get("flavor"),
            "status": {"stage": self.lifecycle.stage, "message": None},
            "owner": {"id": "u-1", "name": USER, "type": "user"},
        }

    def requests(self, method: str, pattern: str) -> list[tuple[str, str, bytes]]:
        return [r for r in self.seen if r[0] == method and re.fullmatch(pattern, r[1])]


@contextlib.contextmanager
def jobs_hub(token: str, lifecycle: Lifecycle):
    hub = JobsHub(token, lifecycle)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.hub = hub
    hub.endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hub
    finally:
        hub.lifecycle.cancelled = hub.lifecycle.cancelled or hub.lifecycle.stage not in FINAL
        server.shutdown()
        server.server_close()
