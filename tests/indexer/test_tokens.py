"""Identifier sub-tokens used by the full-text index."""

from __future__ import annotations

from enclave.indexer.tokens import query_text, search_text, split_identifier, subtokens


def test_split_identifier_shapes() -> None:
    assert split_identifier("getUserById") == ["get", "user", "by", "id"]
    assert split_identifier("max_retries") == ["max", "retries"]
    assert split_identifier("HTTPResponseError") == ["http", "response", "error"]
    assert split_identifier("parse_v2Header") == ["parse", "v", "2", "header"]


def test_subtokens_only_for_compound_identifiers() -> None:
    words = subtokens("def handleRetry(max_retries): return plain").split()
    assert set(words) == {"handle", "retry", "max", "retries"}


def test_search_text_keeps_text_and_adds_path_words() -> None:
    text = search_text("class RetryPolicy: pass", "net/retry_policy.py", "RetryPolicy")
    assert text.startswith("class RetryPolicy: pass")
    assert "policy" in text.split() and "net/retry_policy.py" in text


def test_query_text_expands_identifiers() -> None:
    assert query_text("where is getUserById") == "where is getUserById get user by id"
    assert query_text("plain words") == "plain words"
