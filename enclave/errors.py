"""The one shape of every error Enclave shows a person: what is wrong, and what to do about it."""

from __future__ import annotations


class EnclaveError(Exception):
    """``message`` says what is wrong; ``fix`` (may be empty) says what to do about it."""

    def __init__(self, message: str, fix: str = "") -> None:
        super().__init__(f"{message} ({fix})" if fix else message)
        self.message = message
        self.fix = fix


def one_line(value: object, limit: int = 160) -> str:
    """``value`` as one short line for a message: a server's error text may be a whole HTML page."""
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
