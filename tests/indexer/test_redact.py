"""Secret redaction (enclave.indexer.redact): planted secrets go, ordinary code stays byte for
byte."""

from __future__ import annotations

import ast
import inspect
import time
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from enclave.config import Config, EmbeddingConfig
from enclave.indexer.api import open_index
from enclave.indexer.prefilter import PREFILTER
from enclave.indexer.redact import Finding, redact
from tests.server import secrets
from tests.support.repos import make_repo

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


# Tokens in their providers' documented shapes, of low entropy (repeated or sequential
# characters): recognised by prefix and shape, never by entropy alone.
PREFIXED = [
    ("sk-proj-testkey1234testkey1234testkey1234", "openai-key"),
    ("sk-svcacct-aaaaaaaaaaaaaaaaaaaaaaaaaaaa", "openai-key"),
    ("sk-admin-0000000000000000000000000000", "openai-key"),
    ("sk-" + "a" * 48, "openai-key"),
    ("sk-ant-api03-" + "a1" * 20, "anthropic-key"),
    ("npm_" + "a1b2c3" * 6, "npm-token"),
    ("pypi-AgEIcHlwaS5vcmc" + "a" * 24, "pypi-token"),
    ("ghp_" + "a" * 36, "github-token"),
    ("gho_" + "0" * 36, "github-token"),
    ("ghu_" + "ab" * 18, "github-token"),
    ("ghs_" + "A" * 36, "github-token"),
    ("ghr_" + "1" * 36, "github-token"),
    ("github_pat_11" + "A" * 20 + "_" + "b" * 59, "github-token"),
    ("glpat-" + "a" * 20, "gitlab-token"),
    ("glrt-" + "x" * 20, "gitlab-token"),
    ("GR1348941" + "a" * 20, "gitlab-token"),
    ("xoxb-000000000000-000000000000-" + "a" * 24, "slack-token"),
    ("xoxp-111111111111-" + "a" * 12, "slack-token"),
    ("xapp-1-A000000000-000000000000-" + "a" * 12, "slack-token"),
    ("sk_live_" + "a" * 24, "stripe-key"),
    ("sk_test_" + "0" * 24, "stripe-key"),
    ("rk_live_" + "ab" * 12, "stripe-key"),
    ("hf_" + "a" * 34, "huggingface-token"),
    ("AKIA" + "A" * 16, "aws-access-key"),
    ("ASIA" + "0" * 16, "aws-access-key"),
    ("AIza" + "a" * 35, "google-api-key"),
]


@pytest.mark.parametrize(("token", "kind"), PREFIXED, ids=[t[:12] for t, _ in PREFIXED])
@pytest.mark.parametrize(
    ("template", "path"),
    [('KEY = "{}"\n', "settings.py"), ("export KEY={}\n", "deploy.sh"), ("key: {}\n", "")],
)
def test_prefixed_tokens_of_low_entropy(token: str, kind: str, template: str, path: str) -> None:
    text = f"x = 1\n{template.format(token)}y = 2\n"
    assert PREFILTER.search(text), "the prefilter must let every prefixed token through"
    result = redact(text, path)
    assert token not in result.text
    assert result.text == f"x = 1\n{template.format(f'<redacted:{kind}>')}y = 2\n"
    assert result.findings == [Finding(2, kind)]


def test_aws_secret_key_unquoted() -> None:
    text = f"aws_secret_access_key = {'A' * 20}{'b' * 20}\n"
    result = redact(text, "deploy.cfg")
    assert result.text == "aws_secret_access_key = <redacted:aws-secret-key>\n"


NAMES_LIKE_TOKENS = """def sk_list_items(items):
    return sk_test_items_for(items, hf_hub_download, npm_config_prefix, ghp_token_name)


sk_live_mode = rk_live_view = "sk_list"
AKIA_PREFIX = "AKIA"
model = hf_model_name_or_path_that_is_long_ok
"""


def test_names_shaped_like_token_prefixes_are_kept() -> None:
    for path in ("app.py", "notes.md", ""):
        result = redact(NAMES_LIKE_TOKENS, path)
        assert result.findings == [] and result.text == NAMES_LIKE_TOKENS


# Keyword assignments in every syntax: (path, line, line after redaction).
ASSIGNMENTS = [
    ("deploy.sh", "export DB_PASSWORD=s3cr3t", "export DB_PASSWORD=<redacted:secret-keyword>"),
    ("deploy.sh", "GITHUB_TOKEN=abc123def", "GITHUB_TOKEN=<redacted:secret-keyword>"),
    ("deploy.sh", "SMTP_PASS=mailpw9", "SMTP_PASS=<redacted:secret-keyword>"),
    ("bin/deploy", "export API_KEY='k3y-value'", "export API_KEY='<redacted:secret-keyword>'"),
    ("Dockerfile", "ENV DB_PASSWORD=s3cr3t", "ENV DB_PASSWORD=<redacted:secret-keyword>"),
    ("app.py", "# export DB_PASSWORD=s3cr3t", "# export DB_PASSWORD=<redacted:secret-keyword>"),
    (
        "README.md",
        "    export DB_PASSWORD=s3cr3t",
        "    export DB_PASSWORD=<redacted:secret-keyword>",
    ),
    ("ci.yml", "  db_password: Tr0ub4dor", "  db_password: <redacted:secret-keyword>"),
    ("app.ini", "password = hunter22", "password = <redacted:secret-keyword>"),
    ("app.json", '{"password": "hunter22"}', '{"password": "<redacted:secret-keyword>"}'),
    ("app.toml", 'password = "hunter22"', 'password = "<redacted:secret-keyword>"'),
    ("app.py", 'db_password = "hunter22"', 'db_password = "<redacted:secret-keyword>"'),
    (
        "app.py",
        "x = 1  # staging: password=pw-2024",
        "x = 1  # staging: password=<redacted:secret-keyword>",
    ),
    ("app.ts", "// the CI token: xk-20-Z", "// the CI token: <redacted:secret-keyword>"),
    (
        "",
        "How?,db_password = hunter2 then,ops",
        "How?,db_password = <redacted:secret-keyword> then,ops",
    ),
    (
        "",
        "STAGING: the db; password=pw-2024 for CI",
        "STAGING: the db; password=<redacted:secret-keyword> for CI",
    ),
    ("", "the client_secret: Zq9-xk2", "the client_secret: <redacted:secret-keyword>"),
]


@pytest.mark.parametrize(("path", "line", "expected"), ASSIGNMENTS)
def test_keyword_assignments_in_every_syntax(path: str, line: str, expected: str) -> None:
    text = f"first\n{line}\nlast\n"
    assert PREFILTER.search(text)
    result = redact(text, path)
    assert result.text == f"first\n{expected}\nlast\n"
    assert result.findings == [Finding(2, "secret-keyword")]


KEYWORDS_THAT_ARE_NOT_SECRETS = {
    "deploy.sh": """export DB_PASSWORD=${DB_PASSWORD:?set it}
PASSWORD_MIN_LENGTH=12
PWD=/srv/app
export API_KEY="$(cat /run/secrets/api_key)"
bypass=yes
""",
    "notes.md": """The password: must not be empty.
passwd: elevated-privileges are needed
token_type: Bearer
Set `password = settings.password` and `token = get_token()`.
max_tokens = 100
const password = new Password(input);
A :token:`bracket_open` forms a comment.
password: <your-password>
""",
}


@pytest.mark.parametrize("name", sorted(KEYWORDS_THAT_ARE_NOT_SECRETS))
def test_keywords_that_are_not_secrets_are_kept(name: str) -> None:
    text = KEYWORDS_THAT_ARE_NOT_SECRETS[name]
    for path in (name, ""):
        result = redact(text, path)
        assert result.findings == [] and result.text == text


def test_the_index_on_disk_holds_no_token_or_assignment(tmp_path: Path) -> None:
    """Low-entropy tokens, a shell script's exported password and a glossary definition's
    password: none of them in the index's tables or in any byte of its files."""
    files = {
        "deploy.sh": secrets.DEPLOY_SH,
        "orders/client.py": secrets.CLIENT_PY,
        ".enclave/glossary.md": secrets.GLOSSARY_MD,
    }
    root = make_repo(tmp_path / "repo", files)
    config = Config(embedding=EmbeddingConfig(provider="none"))
    index = open_index(root, config)
    try:
        summary = index.update()
    finally:
        index.close()
    assert summary.errors == []
    import lancedb

    db = lancedb.connect(str(root / ".enclave"))
    stored: list[str] = []
    for name in db.list_tables().tables:
        table = db.open_table(name).to_arrow()
        for column in table.column_names:
            if table.schema.field(column).type in ("string", "large_string"):
                stored.extend(str(v) for v in table.column(column).to_pylist())
    text = "\n".join(stored)
    assert "export DB_PASSWORD=<redacted:secret-keyword>" in text
    assert 'OPENAI_KEY = "<redacted:openai-key>"' in text
    assert "_authToken <redacted:npm-token>" in text
    assert "password=<redacted:secret-keyword> for the CI user" in text
    assert "def sk_list_items(items):" in text  # a name shaped like a key prefix is kept
    assert secrets.leaked(text) == []
    sources = {root / name for name in files}  # the glossary itself lives in .enclave/ too
    stored_files = [p for p in (root / ".enclave").rglob("*") if p.is_file() and p not in sources]
    raw = b"".join(p.read_bytes() for p in stored_files)
    assert [s for s in secrets.ALL if s.encode() in raw] == []


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
