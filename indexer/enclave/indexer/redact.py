"""Step 2 of indexing: replace secrets in file text by ``<redacted:KIND>`` before anything is
stored, embedded or put in a prompt.

Detection is detect-secrets' plugins (AWS, GitHub, Slack, Stripe, JWT, keywords, high-entropy
strings, basic-auth URLs, ...), configured here in code: no settings file, no verification calls
(nothing goes to the network), plus two rule sets of our own: provider tokens recognised by their
documented prefix and shape whatever their entropy (:data:`_PREFIXED`), and keyword assignments
whose value needs no quotes (shell ``export DB_PASSWORD=...``, YAML, ``.ini``, prose and data
rows: :data:`_ASSIGNED`). detect-secrets is slow per line, so one compiled prefilter regex first
finds the few lines that could hold a secret (:mod:`enclave.indexer.prefilter`) and only those
lines are scanned.

The number of lines never changes, so line ranges computed on the redacted text map back to the
file: a private-key block becomes ``<redacted:private-key>`` on its first line and empty lines
for the rest of the block.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from detect_secrets.filters import heuristic
from detect_secrets.plugins import (
    artifactory,
    aws,
    azure_storage_key,
    basic_auth,
    cloudant,
    discord,
    github_token,
    gitlab_token,
    high_entropy_strings,
    ibm_cloud_iam,
    ibm_cos_hmac,
    jwt,
    keyword,
    mailchimp,
    npm,
    openai,
    pypi_token,
    sendgrid,
    slack,
    softlayer,
    square_oauth,
    stripe,
    telegram_token,
    twilio,
)
from detect_secrets.plugins.base import BasePlugin, RegexBasedDetector
from detect_secrets.util.filetype import determine_file_type

from enclave.indexer.prefilter import MIN_ENTROPY_SECRET, candidate_lines

__all__ = ["Finding", "Redaction", "redact", "redact_all", "redact_pii"]


@dataclass(frozen=True)
class Finding:
    line: int  # 1-based
    kind: str  # "aws-access-key", "private-key", "secret-keyword", "high-entropy", ...


@dataclass
class Redaction:
    text: str
    findings: list[Finding]


# Lines longer than this are scanned in overlapping windows (see _scan).
_SCAN_WINDOW = 2000
_WINDOW_OVERLAP = 300
# How much text around a keyword its rules see.
_KEYWORD_REACH = 200

_BEGIN_KEY = re.compile(r"-----BEGIN[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----|PuTTY-User-Key-File-\d")
_END_KEY = re.compile(r"-----END[ A-Z0-9]*-----|Private-MAC: *[0-9a-f]*")
_KEY_BODY = re.compile(r"\s*(?:[A-Za-z0-9+/=]+|[A-Za-z-]+: .*)?\s*")
_MAX_KEY_LINES = 200
_AKIA = re.compile(r"(?:A3T[A-Z0-9]|ABIA|ACCA|AKIA|ASIA)[0-9A-Z]{16}")

# Provider tokens by their documented prefix and shape, whatever their entropy: a key made of
# repeated characters is still a key. The prefixes are specific enough that a name in code
# (``sk_list_items``, ``hf_hub_download``, ``npm_config``) never has the shape.
_START = r"(?<![A-Za-z0-9_])"
_PREFIXED: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(_START + pattern))
    for kind, pattern in (
        # OpenAI project, service-account and admin keys; the legacy sk- + 48
        ("openai-key", r"sk-(?:proj|svcacct|admin|None)-[A-Za-z0-9_-]{20,}"),
        ("openai-key", r"sk-[A-Za-z0-9]{48}(?![A-Za-z0-9_-])"),
        ("anthropic-key", r"sk-ant-[a-z]+[0-9]*-[A-Za-z0-9_-]{20,}"),
        ("npm-token", r"npm_[A-Za-z0-9]{36}(?![A-Za-z0-9_])"),
        ("pypi-token", r"pypi-Ag(?:EIcHlwaS5vcmc|ENdGVzdC5weXBpLm9yZw)[A-Za-z0-9_-]{16,}"),
        ("github-token", r"gh[pousr]_[A-Za-z0-9]{36,251}(?![A-Za-z0-9_])"),
        ("github-token", r"github_pat_[A-Za-z0-9_]{40,}"),
        (
            "gitlab-token",
            r"(?:glpat|gldt|glrt|glptt|glft|glsoat|glcbt|glimt|glagent|gloas|glffct|glsa)"
            r"-[A-Za-z0-9_-]{20,}",
        ),
        ("gitlab-token", r"GR1348941[A-Za-z0-9_-]{20,}"),
        ("slack-token", r"xox[abeoprs]-[A-Za-z0-9-]{10,}"),
        ("slack-token", r"xapp-[0-9]-[A-Za-z0-9-]{10,}"),
        ("stripe-key", r"(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}"),
        ("stripe-key", r"whsec_[A-Za-z0-9]{24,}"),
        ("huggingface-token", r"hf_[A-Za-z0-9]{34}(?![A-Za-z0-9_])"),
        ("aws-access-key", r"(?:A3T[A-Z0-9]|ABIA|ACCA|AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9_])"),
        ("google-api-key", r"AIza[A-Za-z0-9_-]{35}(?![A-Za-z0-9_-])"),
    )
)
# An AWS secret access key: 40 characters after a name that says so, quoted or not.
_AWS_SECRET = re.compile(
    r"aws[\w.-]{0,20}?(?:secret|key)[\w.-]{0,20}[\"']?[ \t]*(?::=|=|:)[ \t]*[\"']?"
    r"([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])",
    re.IGNORECASE,
)

# Keyword assignments whose value needs no quotes: ``export DB_PASSWORD=s3cr3t`` in a shell
# script, ``db_password = s3cr3t`` in a data row, ``password: s3cr3t`` in prose or YAML. The
# name ends with the keyword (``password_min_length`` is not a password); in code files
# (Python, JavaScript, ...) an unquoted value is an expression, so there only the shell's
# ``export NAME=value`` form counts.
_SECRET_NAME = (
    r"(?P<name>[\w.-]*?(?:password|passwd|passphrase|secret|token|api_?key|auth_?key"
    r"|access_?key|private_?key|secret_?key|client_?key|(?<![a-z])pass|_pwd))"
)
_VALUE = (
    r"[\"']?[ \t]*(?P<op>:=|=(?!=)|:(?![:/]))[ \t]*"
    r"(?:(?P<q>[\"'])(?P<quoted>[^\"'\n]{1,200})(?P=q)|(?P<bare>[^\s\"'`,;&|)}\]]{1,200}))"
)
_ASSIGNED = re.compile(r"(?<![\w.-])" + _SECRET_NAME + _VALUE, re.IGNORECASE)
_EXPORTED = re.compile(r"\bexport[ \t]+" + _SECRET_NAME + _VALUE, re.IGNORECASE)
# Bare values that are code, not secrets: settings.password, os.environ, another `name=`, `new`.
_REFERENCE = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+|[A-Za-z_]\w*=.*")
# Where a comment starts in a line of code (then prose follows): `# `, `// `, `-- `, `/* `, ` * `.
_COMMENT_START = re.compile(r"(?:^|[ \t])(?:#|//|--|/\*+|\*)[ \t]")
_CODE_WORDS = frozenset({"new", "await", "function", "lambda", "not", "typeof", "this", "self"})
_NOT_A_VALUE = ("$", "%", "{", "<", "(", "[", "/", "~", "./", "...", "your-", "your_")
# Files whose assignments need no quotes: shell scripts, configuration, prose and data. Text with
# no path (a question, a dataset row, a glossary definition) is read the same way.
_FREEFORM_SUFFIXES = frozenset(
    {
        *(".sh", ".bash", ".zsh", ".ksh", ".fish", ".envrc", ".env", ".profile", ".bashrc"),
        *(".zshrc", ".mk", ".ps1", ".bat", ".cmd", ".md", ".markdown", ".txt", ".rst", ".adoc"),
        *(".csv", ".tsv", ".cfg", ".conf", ".cnf", ".ini", ".properties", ".toml", ".yaml"),
        ".yml",
    }
)
_FREEFORM_NAMES = frozenset({"dockerfile", "containerfile", "makefile", "procfile", "gemfile"})

_KINDS = {
    "AWS Access Key": "aws-access-key",
    "Azure Storage Account access key": "azure-storage-key",
    "Basic Auth Credentials": "basic-auth",
    "Base64 High Entropy String": "high-entropy",
    "Hex High Entropy String": "high-entropy",
    "GitHub Token": "github-token",
    "GitLab Token": "gitlab-token",
    "JSON Web Token": "jwt",
    "NPM tokens": "npm-token",
    "OpenAI Token": "openai-key",
    "PyPI Token": "pypi-token",
    "Secret Keyword": "secret-keyword",
    "Slack Token": "slack-token",
    "Stripe Access Key": "stripe-key",
}

_GITLAB = gitlab_token.GitLabTokenDetector()  # its patterns' groups are prefixes, not values
_JWT = jwt.JwtTokenDetector()
_JWT_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.+/=")
_REGEX_PLUGINS: tuple[RegexBasedDetector, ...] = (
    aws.AWSKeyDetector(),
    artifactory.ArtifactoryDetector(),
    azure_storage_key.AzureStorageKeyDetector(),
    basic_auth.BasicAuthDetector(),
    cloudant.CloudantDetector(),
    discord.DiscordBotTokenDetector(),
    github_token.GitHubTokenDetector(),
    _GITLAB,
    ibm_cloud_iam.IbmCloudIamDetector(),
    ibm_cos_hmac.IbmCosHmacDetector(),
    _JWT,
    mailchimp.MailchimpDetector(),
    npm.NpmDetector(),
    openai.OpenAIDetector(),
    pypi_token.PypiTokenDetector(),
    sendgrid.SendGridDetector(),
    slack.SlackDetector(),
    softlayer.SoftlayerDetector(),
    square_oauth.SquareOAuthDetector(),
    stripe.StripeDetector(),
    telegram_token.TelegramBotTokenDetector(),
    twilio.TwilioKeyDetector(),
)
_KEYWORD = keyword.KeywordDetector()
# Every keyword rule contains one of detect-secrets' denylisted words: a cheap gate before them.
_KEYWORD_GATE = re.compile(keyword.DENYLIST_REGEX, re.IGNORECASE)
_ENTROPY: tuple[high_entropy_strings.HighEntropyStringsPlugin, ...] = (
    high_entropy_strings.Base64HighEntropyString(limit=4.5),
    high_entropy_strings.HexHighEntropyString(limit=3.0),
)


# Entropy findings made only of hex digits are digests (test vectors, checksums) unless the line
# names a secret; alphabets ("abcdefghij...") are charsets, not secrets.
_SECRET_CONTEXT = re.compile(r"key|secret|token|passw|pwd|auth|credential|private", re.IGNORECASE)
_HEX = re.compile(r"[0-9a-fA-F]+")
_ALPHABET_RUN = 6
# Keyword values that are settings or prose, not secrets.
_NOT_SECRETS = frozenset({"yes", "no", "true", "false", "none", "null", "on", "off", "required"})


def _has_alphabet_run(value: str) -> bool:
    """``value`` holds a run like "abcdef" or "ZYXWVU" (an alphabet, not a random string)."""
    run, step = 1, 0
    for before, after in itertools.pairwise(value):
        diff = ord(after) - ord(before)
        run = run + 1 if diff in (1, -1) and diff == step else 2 if diff in (1, -1) else 1
        step = diff
        if run >= _ALPHABET_RUN:
            return True
    return False


def _plausible_keyword(secret: str) -> bool:
    return secret.lower() not in _NOT_SECRETS and not any(c.isspace() for c in secret)


def _kind(plugin: BasePlugin, secret: str) -> str:
    secret_type = str(plugin.secret_type)
    if secret_type == "AWS Access Key" and not _AKIA.fullmatch(secret):
        return "aws-secret-key"
    known = _KINDS.get(secret_type)
    if known is not None:
        return known
    return re.sub(r"[^a-z0-9]+", "-", secret_type.lower()).strip("-")


def _plausible(secret: str, line: str, plugin: str) -> bool:
    """detect-secrets' own false-positive filters; ``plugin`` is "regex", "keyword" or "entropy".

    Context filters apply to the heuristic plugins only, and the indirect-reference filter
    (``secret = get_secret()``) to keywords only: a literal inside a call is still a literal.
    """
    if (
        not secret
        or heuristic.is_sequential_string(secret)
        or heuristic.is_potential_uuid(secret)
        or heuristic.is_templated_secret(secret)
        or heuristic.is_not_alphanumeric_string(secret)
    ):
        return False
    if plugin == "regex":
        return True
    if heuristic.is_likely_id_string(secret, line) or heuristic.is_prefixed_with_dollar_sign(
        secret
    ):
        return False
    return plugin != "keyword" or not heuristic.is_indirect_reference(line)


def _regex_values(plugin: RegexBasedDetector, line: str) -> Iterator[str]:
    """The exact secret values a regex plugin's patterns match on ``line``.

    detect-secrets' own ``analyze_string`` yields a pattern's first group, which for some
    plugins is only the token prefix ("ghp"): redaction needs the whole value.
    """
    for regex in plugin.denylist:
        for match in regex.finditer(line):
            value, end = match.group(0), match.end()
            group = match.group(1) if regex.groups else None
            if group and match.start(1) > match.start() and plugin is not _GITLAB:
                value = group  # an assignment's value, a URL's password
            elif plugin is _JWT:  # the pattern stops lazily before the signature
                while end < len(line) and line[end] in _JWT_CHARS:
                    end += 1
                value = line[match.start() : end]
                if not jwt.JwtTokenDetector.is_formally_valid(value):
                    continue
            value = value.strip(" \t\"'=:")
            if value:
                yield value


def _freeform(path: str) -> bool:
    """Is an unquoted keyword value a value in this file (shell, config, prose, no path)?"""
    name = path.replace("\\", "/").rsplit("/", 1)[-1].lower()
    if not name:
        return True
    stem, dot, suffix = name.rpartition(".")
    if not dot:  # no suffix: a script (bin/deploy), Dockerfile, README
        return True
    return f".{suffix}" in _FREEFORM_SUFFIXES or stem.split(".")[0] in _FREEFORM_NAMES


def _assigned_values(line: str, freeform: bool) -> Iterator[str]:
    """The values of keyword assignments on ``line`` that need no quotes (see _ASSIGNED); in
    code, only in the shell's ``export`` form, or in a comment (prose)."""
    if not freeform:
        comment = _COMMENT_START.search(line)
        if comment is not None:
            yield from _assigned_values(line[comment.end() :], True)
            line = line[: comment.start()]
    for match in (_ASSIGNED if freeform else _EXPORTED).finditer(line):
        value = match["quoted"] if match["quoted"] is not None else match["bare"]
        if (
            value.startswith(_NOT_A_VALUE)
            or not _plausible_keyword(value)
            or value.lower() in match["name"].lower()
            or (
                match["bare"] is not None
                and (_REFERENCE.fullmatch(value) or value.lower() in _CODE_WORDS)
            )
            or not _plausible(value, line, "keyword")
        ):
            continue
        if match["op"] == ":" and match["q"] is None and not _credential_like(value):
            continue  # prose: "password: must not be empty"
        yield value


def _credential_like(value: str) -> bool:
    """A bare value after a colon is prose ("passwd: elevated-privileges") unless it holds a
    digit or a symbol, or is long and of mixed case."""
    if any(c.isdigit() or not (c.isalpha() or c in "-_.") for c in value):
        return True
    return len(value) >= 16 and value.lower() != value and value.upper() != value


def _scan_line(
    line: str, keyword_groups: dict[re.Pattern[str], int], freeform: bool = False
) -> dict[str, str]:
    """The secret values found on one line, each with its kind."""
    found: dict[str, str] = {}
    for kind, pattern in _PREFIXED:
        for match in pattern.finditer(line):
            found.setdefault(match.group(), kind)
    for match in _AWS_SECRET.finditer(line):
        if _plausible(match[1], line, "regex"):
            found.setdefault(match[1], "aws-secret-key")
    for plugin in _REGEX_PLUGINS:
        for secret in _regex_values(plugin, line):
            if secret not in found and _plausible(secret, line, "regex"):
                found[secret] = _kind(plugin, secret)
    # detect-secrets' keyword rules report one value per rule and string: look at each keyword
    # on the line in turn, with a little text around it.
    pos = 0
    while (gate := _KEYWORD_GATE.search(line, pos)) is not None:
        low = max(pos, gate.start() - _KEYWORD_REACH)
        segment = line[low : gate.end() + _KEYWORD_REACH]
        pos = gate.end()
        for secret in _KEYWORD.analyze_string(segment, denylist_regex_to_group=keyword_groups):
            if not secret:
                continue
            pos = max(pos, low + segment.find(secret) + len(secret))
            if (
                secret not in found
                and _plausible_keyword(secret)
                and _plausible(secret, segment, "keyword")
            ):
                found[secret] = "secret-keyword"
    for value in _assigned_values(line, freeform):
        found.setdefault(value, "secret-keyword")
    context: bool | None = None  # does the line name a secret? (searched once, if needed)
    for entropy in _ENTROPY:
        for secret in entropy.analyze_string(line):
            if (
                secret in found
                or len(secret) < MIN_ENTROPY_SECRET
                or _has_alphabet_run(secret)
                or entropy.calculate_shannon_entropy(secret) <= entropy.entropy_limit
            ):
                continue
            if _HEX.fullmatch(secret):
                if context is None:
                    context = _SECRET_CONTEXT.search(line) is not None
                if not context:
                    continue
            if _plausible(secret, line, "entropy"):
                found[secret] = "high-entropy"
    return found


def _scan(
    line: str, keyword_groups: dict[re.Pattern[str], int], freeform: bool = False
) -> dict[str, str]:
    """:func:`_scan_line`, in overlapping windows for very long lines (minified files): the
    plugins' context checks search the whole line for every value, quadratic on such lines."""
    if len(line) <= _SCAN_WINDOW:
        return _scan_line(line, keyword_groups, freeform)
    found: dict[str, str] = {}
    for start in range(0, len(line) - _WINDOW_OVERLAP, _SCAN_WINDOW - _WINDOW_OVERLAP):
        window = line[start : start + _SCAN_WINDOW]
        for value, kind in _scan_line(window, keyword_groups, freeform).items():
            found.setdefault(value, kind)
    return found


def _occurrences(line: str, secret: str) -> Iterator[int]:
    start = line.find(secret)
    while start != -1:
        yield start
        start = line.find(secret, start + len(secret))


def _standalone(line: str, at: int, value: str) -> bool:
    """The occurrence of ``value`` at ``at`` is not part of a longer word (a name)."""
    end = at + len(value)
    before = line[at - 1] if at > 0 else " "
    after = line[end] if end < len(line) else " "
    starts_word = value[0].isalnum() or value[0] == "_"
    ends_word = value[-1].isalnum() or value[-1] == "_"
    return not (starts_word and (before.isalnum() or before == "_")) and not (
        ends_word and (after.isalnum() or after == "_")
    )


def _redact_line(line: str, found: dict[str, str]) -> tuple[str, list[str]]:
    """Replace the values, not the whole line: their standalone occurrences, else the last one.

    Returns the new line and the kinds replaced (a value inside a longer one, such as a token
    inside a keyword's value, goes with the longer one and is not counted twice).
    """
    spans: list[tuple[int, int, str]] = []
    for value, kind in found.items():
        spots = list(_occurrences(line, value))
        chosen = [at for at in spots if _standalone(line, at, value)] or spots[-1:]
        spans.extend((at, at + len(value), kind) for at in chosen)
    spans.sort(key=lambda span: (span[0], -span[1]))
    parts: list[str] = []
    kinds: dict[str, str] = {}
    pos = 0
    for start, end, kind in spans:
        if start < pos:  # overlaps a value already replaced: widen that replacement
            pos = max(pos, end)
            continue
        parts += (line[pos:start], f"<redacted:{kind}>")
        kinds.setdefault(line[start:end], kind)
        pos = end
    parts.append(line[pos:])
    return "".join(parts), list(kinds.values())


def _redact_key_block(lines: list[str], index: int, begin: re.Match[str]) -> int:
    """Blank a private-key block starting on ``lines[index]``; returns the index of its last line."""
    first = lines[index]
    end = _END_KEY.search(first, begin.end())
    if end is not None:  # the whole key on one line (e.g. a JSON string with \\n escapes)
        lines[index] = first[: begin.start()] + "<redacted:private-key>" + first[end.end() :]
        return index
    lines[index] = first[: begin.start()] + "<redacted:private-key>"
    limit = min(len(lines), index + 1 + _MAX_KEY_LINES)
    for j in range(index + 1, limit):
        end = _END_KEY.search(lines[j])
        if end is not None:
            for k in range(index + 1, j):
                lines[k] = ""
            lines[j] = lines[j][end.end() :]
            return j
    # No end marker: blank the body lines that follow (base64 and "Header: value" lines).
    j = index + 1
    while j < limit and lines[j].strip() and _KEY_BODY.fullmatch(lines[j]):
        lines[j] = ""
        j += 1
    return j - 1


def redact(text: str, path: str = "") -> Redaction:
    """Replace the secrets in ``text`` by ``<redacted:KIND>``, keeping every line in place.

    ``path`` (optional) picks the keyword rules for the file type: in shell scripts, YAML, INI,
    TOML, prose and data files, and in text with no path, a keyword's value needs no quotes.
    """
    numbers = candidate_lines(text)
    if not numbers:
        return Redaction(text, [])
    keyword_groups = keyword.REGEX_BY_FILETYPE.get(
        determine_file_type(path), keyword.QUOTES_REQUIRED_DENYLIST_REGEX_TO_GROUP
    )
    freeform = _freeform(path)
    lines = text.split("\n")
    findings: list[Finding] = []
    done_to = -1  # last line already handled (by a private-key block)
    for index in numbers:
        if index <= done_to:
            continue
        line = lines[index]
        begin = _BEGIN_KEY.search(line)
        if begin is not None:
            findings.append(Finding(index + 1, "private-key"))
            done_to = _redact_key_block(lines, index, begin)
            continue
        found = _scan(line, keyword_groups, freeform)
        if found:
            lines[index], kinds = _redact_line(line, found)
            findings.extend(Finding(index + 1, kind) for kind in kinds)
    if not findings:
        return Redaction(text, [])
    return Redaction("\n".join(lines), findings)


# Personal data (``trust.redact_pii``, or the administrator's policy ``redact_pii``): email
# addresses and phone numbers. Phone numbers need separators or a leading +, so plain integers,
# dates (2024-01-15) and version numbers are left alone.
_EMAIL = re.compile(
    r"(?<![\w.+%-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
    r"(?![\w-])"
)
_PHONE = re.compile(
    r"(?<![\w.+-])(?:"
    r"\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]\d{2,5}){1,4}"  # +49 89 1234 5678
    r"|\(\d{3}\)[ .-]?\d{3}[ .-]\d{4}"  # (555) 123-4567
    r"|\d{3}[.-]\d{3}[.-]\d{4}"  # 555-123-4567
    r")(?![\w-])"
)


def redact_pii(text: str) -> Redaction:
    """Replace email addresses and phone numbers by ``<redacted:email>`` / ``<redacted:phone>``,
    keeping every line in place (the replacements hold no newline)."""
    findings: list[Finding] = []

    def replacer(kind: str) -> Callable[[re.Match[str]], str]:
        def replace(match: re.Match[str]) -> str:
            findings.append(Finding(text.count("\n", 0, match.start()) + 1, kind))
            return f"<redacted:{kind}>"

        return replace

    if "@" in text:
        text = _EMAIL.sub(replacer("email"), text)
    text = _PHONE.sub(replacer("phone"), text)
    return Redaction(text, findings)


def redact_all(text: str, path: str = "", *, pii: bool = False) -> Redaction:
    """Secrets (always) and, when ``pii``, personal data: what the index and prompts get."""
    done = redact(text, path)
    if not pii:
        return done
    personal = redact_pii(done.text)
    return Redaction(personal.text, done.findings + personal.findings)
