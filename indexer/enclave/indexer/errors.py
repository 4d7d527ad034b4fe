"""The indexer's errors: one a user can act on, and the failures that mean the storage is at fault.

Only storage failures (I/O, LanceDB/Lance, Arrow) are turned into "the index is damaged or
unreadable"; anything else (a ``TypeError``, an ``AttributeError``) is a bug and propagates as one.
A full disk and read-only storage are told apart from damage (:func:`write_problem`): rebuilding
would not help there, freeing space or pointing ``--db`` elsewhere does.
"""

from __future__ import annotations

import errno
import os
import re

import pyarrow as pa

from enclave.errors import EnclaveError, one_line


class IndexProblem(EnclaveError):
    """An index problem a user can act on: ``message`` says what is wrong, ``fix`` what to do."""


# What LanceDB and Arrow raise when the files under an index are missing, truncated or
# unreadable: the Rust core surfaces I/O and format errors as OSError or RuntimeError, Arrow as
# ArrowException (its ArrowInvalid is also a ValueError, which is why ValueError is not listed:
# our own code raises it for bad arguments; see is_storage_error for LanceDB's own ValueErrors).
STORAGE_ERRORS: tuple[type[BaseException], ...] = (OSError, RuntimeError, pa.ArrowException)

# LanceDB raises ValueError from its own code for a table it cannot open (its manifests are gone).
_STORAGE_PACKAGES = ("lancedb", "lance")
# Lance reports I/O errors as text: "... No space left on device (os error 28), ...".
_OS_ERROR = re.compile(r"\(os error (\d+)\)")
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})
READ_ONLY = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})


def is_storage_error(exc: BaseException) -> bool:
    """``exc`` comes from the storage: one of STORAGE_ERRORS, or a ValueError raised inside
    LanceDB itself. A ValueError raised by our code (a bad argument) is not."""
    if isinstance(exc, IndexProblem):
        return False
    if isinstance(exc, STORAGE_ERRORS):
        return True
    if isinstance(exc, ValueError):
        tb = exc.__traceback__
        if tb is None:
            return False
        while tb.tb_next is not None:
            tb = tb.tb_next
        module = str(tb.tb_frame.f_globals.get("__name__", ""))
        return module.split(".", 1)[0] in _STORAGE_PACKAGES
    return False


def brief(exc: BaseException) -> str:
    """An exception as a short line: Lance's messages carry Rust source locations."""
    lines = str(exc).strip().splitlines()
    text = re.sub(r",\s*/\S+\.rs:\d+:\d+", "", lines[0] if lines else "")
    return one_line(f"{type(exc).__name__}: {text}" if text else type(exc).__name__, 240)


def os_errno(exc: BaseException) -> int | None:
    """The operating-system error behind ``exc`` (or its causes), from OSError.errno or from the
    "(os error N)" Lance puts in its messages; None if there is none."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno:
            return current.errno
        found = _OS_ERROR.search(str(current))
        if found:
            return int(found.group(1))
        current = current.__cause__ or current.__context__
    return None


def write_problem(exc: BaseException, db: str) -> IndexProblem | None:
    """One line for a write that failed because the storage is full or read-only; None when
    ``exc`` is neither (damage, a bug, ...)."""
    code = os_errno(exc)
    if code in NO_SPACE:
        return IndexProblem(
            f"no space left on the device holding the index at {db}",
            "free some space there or point --db at a place with room, then run"
            " `enclave index` again",
        )
    if code in READ_ONLY:
        assert code is not None
        return IndexProblem(
            f"the index at {db} cannot be written ({os.strerror(code)})",
            f"point --db at a writable place or make {db} writable",
        )
    return None


# What an S3-compatible store answers (its XML <Code>, or boto's error code) when the bucket, the
# credentials or the region are wrong.
_NO_BUCKET = frozenset({"NoSuchBucket"})
_CREDENTIALS = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "AccessDenied",
        "InvalidToken",
        "ExpiredToken",
        "InvalidClientTokenId",
        "AllAccessDisabled",
    }
)
_REGION = frozenset(
    {"PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException"}
)
_XML_CODE = re.compile(r"<Code>([A-Za-z]+)</Code>")
_STATUS = re.compile(r"status: (\d{3})\b")
_UNREACHABLE = (
    "connection refused",
    "tcp connect error",
    "dns error",
    "failed to lookup address",
    "timed out",
    "timeout",
    "connecterror",
    "could not connect",
    "name or service not known",
)


def object_store_problem(
    exc: BaseException, uri: str, options: dict[str, str] | None
) -> IndexProblem | None:
    """One line for an object store (s3://) that cannot be used: the bucket does not exist,
    the credentials or the region are wrong, or the endpoint does not answer. Read from the
    store's answer as LanceDB (its Rust debug text) or boto3 report it; None when it is none
    of these."""
    if "://" not in uri:
        return None
    options = options or {}
    bucket = uri.split("://", 1)[1].split("/", 1)[0]
    region = options.get("region") or os.environ.get("AWS_REGION") or "us-east-1"
    endpoint = options.get("endpoint") or f"AWS S3 (region {region})"
    response = getattr(exc, "response", None)
    codes: set[str] = set()
    statuses: set[int] = set()
    if isinstance(response, dict):  # botocore's ClientError
        codes.add(str(response.get("Error", {}).get("Code", "")))
        statuses.add(int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0))
    text = str(exc)
    codes.update(_XML_CODE.findall(text))
    statuses.update(int(found) for found in _STATUS.findall(text))
    if codes & _NO_BUCKET:
        return IndexProblem(
            f"bucket {bucket} does not exist at {endpoint}",
            "create it, or check the bucket named in --db or index.shared, and the endpoint:"
            " AWS_ENDPOINT_URL or index.s3Endpoint",
        )
    if codes & _REGION or 301 in statuses:
        return IndexProblem(
            f"bucket {bucket} is not in region {region} at {endpoint}",
            "set AWS_REGION (or index.s3Region) to the bucket's region",
        )
    if codes & _CREDENTIALS or 403 in statuses or 401 in statuses:
        code = next(iter(sorted(codes & _CREDENTIALS)), "") or "HTTP 403"
        return IndexProblem(
            f"{endpoint} refused the credentials for bucket {bucket} ({code})",
            "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), and that"
            " they may read and write the bucket",
        )
    lowered = text.lower()
    if type(exc).__name__ in ("EndpointConnectionError", "ConnectTimeoutError") or any(
        word in lowered for word in _UNREACHABLE
    ):
        return IndexProblem(
            f"the object store at {endpoint} does not answer (bucket {bucket})",
            "check the endpoint, AWS_ENDPOINT_URL or index.s3Endpoint, and the network",
        )
    return None
