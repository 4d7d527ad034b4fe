"""Planted secrets for the trust-boundary tests: ten kinds, each one redact() recognises."""

from __future__ import annotations

AWS_ID = "AKIAZ3MK7QW2PLX4RTYB"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzq8Jd3Hs2T"
GITHUB = "ghp_R8x2Lq9ZkT4mW7vY1bN3cD6fH0jP5sA8uE2g"
SLACK = "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
STRIPE = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"
GITLAB = "glpat-Ab3dEf6hIj9kLm2nOp5q"
DB_PASSWORD = "s3cr3tP4ss"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
ENTROPY = "Zk9xT2pLq8WmR3vB7nY1cD4sF6gH0jKu"
KEY_BODY = "MIIEowIBAAKCAQEA7bq9Z3k1wJalrXUtnFEMIK7MDENGbPxRfiCY"
PASSWORD = "hunter2-Correct"

ALL = (AWS_ID, AWS_SECRET, GITHUB, SLACK, STRIPE, GITLAB, DB_PASSWORD, JWT, ENTROPY, KEY_BODY,
       PASSWORD)  # fmt: skip

SETTINGS_PY = f'''"""Deployment settings."""
AWS_ACCESS_KEY_ID = "{AWS_ID}"
aws_secret_access_key = "{AWS_SECRET}"
GITHUB = "{GITHUB}"  # CI token
SLACK = "{SLACK}"
stripe_api_key = "{STRIPE}"
token = "{GITLAB}"
DB_URL = "postgres://admin:{DB_PASSWORD}@db.internal:5432/app"
SESSION = "{JWT}"
client_auth = Client(auth="{ENTROPY}")
db_password = "{PASSWORD}"
PRIVATE_KEY = """-----BEGIN RSA PRIVATE KEY-----
{KEY_BODY}
-----END RSA PRIVATE KEY-----"""


def connect(region: str = "eu-west-1") -> str:
    return region
'''


def leaked(text: str) -> list[str]:
    """The planted secrets found in ``text`` (what reached a model, read on the server side)."""
    return [secret for secret in ALL if secret in text]
