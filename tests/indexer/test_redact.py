"""Secret redaction (indexer/redact.py): planted secrets go, ordinary code stays byte for byte."""

from __future__ import annotations

import ast
import inspect
import time
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from enclave.indexer.redact import PREFILTER, Finding, redact

AWS_ID = "AKIAZ3MK7QW2PLX4RTYB"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzq8Jd3Hs2T"
GITHUB = "ghp_R8x2Lq9ZkT4mW7vY1bN3cD6fH0jP5sA8uE2g"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
KEY_BODY = "MIIEowIBAAKCAQEA7bq9Z3k1wJalrXUtnFEMIK7MDENGbPxRfiCY\nQ2xhc3NpYyBrZXkgYm9keQ=="

PLANTED = f'''"""Deployment settings."""
import boto3

AWS_ACCESS_KEY_ID = "{AWS_ID}"
aws_secret_access_key = "{AWS_SECRET}"
GITHUB = "{GITHUB}"  # CI token
db_password = "hunter2-Correct"
SESSION = "{JWT}"

PRIVATE_KEY = """-----BEGIN RSA PRIVATE KEY-----
{KEY_BODY}
-----END RSA PRIVATE KEY-----"""


def connect(region: str = "eu-west-1"):
    return boto3.client("s3", region_name=region)
'''


def test_planted_secrets_are_replaced_and_lines_kept() -> None:
    result = redact(PLANTED, "settings.py")
    lines = result.text.split("\n")
    assert len(lines) == len(PLANTED.split("\n"))
    assert lines[3] == 'AWS_ACCESS_KEY_ID = "<redacted:aws-access-key>"'
    assert lines[4] == 'aws_secret_access_key = "<redacted:aws-secret-key>"'
    assert lines[5] == 'GITHUB = "<redacted:github-token>"  # CI token'
    assert lines[6] == 'db_password = "<redacted:secret-keyword>"'
    assert lines[7] == 'SESSION = "<redacted:jwt>"'
    assert lines[9:13] == ['PRIVATE_KEY = """<redacted:private-key>', "", "", '"""']
    assert result.findings == [
        Finding(4, "aws-access-key"),
        Finding(5, "aws-secret-key"),
        Finding(6, "github-token"),
        Finding(7, "secret-keyword"),
        Finding(8, "jwt"),
        Finding(10, "private-key"),
    ]
    for secret in (AWS_ID, AWS_SECRET, GITHUB, "hunter2-Correct", JWT, "MIIEow", "Q2xhc3"):
        assert secret not in result.text
    # the code around the secrets is intact and still parses
    assert lines[:3] == PLANTED.split("\n")[:3]
    assert lines[13:] == PLANTED.split("\n")[13:]
    ast.parse(result.text)


@pytest.mark.parametrize(
    ("line", "expected", "kind"),
    [
        (
            'SLACK = "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"',
            'SLACK = "<redacted:slack-token>"',
            "slack-token",
        ),
        (
            'stripe.api_key = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"',
            'stripe.api_key = "<redacted:stripe-key>"',
            "stripe-key",
        ),
        (
            'DB_URL = "postgres://admin:s3cr3tP4ss@db.internal:5432/app"',
            'DB_URL = "postgres://admin:<redacted:basic-auth>@db.internal:5432/app"',
            "basic-auth",
        ),
        (
            'token = "glpat-Ab3dEf6hIj9kLm2nOp5q"',
            'token = "<redacted:gitlab-token>"',
            "gitlab-token",
        ),
        (
            "//registry.npmjs.org/:_authToken=npm_Xy7Kq2Lm9Pz4Rt6Vw8Ab1Cd3Ef5Gh7Ij9Kl",
            "//registry.npmjs.org/:_authToken=<redacted:npm-token>",
            "npm-token",
        ),
        (
            'HOOK = "https://hooks.slack.com/services/T01ABCDEF/B02GHIJKL/aBcDeFgHiJkLmNoPqR"',
            'HOOK = "<redacted:slack-token>"',
            "slack-token",
        ),
        (
            'client = Client(auth="Zk9xT2pLq8WmR3vB7nY1cD4sF6gH0jKu")',
            'client = Client(auth="<redacted:high-entropy>")',
            "high-entropy",
        ),
        (
            'signing_key = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b"',
            'signing_key = "<redacted:high-entropy>"',
            "high-entropy",
        ),
        (
            'const apiKey = "pk_8f3Kd9Lm2Qx7Rt5Vw1Zy";',
            'const apiKey = "<redacted:secret-keyword>";',
            "secret-keyword",
        ),
    ],
)
def test_each_kind_of_secret(line: str, expected: str, kind: str) -> None:
    assert PREFILTER.search(line), "the prefilter must let every detectable secret through"
    result = redact(f"x = 1\n{line}\ny = 2\n", "app.js" if "const" in line else "app.py")
    assert result.text == f"x = 1\n{expected}\ny = 2\n"
    assert result.findings == [Finding(2, kind)]


def test_only_the_value_is_replaced_not_a_matching_name() -> None:
    result = redact('password = "word"; login(password, "word")\n')
    assert result.text == (
        'password = "<redacted:secret-keyword>"; login(password, "<redacted:secret-keyword>")\n'
    )


def test_private_key_block_without_end_and_on_one_line() -> None:
    text = f"-----BEGIN OPENSSH PRIVATE KEY-----\n{KEY_BODY}\n\nafter = 1\n"
    result = redact(text)
    assert result.text == "<redacted:private-key>\n\n\n\nafter = 1\n"
    one_line = 'k = "-----BEGIN EC PRIVATE KEY-----\\nMHcCAQEE\\n-----END EC PRIVATE KEY-----\\n"\n'
    assert redact(one_line).text == 'k = "<redacted:private-key>\\n"\n'


def test_yaml_values_need_no_quotes() -> None:
    text = "database:\n  password: Tr0ub4dor-and-3\n  host: db.local\n"
    result = redact(text, "config.yaml")
    assert result.text == "database:\n  password: <redacted:secret-keyword>\n  host: db.local\n"


ORDINARY = {
    "config.py": """import os

PASSWORD_MIN_LENGTH = 12
password = os.environ["DB_PASSWORD"]
api_key = settings.get("api_key")
secret_key = get_secret("django")
if password == "":
    raise ValueError("password: must not be empty")
token_type = "Bearer"
SHA256_EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
REQUEST_ID = "123e4567-e89b-12d3-a456-426614174000"
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
url = f"https://{host}:{port}/v1/items?key={key}"
""",
    "client.ts": """export async function login(user: string, password: string) {
  const apiKey = process.env.API_KEY ?? "";
  const res = await fetch(`${BASE}/login`, { method: "POST", body: JSON.stringify({ user, password }) });
  if (!res.ok) throw new Error("Invalid password, please try again");
  return res.json() as Promise<{ token: string }>;
}
""",
    "settings.yaml": """database:
  password: ${DB_PASSWORD}
  secret: "{{ vault.secret }}"
  host: localhost
""",
}


@pytest.mark.parametrize("name", sorted(ORDINARY))
def test_ordinary_code_is_untouched(name: str) -> None:
    result = redact(ORDINARY[name], name)
    assert result.findings == []
    assert result.text == ORDINARY[name]


@pytest.mark.parametrize("module", ["inspect", "getpass", "smtplib", "ssl", "hashlib", "secrets"])
def test_standard_library_modules_are_untouched(module: str) -> None:
    path = inspect.getsourcefile(__import__(module))
    assert path is not None
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    result = redact(text, path)
    assert result.findings == []
    assert result.text is text


secret_lines = st.sampled_from(
    [
        f'KEY = "{AWS_ID}"',
        f"token: {GITHUB}",
        f"-----BEGIN PRIVATE KEY-----\n{KEY_BODY}\n-----END PRIVATE KEY-----",
        "-----BEGIN RSA PRIVATE KEY-----",
        f"auth = '{JWT}'",
        'password = "x y"',
    ]
)
text_lines = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=60)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(secret_lines, text_lines), max_size=12), st.sampled_from(["\n", "\r"]))
def test_line_count_never_changes(parts: list[str], extra: str) -> None:
    text = "\n".join(parts) + extra
    result = redact(text)
    assert result.text.count("\n") == text.count("\n")
    assert all(1 <= f.line <= text.count("\n") + 1 for f in result.findings)
    if not result.findings:
        assert result.text == text


def test_redaction_is_fast_on_ordinary_code() -> None:
    sources = []
    for module in ("inspect", "typing", "argparse", "collections", "pathlib", "subprocess"):
        path = inspect.getsourcefile(__import__(module))
        assert path is not None
        with open(path, encoding="utf-8") as handle:
            sources.append(handle.read())
    size = sum(len(s) for s in sources) * 3
    start = time.process_time()
    kinds = Counter(f.kind for _ in range(3) for s in sources for f in redact(s).findings)
    elapsed = time.process_time() - start
    assert kinds == Counter()
    assert size / max(elapsed, 1e-6) > 2_000_000, f"{size / elapsed / 1e6:.1f} MB/s"


def test_every_secret_on_a_long_minified_line() -> None:
    entries = [f'{{"user":"u{i}","password":"pw-{i:04d}-Xq"}}' for i in range(400)]
    line = "[" + ",".join(entries) + f'],"auth":"{GITHUB}"'
    start = time.process_time()
    result = redact(line + "\n", "settings.json")
    elapsed = time.process_time() - start
    assert result.text.count("<redacted:secret-keyword>") == 400
    assert "pw-" not in result.text and GITHUB not in result.text
    assert result.text.count('"user":"u') == 400  # the rest of the line is intact
    assert Counter(f.kind for f in result.findings) == {"secret-keyword": 400, "github-token": 1}
    assert {f.line for f in result.findings} == {1}
    assert elapsed < 5, f"{elapsed:.1f}s for a {len(line)}-character line"
