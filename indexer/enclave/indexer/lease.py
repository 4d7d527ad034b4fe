"""A write lease for an index in an S3-compatible object store: one writer at a time.

A file lock cannot work across machines, so a writer of ``s3://bucket/prefix`` holds a small
object, ``prefix/_enclave_write.lease`` (JSON: owner, expiry), created with a conditional write
(``If-None-Match: *``: only if absent). While it writes, a heartbeat renews the lease with
``If-Match: <etag>`` every third of its lifetime; a lease whose expiry has passed (its writer
died) is taken over the same way, so two writers racing for it cannot both win. A writer that
loses its lease (a renewal refused) stops before its next batch with an error: nothing it wrote
is silently mixed with another writer's work, and the next run converges.

Stores that ignore conditional writes are detected when the lease is taken (a second
``If-None-Match`` write must be refused) and refused loudly; ``index.lease = false`` turns the
lease off for a store where one writer at a time is guaranteed another way.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from types import TracebackType
from typing import Any
from urllib.parse import urlparse

from enclave.indexer.errors import IndexProblem

log = logging.getLogger(__name__)

LEASE_NAME = "_enclave_write.lease"
LEASE_SECONDS = 60.0


def lease_location(uri: str) -> tuple[str, str]:
    """(bucket, key) of the lease object of the index at ``uri`` (s3://bucket/prefix)."""
    parsed = urlparse(uri)
    prefix = parsed.path.strip("/")
    return parsed.netloc, f"{prefix}/{LEASE_NAME}" if prefix else LEASE_NAME


def s3_client(options: Mapping[str, str] | None) -> Any:
    """A boto3 client for the store described by LanceDB's ``storage_options`` (env otherwise)."""
    try:
        import boto3
        from botocore.config import Config as BotoConfig
    except ImportError as exc:
        raise IndexProblem(
            "writing an index in S3 needs boto3 (for the write lease)",
            "pip install 'enclave-lsp[s3]' (or pip install boto3)",
        ) from exc
    options = dict(options or {})
    return boto3.client(
        "s3",
        endpoint_url=options.get("endpoint") or None,
        region_name=options.get("region") or os.environ.get("AWS_REGION") or "us-east-1",
        aws_access_key_id=options.get("aws_access_key_id"),
        aws_secret_access_key=options.get("aws_secret_access_key"),
        config=BotoConfig(retries={"max_attempts": 3}, connect_timeout=5, read_timeout=15),
    )


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _status(exc: Exception) -> int:
    response = getattr(exc, "response", None) or {}
    return int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def _refused(exc: Exception) -> bool:
    """A conditional write lost the race (412) or met a concurrent one (409)."""
    return _status(exc) in (409, 412) or _code(exc) in (
        "PreconditionFailed",
        "ConditionalRequestConflict",
    )


def _unsupported(exc: Exception) -> bool:
    return _status(exc) == 501 or _code(exc) in ("NotImplemented", "InvalidArgument")


def lease_holder(uri: str, options: Mapping[str, str] | None) -> dict[str, Any] | None:
    """The lease of the index at ``uri`` if a writer holds an unexpired one (None otherwise)."""
    bucket, key = lease_location(uri)
    try:
        body = s3_client(options).get_object(Bucket=bucket, Key=key)["Body"].read()
        holder = json.loads(body)
    except IndexProblem:
        return None
    except Exception:  # absent, unreadable or not ours: nobody is writing as far as we can tell
        return None
    if not isinstance(holder, dict) or float(holder.get("expires", 0)) < time.time():
        return None
    return holder


class S3Lease:
    """``with S3Lease(uri, options):`` waits until this process is the index's only writer."""

    def __init__(
        self,
        uri: str,
        options: Mapping[str, str] | None,
        *,
        seconds: float = LEASE_SECONDS,
        wait: float = 600.0,
        poll: float = 0.5,
    ) -> None:
        self.uri = uri
        self.bucket, self.key = lease_location(uri)
        self.seconds = seconds
        self.wait = wait
        self.poll = poll
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._client = s3_client(options)
        self._etag: str | None = None
        self._lost: str = ""
        self._stop = threading.Event()
        self._heart: threading.Thread | None = None

    # ---- the lease object ---------------------------------------------------------------
    def _body(self) -> bytes:
        return json.dumps(
            {"owner": self.owner, "expires": time.time() + self.seconds, "uri": self.uri}
        ).encode()

    def _put(self, **condition: str) -> str:
        response = self._client.put_object(
            Bucket=self.bucket,
            Key=self.key,
            Body=self._body(),
            ContentType="application/json",
            **condition,
        )
        return str(response["ETag"])

    def _try_take(self) -> bool:
        """One attempt: create the lease, or take over an expired one. True when ours."""
        try:
            self._etag = self._put(IfNoneMatch="*")
            return True
        except Exception as exc:
            if _unsupported(exc):
                raise self._no_conditional_writes(exc) from exc
            if not _refused(exc):
                raise
        try:  # someone holds it: is it expired?
            current = self._client.get_object(Bucket=self.bucket, Key=self.key)
            etag = str(current["ETag"])
            holder = json.loads(current["Body"].read() or b"{}")
        except Exception as exc:
            if _code(exc) in ("NoSuchKey", "404"):
                return False  # released meanwhile: try again at once
            raise
        if float(holder.get("expires", 0)) >= time.time():
            return False
        log.warning(
            "taking over the expired write lease of %s (held by %s)", self.uri, holder.get("owner")
        )
        try:
            self._etag = self._put(IfMatch=etag)
            return True
        except Exception as exc:
            if _refused(exc) or _code(exc) in ("NoSuchKey", "404"):
                return False  # another writer took it first
            raise

    def _no_conditional_writes(self, cause: Exception | None) -> IndexProblem:
        detail = f" ({_code(cause) or cause})" if cause is not None else ""
        return IndexProblem(
            f"the object store of {self.uri} does not honour conditional writes{detail}, so"
            " Enclave cannot make sure only one job writes the index at a time",
            "use a store with conditional writes (AWS S3, MinIO, Cloudflare R2), or run index"
            " jobs one at a time (e.g. a CI concurrency group) and set index.lease = false",
        )

    def _check_honoured(self) -> None:
        """A store that ignores If-None-Match would let a second writer in: find out now."""
        try:
            self._client.put_object(
                Bucket=self.bucket, Key=self.key, Body=self._body(), IfNoneMatch="*"
            )
        except Exception as exc:
            if _refused(exc):
                return
            raise
        self._release()
        raise self._no_conditional_writes(None)

    # ---- acquire, renew, release --------------------------------------------------------
    def __enter__(self) -> S3Lease:
        deadline = time.monotonic() + self.wait
        told = False
        while not self._try_take():
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"another job has held the write lease of {self.uri} for over"
                    f" {self.wait:.0f} s (s3://{self.bucket}/{self.key})"
                )
            if not told:
                log.warning("waiting for another job to finish writing %s", self.uri)
                told = True
            time.sleep(self.poll)
        self._check_honoured()
        self._heart = threading.Thread(target=self._heartbeat, name="enclave-lease", daemon=True)
        self._heart.start()
        return self

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            try:
                self._etag = self._put(IfMatch=self._etag or "")
            except Exception as exc:
                if _refused(exc) or _code(exc) in ("NoSuchKey", "404"):
                    self._lost = "another writer took the write lease over"
                    return
                log.warning("renewing the write lease of %s failed: %s", self.uri, exc)

    def check(self) -> None:
        """Raise IndexProblem if the lease was lost: the writer must stop writing now."""
        if self._lost:
            raise IndexProblem(
                f"this update of {self.uri} stopped: {self._lost} (this job paused for longer"
                f" than the lease's {self.seconds:.0f} s)",
                "run `enclave index` again: it completes the index from where it is",
            )

    def _release(self) -> None:
        try:
            self._client.delete_object(Bucket=self.bucket, Key=self.key, IfMatch=self._etag or "")
        except Exception as exc:  # taken over, or gone: not ours to delete any more
            log.debug("releasing the write lease of %s: %s", self.uri, exc)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._heart is not None:
            self._heart.join(timeout=5)
        if not self._lost:
            self._release()
