"""Hugging Face Hub datasets as training data, read with huggingface_hub and this package's
own file readers (not `datasets.load_dataset`, which cannot read a plain cache offline).

The data reference, one string shared by the CLI, the Data tab and a run's config.yaml:

    hub:OWNER/NAME[:CONFIG][@REVISION][#SPLIT]

    python -m training validate hub:me/chats --split test
    python -m training train --data hub:me/chats:short@v2#validation --max-steps 30
    data: hub:me/chats:default@3f1c…e9#train     # as a run records it: every part pinned

CONFIG defaults to the card's default configuration, REVISION to main, SPLIT to train (to
the only split when there is no train). `validate --split S` sets the split; `#SPLIT` is how
the one `data` string carries it. Once checked (the Data tab, or a worker before it writes
config.yaml) a reference is pinned: configuration and split named, the revision resolved to
the commit's sha, so a run records exactly what it trained on. A bare OWNER/NAME that is no
local file (and has no data-file suffix) reads as hub:OWNER/NAME.

`open_split(ref, token, max_bytes)` looks the dataset up (files with sizes, the card's
`configs:`; hub_files.py turns those into configurations and splits), refuses a split over
max_bytes or in formats this package does not read before downloading anything, and
returns a `HubSplit` whose files are fetched one at a time as they are read (a preview
fetches only the first). `HubSource` chains them into one stream with continuous row numbers.

Who may read what. Online, a reference a person typed is always looked up with the token
given (`dataset_info`, and `auth_check` for a gated dataset) before any cached file is read,
so a private dataset one visitor of a public Space cached is never readable by another.
`token=None` means the process's own credentials (HF_TOKEN, `hf auth login`: the CLI and the
worker); the app passes the visitor's token or False, never the Space's own. The strings
`open_source` reads are the server's own after such a check (a checked DataChoice's path, a
run's config; what a visitor types goes to `open_split`, never there), so a pinned one is
answered from the file listing kept from that check (TUNESMITH_HOME/hub-datasets/: names,
sizes and the card, no token) and read from the cache without a request: a queued run needs
no token (a file no longer cached is fetched with the process's credentials). Offline (HF_HUB_OFFLINE) only the Hugging Face cache is read
(datasets--OWNER--NAME/refs/REVISION, snapshots/SHA/..., in training.paths.hub_caches()):
that is the machine owner's cache, readable by anyone who can use the app, so never serve a
public app offline over a cache holding private data. The token stays in memory: it is
never written, logged or put in a message.

Its length: the reference, the look-up with its access rules and the stream share one trust
model, which reads best in one place; the split and cache conventions are in hub_files.py.
"""

import contextlib
import functools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from training.paths import home, hub_caches, hub_offline

from .codes import DataError
from .hub_files import (
    SHA,
    cached_commit,
    cached_files,
    cached_path,
    cached_revisions,
    readable,
    repo_folder,
    split_files,
    suffix,
)
from .load import HUB_ID, SUFFIXES, open_source
from .streams import mb

REF = re.compile(
    r"hub:(?P<repo>[A-Za-z0-9][\w.-]*/[\w.-]+)(?::(?P<config>[^@#/]+))?"
    r"(?:@(?P<revision>[\w./-]+))?(?:#(?P<split>[\w.-]+))?"
)


@dataclass(frozen=True)
class HubRef:
    repo: str  # OWNER/NAME
    config: str | None = None  # None: the card's default configuration
    revision: str | None = None  # branch, tag or sha; None: main
    split: str | None = None  # None: train

    def __str__(self) -> str:
        config = f":{self.config}" if self.config else ""
        revision = f"@{self.revision}" if self.revision else ""
        return f"hub:{self.repo}{config}{revision}" + (f"#{self.split}" if self.split else "")

    @property
    def pinned(self) -> bool:
        """Every part named, the revision a commit's sha: what a checked choice holds."""
        return bool(self.config and self.split and SHA.fullmatch(self.revision or ""))


def as_ref(data, split: str | None = None) -> "HubRef | None":
    """The Hub reference `data` stands for, None when it is a local file. split: overrides
    the reference's #SPLIT."""
    if isinstance(data, HubSplit):
        return data.ref
    text = str(data).strip()
    if not text.startswith("hub:"):
        if not HUB_ID.fullmatch(text) or suffix(text) in SUFFIXES or Path(text).exists():
            return None
        text = "hub:" + text
    m = REF.fullmatch(text)
    if m is None or ".." in (m["revision"] or "").split("/"):
        raise DataError("hub_bad_reference", path=text)
    return HubRef(m["repo"], m["config"], m["revision"], split or m["split"])


@dataclass(frozen=True)
class HubDataset:
    """A dataset repository at one commit: its files with sizes and its card's metadata."""

    repo: str
    sha: str
    files: dict[str, int | None]
    card: dict

    @functools.cached_property
    def configs(self) -> dict[str, dict[str, list[str]]]:
        return split_files(list(self.files), self.card)


def _listing(repo: str, sha: str) -> Path:
    return home() / "hub-datasets" / repo_folder(repo) / f"{sha}.json"


def _remember(meta: HubDataset) -> None:
    """Keep the commit's listing (names, sizes, card; never a token) for pinned reads."""
    path = _listing(meta.repo, meta.sha)
    with contextlib.suppress(OSError):  # without it a pinned read asks the Hub again
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"files": meta.files, "card": meta.card}, default=str), "utf-8")
        tmp.replace(path)


def _recall(repo: str, sha: str) -> HubDataset | None:
    try:
        kept = json.loads(_listing(repo, sha).read_text("utf-8"))
        return HubDataset(repo, sha, dict(kept["files"]), dict(kept["card"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _from_cache(repo: str, revision: str) -> HubDataset:
    found = cached_commit(repo, revision)
    if found is None:
        at = "" if revision == "main" else f"@{revision}"
        raise DataError("hub_offline", path=f"hub:{repo}{at}")
    folder, sha = found
    if kept := _recall(repo, sha):  # the full listing, so a file never fetched is noticed
        return kept
    files = cached_files(folder, sha)
    card = {}
    if "README.md" in files:
        from huggingface_hub.repocard import metadata_load

        try:
            card = metadata_load(folder / "snapshots" / sha / "README.md") or {}
        except Exception:  # a broken card: the files still infer their splits
            card = {}
    return HubDataset(repo, sha, files, card)


def describe(repo: str, revision: str | None = None, token=None, trusted=False) -> HubDataset:
    """The dataset at a revision (main by default). Online: asked of the Hub with `token`
    (None: this process's credentials; False: none); offline: read from the cache.
    trusted: a pinned reference's sha, answered from the kept listing when there is one."""
    revision = revision or "main"
    if trusted and SHA.fullmatch(revision) and (kept := _recall(repo, revision)):
        return kept
    if hub_offline():
        return _from_cache(repo, revision)
    from huggingface_hub import HfApi

    api = HfApi()
    try:
        info = api.dataset_info(repo, revision=revision, token=token, files_metadata=True)
        if info.gated:  # its metadata is public; its files are not
            api.auth_check(repo, repo_type="dataset", token=token)
    except Exception as e:
        raise hub_error(e, repo, token, revision) from None
    files = {s.rfilename: s.size for s in info.siblings or []}
    meta = HubDataset(repo, info.sha, files, info.card_data.to_dict() if info.card_data else {})
    _remember(meta)
    return meta


def revisions(repo: str, token=None) -> list[str]:
    """Branches and tags to pick from, main first (offline: those the cache knows)."""
    if hub_offline():
        return cached_revisions(repo)
    from huggingface_hub import HfApi

    try:
        refs = HfApi().list_repo_refs(repo, repo_type="dataset", token=token)
    except Exception:  # the lookup before this one said what is wrong, if anything
        return ["main"]
    names = [b.name for b in refs.branches] + [t.name for t in refs.tags]
    return sorted(set(names) | {"main"}, key=lambda n: (n != "main", n))


def hub_error(exc: Exception, repo: str, token=None, revision=None) -> DataError:
    """A huggingface_hub failure as a catalogue code, the token never quoted."""
    from huggingface_hub import get_token
    from huggingface_hub.errors import (
        GatedRepoError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    sent = token if isinstance(token, str) else (get_token() if token is None else None)
    status = getattr(getattr(exc, "response", None), "status_code", None)
    path = f"hub:{repo}"
    if isinstance(exc, RevisionNotFoundError):
        return DataError("hub_revision_missing", path=path, revision=revision)
    if isinstance(exc, GatedRepoError):
        return DataError("hub_gated" if sent else "hub_needs_token", path=path)
    if isinstance(exc, RepositoryNotFoundError) and (sent or status == 404):
        return DataError("hub_not_found", path=path)
    if status in (401, 403) or isinstance(exc, RepositoryNotFoundError):
        code = "hub_token_refused" if sent else "hub_needs_token"
        return DataError(code, path=path, status=status)
    if isinstance(exc, OfflineModeIsEnabled):
        return DataError("hub_offline", path=path)
    detail = (str(exc).splitlines() or [""])[0] or type(exc).__name__
    return DataError("hub_unavailable", path=path, detail=detail.replace(sent or "\0", "***"))


@dataclass(frozen=True)
class HubSplit:
    """One split, resolved: a pinned reference and its files, fetched when read."""

    ref: HubRef  # pinned
    files: list[tuple[str, int | None]]  # (path in the repository, size) in reading order
    token: str | bool | None = field(default=None, repr=False, compare=False)
    max_bytes: int | None = None

    def __str__(self) -> str:
        return str(self.ref)

    @property
    def total(self) -> int:
        return sum(size or 0 for _, size in self.files)

    def local(self, name: str) -> Path:
        """The file on this machine: from a cache, else downloaded (online only)."""
        repo, sha = self.ref.repo, self.ref.revision
        if found := cached_path(repo, sha, name):
            return found
        if hub_offline():
            raise DataError("hub_offline", path=f"{self.ref} (file {name})")
        from huggingface_hub import HfApi

        try:
            return Path(
                HfApi().hf_hub_download(  # HfApi's: the endpoint dataset_info used
                    repo,
                    name,
                    repo_type="dataset",
                    revision=sha,
                    token=self.token,
                    cache_dir=hub_caches()[0],
                )
            )
        except Exception as e:
            raise hub_error(e, repo, self.token, sha) from None


def open_split(ref: HubRef, token=None, max_bytes: int | None = None, checked=False) -> HubSplit:
    """Resolve a reference to one split's files (see the module docstring); DataError with
    a catalogue code when the dataset, configuration or split cannot be used here.
    checked: the reference is one this server pinned after a check (never what someone typed)."""
    meta = describe(ref.repo, ref.revision, token, trusted=checked and ref.pinned)
    path, configs = f"hub:{ref.repo}", meta.configs
    if not any(configs.values()):
        raise DataError("hub_no_data", path=path)
    config = ref.config or next(iter(configs))
    if config not in configs:
        raise DataError("hub_config_missing", path=path, config=config, configs=", ".join(configs))
    splits = configs[config]
    split = ref.split or ("train" if "train" in splits or len(splits) != 1 else next(iter(splits)))
    if split not in splits:
        names = ", ".join(splits) or "none"
        raise DataError("hub_split_missing", path=path, config=config, split=split, splits=names)
    files = [(name, meta.files.get(name)) for name in splits[split]]
    if not files:
        raise DataError("hub_no_data", path=f"{path}:{config}#{split}")
    if others := sorted({suffix(n) or n for n, _ in files if not readable(n)}):
        kinds = ", ".join(others)
        raise DataError("hub_unsupported_files", path=path, split=split, kinds=kinds)
    pinned = HubRef(ref.repo, config, meta.sha, split)
    hub_split = HubSplit(pinned, files, token, max_bytes)
    if max_bytes and hub_split.total > max_bytes:
        size, limit = mb(hub_split.total), mb(max_bytes)
        n = len(files)
        raise DataError(
            "hub_split_too_large", path=path, split=split, size=size, files=n, limit=limit
        )
    return hub_split


def pin(data: str) -> str:
    """A Hub reference pinned (configuration, split and sha named); anything else as is."""
    ref = as_ref(data)
    return data if ref is None else str(ref if ref.pinned else open_split(ref).ref)


class HubSource:
    """A split's files as one stream of records, row numbers continuing from file to file;
    each file is fetched only when the stream reaches it. The Source interface of load.py."""

    kind = "hub"

    def __init__(self, split: HubSplit):
        self.split, self.path = split, str(split.ref)
        self.size = split.total
        self.stop_after: int | None = None  # a preview reads no further than this
        self.columns: list[str] = []
        self.notices: tuple = ()
        self._current = None
        self._done_bytes = self._done_data = 0

    @property
    def consumed(self) -> int:
        return self._done_data + (self._current.consumed if self._current else 0)

    def fraction(self) -> float:
        if not self.size:
            return 0.0
        current = self._current.fraction() * self._current.size if self._current else 0
        return min(1.0, (self._done_bytes + current) / self.size)

    def records(self) -> Iterator[tuple[int, object, tuple]]:
        offset = 0
        for i, (name, size) in enumerate(self.split.files):
            if self.stop_after is not None and self.consumed >= self.stop_after:
                return
            try:
                source = open_source(self.split.local(name), self.split.max_bytes)
            except DataError as e:
                if e.code != "unreadable_file":
                    raise
                detail = f"{e.details.get('detail', '')} (in {name})"
                raise DataError("unreadable_file", detail=detail) from None
            if self.stop_after is not None:
                source.stop_after = max(1, self.stop_after - self.consumed)
            self._current, last = source, 0
            for row, value, issues in source.records():
                if i == 0:
                    self.columns, self.notices = source.columns, source.notices
                last = row
                yield offset + row, value, issues
            offset += last
            self._done_data += source.consumed
            self._done_bytes += size or source.size
            self._current = None
