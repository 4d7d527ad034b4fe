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

# Tokens of low entropy in their providers' documented shapes (redacted by prefix and shape,
# not by entropy), and keyword values that need no quotes (shell, data rows, glossary prose).
OPENAI_PROJECT = "sk-proj-testkey1234testkey1234testkey1234"
NPM = "npm_" + "a1b2c3" * 6
EXPORTED_PASSWORD = "s3cr3t-Deploy"
ROW_PASSWORD = "rowpass-77"
GLOSSARY_PASSWORD = "Glossary-pw-2024"

ALL = (AWS_ID, AWS_SECRET, GITHUB, SLACK, STRIPE, GITLAB, DB_PASSWORD, JWT, ENTROPY, KEY_BODY,
       PASSWORD, OPENAI_PROJECT, NPM, EXPORTED_PASSWORD, ROW_PASSWORD,
       GLOSSARY_PASSWORD)  # fmt: skip

DEPLOY_SH = f"""#!/bin/sh
# Deploy the orders service.
export DB_PASSWORD={EXPORTED_PASSWORD}
export OPENAI_API_KEY={OPENAI_PROJECT}
npm config set //registry.npmjs.org/:_authToken {NPM}
exec ./orders --db "$DB_PASSWORD"
"""
CLIENT_PY = f'''"""The model client of the orders service."""
OPENAI_KEY = "{OPENAI_PROJECT}"
NPM_TOKEN = "{NPM}"


def sk_list_items(items):
    return [item for item in items if item]
'''
GLOSSARY_MD = f"STAGING: the staging database; password={GLOSSARY_PASSWORD} for the CI user\n"

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
