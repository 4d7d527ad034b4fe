"""A local copy of a team's shared index in an object store, so that queries read local files.

A Lance table version never changes once written: its data files, deletion files, index files and
manifest are immutable, and every name is unique. So a laptop can copy the files of the version
it reads into a folder of its user cache (``$XDG_CACHE_HOME/enclave/shared/<hash of the URI>``),
only those it does not have yet, and then read that folder as it reads a local index. The copy:

1. lists each table's files in the store (``_transactions/`` and other versions' manifests are
   left out: reading never needs them) and downloads the missing ones, each to a temporary name
   renamed into place when complete, at most a few in flight and 1 MB of each in memory;
2. puts the manifests of the wanted versions in last (the meta table's last of all), so that a
   reader of the folder never sees a version whose files are not all there;
3. verifies the copy as ``enclave status`` verifies an index (every table at the wanted version,
   every data file read, the full-text index answers) and deletes it when it does not;
4. removes the files the store no longer has, and older manifests.

The store is only listed and read. Several processes share one folder: a lock file lets one copy
at a time (the others skip that round), and readers of the folder retry on a reload if a copy
removed the files of the version they had open, as readers of the store do.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pyarrow import fs as pafs  # (before the exit hook below: pyarrow's own runs after it)

from enclave.indexer.errors import IndexProblem, brief, is_storage_error
from enclave.indexer.lock import WriteLock
from enclave.indexer.store import Store
from enclave.indexer.tables import UPDATE_STARTED

log = logging.getLogger(__name__)

MIRROR_TABLES = ("chunks", "symbols", "files", "embeddings", "meta")  # meta's manifest goes last
DOWNLOADS = 4  # files in flight
PIECE = 1024 * 1024  # bytes of one file in memory at a time
U64_MAX = 2**64 - 1  # Lance's second manifest naming scheme: _versions/{U64_MAX - version}.manifest
INCOMING = ".incoming"
LOCK = ".copy.lock"

_stopping = threading.Event()  # set at interpreter exit: downloads stop between two pieces
_active = [0]  # downloads under way
_active_lock = threading.Lock()


@atexit.register
def _stop_downloads() -> None:
    """At exit, stop the downloads of a copy and wait (briefly) for them to end: pyarrow's own
    exit hook, registered before this one and so run after it, shuts its S3 client down."""
    _stopping.set()
    deadline = time.monotonic() + 5
    while _active[0] and time.monotonic() < deadline:
        time.sleep(0.02)


class MirrorError(Exception):
    """The copy could not be made now (the store changed under it, a file vanished, a read
    failed); the store is read meanwhile and a later round tries again."""


class CopyStopped(MirrorError):
    """The process is exiting: the copy stops, the files already complete are kept."""


def mirror_folder(uri: str) -> Path:
    """Where the copy of ``uri`` lives: one folder per shared index, in the user cache."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "enclave" / "shared" / hashlib.sha256(uri.encode()).hexdigest()[:20]


def versions_at_rest(store: Store) -> dict[str, int] | None:
    """Every table's version of the shared index, or None while a writer is between the start
    and the end of an update (its meta says so, or moved while the versions were read)."""
    existing = store.existing()
    meta = store.table("meta")
    before = meta.version
    if store.meta().get(UPDATE_STARTED):
        return None
    versions = {name: store.table(name).version for name in MIRROR_TABLES if name in existing}
    if store.table("meta").version != before:
        return None
    return versions


@dataclass(frozen=True, slots=True)
class _File:
    table: str
    relative: str  # inside <table>.lance/
    size: int
    source: str  # bucket/key


class Mirror:
    """The local copy of one shared index (an ``s3://`` URI)."""

    def __init__(self, uri: str, storage_options: Mapping[str, str] | None, folder: Path) -> None:
        self.uri = uri
        self.options = dict(storage_options or {})
        self.folder = folder
        parsed = urlparse(uri)
        self.root = f"{parsed.netloc}/{parsed.path.strip('/')}".rstrip("/")

    # ---- reading the copy -----------------------------------------------------------------
    def versions(self) -> dict[str, int] | None:
        """The versions the copy holds (None: no complete copy here)."""
        if not (self.folder / "meta.lance").is_dir():
            return None
        try:
            store = Store(str(self.folder))
            existing = store.existing()
            return {name: store.table(name).version for name in MIRROR_TABLES if name in existing}
        except Exception as exc:
            if not (is_storage_error(exc) or isinstance(exc, IndexProblem)):
                raise
            return None

    # ---- copying --------------------------------------------------------------------------
    def copy(self, wanted: Mapping[str, int]) -> bool:
        """Make the folder a verified copy of the tables at ``wanted`` versions. False when
        another process is copying now; MirrorError when the copy cannot be made now."""
        # the team's code: readable by this user only, whatever the cache directory's mode
        self.folder.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.folder.mkdir(exist_ok=True, mode=0o700)
        try:
            lock = WriteLock(self.folder / LOCK, wait=0).__enter__()
        except TimeoutError:
            return False
        try:
            if self.versions() == dict(wanted):
                return True
            self._copy(wanted)
            return True
        except Exception as exc:
            if _stopping.is_set() and not isinstance(exc, CopyStopped):
                raise CopyStopped("the process is exiting") from exc  # whatever broke then
            raise
        finally:
            lock.__exit__(None, None, None)

    def _copy(self, wanted: Mapping[str, int]) -> None:
        fs = self._filesystem()
        listed = {name: self._list(fs, name) for name in wanted}
        manifests: list[_File] = []
        files: list[_File] = []
        for name, version in wanted.items():
            manifest = self._manifest(listed[name], version)
            if manifest is None:
                raise MirrorError(f"version {version} of table {name} is gone from the store")
            manifests.append(manifest)
            files += [
                f
                for f in listed[name]
                if not f.relative.startswith(("_versions/", "_transactions/")) and not self._have(f)
            ]
        incoming = self.folder / INCOMING
        shutil.rmtree(incoming, ignore_errors=True)  # pieces of a copy that was stopped
        incoming.mkdir()
        with ThreadPoolExecutor(DOWNLOADS, thread_name_prefix="enclave-mirror") as pool:
            for done in pool.map(lambda f: self._download(fs, f), files):
                del done
        for manifest in manifests:  # each table's version appears whole; meta's last
            if not self._have(manifest):
                self._download(fs, manifest)
        self._verify(wanted)
        self._prune(wanted, listed, manifests)
        shutil.rmtree(incoming, ignore_errors=True)

    def _filesystem(self) -> Any:
        """The store as a pyarrow file system, with the options LanceDB is given."""
        fs = pafs
        options = self.options
        endpoint = options.get("endpoint", "")
        kwargs: dict[str, Any] = {
            "connect_timeout": 5,
            "request_timeout": 30,
            "retry_strategy": fs.AwsStandardS3RetryStrategy(max_attempts=3),
        }
        if options.get("aws_access_key_id") and options.get("aws_secret_access_key"):
            kwargs["access_key"] = options["aws_access_key_id"]
            kwargs["secret_key"] = options["aws_secret_access_key"]
            token = options.get("aws_session_token") or os.environ.get("AWS_SESSION_TOKEN")
            if token:
                kwargs["session_token"] = token
        if options.get("region"):
            kwargs["region"] = options["region"]
        if endpoint:
            parsed = urlparse(endpoint if "://" in endpoint else f"https://{endpoint}")
            kwargs["endpoint_override"] = parsed.netloc + parsed.path.rstrip("/")
            kwargs["scheme"] = parsed.scheme
        return fs.S3FileSystem(**kwargs)

    def _list(self, fs: Any, name: str) -> list[_File]:
        base = f"{self.root}/{name}.lance"
        selector = pafs.FileSelector(base, recursive=True, allow_not_found=True)
        return [
            _File(name, info.path[len(base) + 1 :], int(info.size or 0), info.path)
            for info in fs.get_file_info(selector)
            if info.type == pafs.FileType.File
        ]

    @staticmethod
    def _manifest(files: list[_File], version: int) -> _File | None:
        names = {f"_versions/{U64_MAX - version}.manifest", f"_versions/{version}.manifest"}
        return next((f for f in files if f.relative in names), None)

    def _local(self, item: _File) -> Path:
        return self.folder / f"{item.table}.lance" / item.relative

    def _have(self, item: _File) -> bool:
        try:
            return self._local(item).stat().st_size == item.size
        except OSError:
            return False

    def _download(self, fs: Any, item: _File) -> None:
        """One object to its place in the copy, through a temporary name."""
        partial = self.folder / INCOMING / uuid.uuid4().hex
        with _active_lock:
            if _stopping.is_set():
                raise CopyStopped("the process is exiting")
            _active[0] += 1
        try:
            with fs.open_input_stream(item.source) as source, partial.open("wb") as out:
                while piece := source.read(PIECE):
                    if _stopping.is_set():
                        raise CopyStopped("the process is exiting")
                    out.write(piece)
        except FileNotFoundError as exc:
            raise MirrorError(f"{item.source} vanished from the store while copying") from exc
        except OSError as exc:
            raise MirrorError(f"copying {item.source} failed ({brief(exc)})") from exc
        finally:
            with _active_lock:
                _active[0] -= 1
        if partial.stat().st_size != item.size:
            raise MirrorError(f"{item.source} changed size while copying")
        target = self._local(item)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(partial, target)

    def _verify(self, wanted: Mapping[str, int]) -> None:
        """The copy reads back whole at the wanted versions, or it is deleted."""
        problem = ""
        try:
            found = self.versions()
            if found != dict(wanted):
                problem = f"it holds versions {found}, not {dict(wanted)}"
            else:
                checked = Store(str(self.folder)).verify()
                problem = checked.problem or (
                    "an update is unfinished" if checked.interrupted else ""
                )
        except Exception as exc:
            if not (is_storage_error(exc) or isinstance(exc, IndexProblem)):
                raise
            problem = brief(exc)
        if problem:
            self.remove()
            raise MirrorError(f"the copy does not read back ({problem}): removed")

    def _prune(
        self, wanted: Mapping[str, int], listed: Mapping[str, list[_File]], keep: list[_File]
    ) -> None:
        """Remove what the store no longer has, other versions' manifests, dropped tables."""
        manifests = {(m.table, m.relative) for m in keep}
        for folder in self.folder.glob("*.lance"):
            name = folder.name.removesuffix(".lance")
            if name not in wanted:
                shutil.rmtree(folder, ignore_errors=True)
                continue
            there = {f.relative for f in listed[name]}
            for path in folder.rglob("*"):
                if not path.is_file():
                    continue
                relative = path.relative_to(folder).as_posix()
                stale = (
                    (name, relative) not in manifests
                    if relative.startswith("_versions/")
                    else relative not in there
                )
                if stale:
                    path.unlink(missing_ok=True)

    def remove(self) -> None:
        for path in self.folder.glob("*.lance"):
            shutil.rmtree(path, ignore_errors=True)
