"""The prefilter of secret redaction: one pass over a whole text finds the few lines worth handing
to detect-secrets (:mod:`enclave.indexer.redact`), which is slow per line.

It must let every line with a detectable secret through; a line it selects that holds none only
costs time.
"""

from __future__ import annotations

import re

# Shortest quoted string the high-entropy plugins may report: shorter random-looking strings in
# code are colours, short hashes and test data, not credentials.
MIN_ENTROPY_SECRET = 20

# Python's regex engine is fast only when every alternative starts with a literal character (it
# then skips ahead to those characters in C), so each clue below is written around an "anchor"
# character that is rare in code, with look-behinds for what comes before it. Keys are anchors.
_CLUES = {
    # keyword plugin: api_key, auth_key, client_key, db_key, private_key... and key_pass
    "y": r"(?<=[ihetbvsIHETBVS][kK][eE]y)|(?<=[ihetbvsIHETBVS]_[kK][eE]y)|(?<=[kK][eE]y)_?[pP][aA]",
    "Y": r"(?<=[ihetbvsIHETBVS][kK][eE]Y)|(?<=[ihetbvsIHETBVS]_[kK][eE]Y)|(?<=[kK][eE]Y)_?[pP][aA]",
    # token and passphrase assignments (GITHUB_TOKEN=..., passphrase: ...)
    "k": r"(?<=hooks\.slack)|(?<=[tT]ok)en[\"']?[ \t]*[:=]",  # also Slack webhooks
    "K": r"(?<=TOK)EN[\"']?[ \t]*[:=]",
    "h": r"(?<=[pP]assp)hrase",
    "H": r"(?<=PASSP)HRASE",
    # password, passwd, pwd, aws (the AWS secret-key rule needs "aws" before the value)
    "w": r"(?<=[pP][aA][sS][sS]w)|(?<=[pP]w)[dD]|(?<=[aA]w)[sS]",
    "W": r"(?<=[pP][aA][sS][sS]W)|(?<=[pP]W)[dD]|(?<=[aA]W)[sS]",
    "b": r"(?<=[dD]b)_?[pP][aA][sS][sS]",  # db_pass
    "B": r"(?<=[dD]B)_?[pP][aA][sS][sS]",
    "c": r"(?<=[sS][eE]c)[rR][eE][tT]|ontrase",  # secret, contrasena
    "C": r"(?<=[sS][eE]C)[rR][eE][tT]|ONTRASE",
    # AWS key ids, Azure AccountKey=, Artifactory, PyPI, Twilio account SIDs, Google API keys
    "A": r"(?:KIA|SIA|BIA|CCA|3T[A-Z0-9])[0-9A-Z]{16}|ccountKey=|KC[a-zA-Z0-9]{10}"
    r"|P[\dA-F][a-zA-Z0-9]{8}|(?<=pypi-A)gE|C[a-z0-9]{32}|Iza[\w-]{35}",
    # GitHub, Stripe, npm, Hugging Face; DB_PASS=, SMTP_PASS=
    "_": r"(?<=gh[pousr]_)|(?<=[rs]k_live_)|(?<=[rs]k_test_)|(?<=github_pat_)|(?<=whsec_)"
    r"|(?<=npm_)|(?<=hf_)|authToken|[pP][aA][sS][sS](?![a-zA-Z])",
    # GitLab, Slack, private keys, Mailchimp, OpenAI and Anthropic keys
    "-": r"(?<=glpat-)|(?<=gl[df]t-)|(?<=glrt-)|(?<=glsoat-)|(?<=glcbt-)|(?<=glimt-)"
    r"|(?<=glptt-)|(?<=glagent-)|(?<=gloas-)|(?<=glffct-)|(?<=glsa-)|(?<=xox[abeoprs]-)"
    r"|(?<=xapp-)|----BEGIN|(?<=[0-9a-z]{32}-)us\d|(?<=sk-proj-)|(?<=sk-svcacct-)"
    r"|(?<=sk-admin-)|(?<=sk-ant-)|(?<=sk-None-)|(?<=sk-)[A-Za-z0-9]{48}",
    "G": r"R1348941",  # GitLab runner registration
    "T": r"3BlbkFJ",  # OpenAI
    "J": r"(?<=eyJ)",  # JWT
    "P": r"uTTY-User-Key",
    "S": r"G\.[\w-]{22}\.|K[a-z0-9]{32}",  # SendGrid, Twilio API keys
    "q": r"(?<=sq)0csp-",  # Square
    # basic-auth URLs, Telegram, long unquoted values (assignment-style plugins: IBM, Cloudant)
    ":": r"//[^\s/:@]+:[^\s/@]+@|(?<=\d{8}:)[\w-]{35}|[ \t]*[A-Za-z0-9+/_-]{32,}",
    "=": r"[ \t]*[A-Za-z0-9+/_-]{32,}",
    "M": r"[\w-]{23,25}\.[\w-]{6}\.",  # Discord
    "N": r"[\w-]{23,25}\.[\w-]{6}\.",
    "O": r"[\w-]{23,25}\.[\w-]{6}\.",
    # quoted strings long enough for the high-entropy plugins
    '"': rf'[A-Za-z0-9+/=_-]{{{MIN_ENTROPY_SECRET},}}"',
    "'": rf"[A-Za-z0-9+/=_-]{{{MIN_ENTROPY_SECRET},}}'",
}
PREFILTER = re.compile(
    "|".join(f"{re.escape(anchor)}(?:{clue})" for anchor, clue in _CLUES.items())
)


def candidate_lines(text: str) -> list[int]:
    """0-based numbers of the lines the prefilter selects, in order."""
    numbers: list[int] = []
    line_no = 0
    counted_to = 0
    pos = 0
    search = PREFILTER.search
    while (match := search(text, pos)) is not None:
        start = text.rfind("\n", 0, match.start()) + 1
        line_no += text.count("\n", counted_to, start)
        counted_to = start
        numbers.append(line_no)
        end = text.find("\n", match.end())
        if end == -1:
            break
        pos = end + 1
    return numbers
