"""``trust.allowed_hosts`` (enclave.hosts): a name wildcard matches DNS names only, never an IP
address in any spelling, and an address listed matches however the URL writes it."""

from __future__ import annotations

import pytest

from enclave.hosts import HostNotAllowed, check_host, is_ip_literal


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.2:11434",  # the reported case: "*.2" matched by string suffix
        "http://192.168.1.2",
        "http://10.2:11434",  # short IPv4 forms a resolver reads as 10.0.0.2
        "http://0x0a.0.0.2",
        "http://012.0.0.2",
        "http://167772162.2",
    ],
)
def test_a_name_wildcard_never_matches_an_ip_address(url: str) -> None:
    with pytest.raises(HostNotAllowed):
        check_host(url, ["*.2"])


def test_a_name_wildcard_matches_dns_names_below_it() -> None:
    check_host("http://gpu1.models.corp.example:11434", ["*.corp.example"])
    check_host("http://gpu.corp.example", ["*.corp.example"])
    for url in ("http://corp.example", "http://evilcorp.example", "http://corp.example.evil.io"):
        with pytest.raises(HostNotAllowed):
            check_host(url, ["*.corp.example"])


def test_addresses_are_allowed_by_address_or_network_only() -> None:
    check_host("http://10.0.0.2:11434", ["10.0.0.2"])
    check_host("http://10.0.0.2:11434", ["10.0.0.0/24"])
    check_host("http://[fd00::0:2]:11434", ["fd00::2"])  # the same address written another way
    with pytest.raises(HostNotAllowed):
        check_host("http://10.0.0.3:11434", ["10.0.0.2", "*.0.0.3"])


@pytest.mark.parametrize(
    ("host", "literal"),
    [
        ("10.0.0.2", True),
        ("::1", True),
        ("[fd00::2]", True),
        ("10.2", True),
        ("2130706433", True),
        ("0x7f.1", True),
        ("gpu.corp.example", False),
        ("models-2.corp.example", False),
        ("localhost", False),
    ],
)
def test_what_counts_as_an_ip_literal(host: str, literal: bool) -> None:
    assert is_ip_literal(host) is literal
