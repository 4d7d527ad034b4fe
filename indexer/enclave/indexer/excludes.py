"""Built-in exclusion rules for discovery: secret-bearing file names, vendored directories,
lockfiles, minified/generated files and binary file types, plus gitignore-style rule sets.

Everything here works on repository-relative POSIX paths ("src/app/main.py") and never touches
the disk, so it is cheap enough to run on every path of a large repository. The one content rule,
:func:`minified_reason`, looks at a file's text once it has been read.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable

import pathspec

# Directories whose content is third-party; matched as any path component.
VENDORED_DIRS = frozenset({"node_modules", "vendor", "third_party", ".venv", "bower_components"})
# Names that are vendored only when they hold a virtualenv (pyvenv.cfg): the standard library
# itself has a package called "venv".
VIRTUALENV_DIRS = frozenset({"venv"})
# Directories never worth a word: git's own data and Enclave's index.
SILENT_DIRS = frozenset({".git", ".enclave"})

LOCKFILES = frozenset(
    {
        "package-lock.json",
        "npm-shrinkwrap.json",
        "yarn.lock",
        "pnpm-lock.yaml",
        "bun.lockb",
        "cargo.lock",
        "poetry.lock",
        "uv.lock",
        "pipfile.lock",
        "composer.lock",
        "gemfile.lock",
        "podfile.lock",
        "go.sum",
        "flake.lock",
        "packages.lock.json",
    }
)

_GENERATED_SUFFIXES = (
    ".min.js",
    ".min.css",
    ".map",
    "_pb2.py",
    "_pb2.pyi",
    "_pb2_grpc.py",
    ".pb.go",
)

_IMAGES = ".png .jpg .jpeg .gif .bmp .ico .icns .webp .tif .tiff .psd .svg .heic .avif"
_ARCHIVES = ".zip .tar .gz .tgz .bz2 .xz .zst .7z .rar .whl .egg .jar .war .ear .deb .rpm .dmg .iso"
_FONTS = ".ttf .otf .woff .woff2 .eot"
_COMPILED = ".so .dll .dylib .exe .o .a .lib .obj .pyc .pyo .pyd .class .wasm .bin .elf .apk"
_DOCUMENTS = ".pdf .doc .docx .xls .xlsx .ppt .pptx .odt .mp3 .mp4 .wav .flac .ogg .avi .mov .mkv"
_DATA = ".db .sqlite .sqlite3 .parquet .lance .npy .npz .pkl .pickle .h5 .onnx .pt .pth .gguf"
_MORE = ".webm .safetensors .ckpt"
BINARY_EXTENSIONS = frozenset(
    " ".join((_IMAGES, _ARCHIVES, _FONTS, _COMPILED, _DOCUMENTS, _DATA, _MORE)).split(" ")
)

# Secret-bearing files: never read. Globs match the lower-cased base name, paths the tail.
_SECRET_NAME_GLOBS = (
    ".env",
    ".env.*",
    "*.env",
    "*.pem",
    "*.key",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    "*.p12",
    "*.pfx",
    "*.jks",
    "*.keystore",
    "*.ppk",
    "*.kdbx",
    ".netrc",
    "_netrc",
    ".npmrc",
    ".pypirc",
    ".git-credentials",
    ".htpasswd",
    ".pgpass",
    ".dockercfg",
    "secrets.y*ml",
    "secrets.json",
    "credentials.json",
    "*.tfstate",
    "*.tfstate.backup",
)
_SECRET_PATH_TAILS = (".aws/credentials", ".docker/config.json", ".kube/config", ".ssh/config")
_SECRET_PATH_ENDINGS = tuple("/" + tail for tail in _SECRET_PATH_TAILS)
_SECRET_NAME_RE = re.compile("|".join(fnmatch.translate(glob) for glob in _SECRET_NAME_GLOBS))


# Minified or generated content, whatever the file is called: a line longer than LONG_LINE_CHARS
# (bundles, inlined data), or lines averaging over MINIFIED_MEAN_CHARS in a file of at least
# MINIFIED_MIN_CHARS (bundles wrapped at a fixed width). Such files are skipped ("minified"): their
# lines are no unit a person reads or searches, and the chunker can only cut them blindly.
LONG_LINE_CHARS = 4000
MINIFIED_MEAN_CHARS = 1000
MINIFIED_MIN_CHARS = 16 * 1024


def minified_reason(text: str) -> str | None:
    """Why ``text`` ("\n" newlines) looks minified or generated, or None if it does not."""
    if len(text) <= LONG_LINE_CHARS:
        return None
    lengths = [len(line) for line in text.split("\n")]
    longest = max(lengths)
    if longest > LONG_LINE_CHARS:
        row = lengths.index(longest) + 1
        return (
            f"line {row} has {longest:,} characters (over {LONG_LINE_CHARS:,}):"
            " minified or generated"
        )
    mean = len(text) / len(lengths)
    if len(text) >= MINIFIED_MIN_CHARS and mean > MINIFIED_MEAN_CHARS:
        return (
            f"lines average {mean:,.0f} characters (over {MINIFIED_MEAN_CHARS:,}):"
            " minified or generated"
        )
    return None


def is_secret_filename(path: str) -> bool:
    """True if the file's name says it holds credentials (such files are never read)."""
    lowered = path.replace("\\", "/").lower()
    name = lowered.rsplit("/", 1)[-1]
    if _SECRET_NAME_RE.match(name):
        return True
    return lowered in _SECRET_PATH_TAILS or lowered.endswith(_SECRET_PATH_ENDINGS)


def vendored_dir(path: str, is_virtualenv: Callable[[str], bool]) -> str | None:
    """The vendored directory prefix ("web/node_modules/") holding ``path``, if any.

    ``is_virtualenv(prefix)`` decides for directories named like a virtualenv ("venv/").
    """
    parts = path.split("/")
    for i, part in enumerate(parts[:-1]):
        if part in VENDORED_DIRS or part in VIRTUALENV_DIRS:
            prefix = "/".join(parts[: i + 1]) + "/"
            if part in VENDORED_DIRS or is_virtualenv(prefix):
                return prefix
    return None


def in_silent_dir(path: str) -> bool:
    return not SILENT_DIRS.isdisjoint(path.split("/")[:-1])


def builtin_file_exclusion(path: str) -> str | None:
    """Why a file is excluded by the built-in rules ("lockfile", ...), or None to keep it."""
    name = path.rsplit("/", 1)[-1].lower()
    if name in LOCKFILES:
        return "lockfile"
    if name.endswith(_GENERATED_SUFFIXES) or ".generated." in name:
        return "minified or generated file"
    dot = name.rfind(".")
    suffix = name[dot:] if 0 < dot < len(name) - 1 else ""  # PurePosixPath's suffix, cheaper
    if suffix in BINARY_EXTENSIONS:
        return f"binary file type ({suffix})"
    if name == ".ds_store":
        return "binary file type"
    return None


class IgnoreRules:
    """A gitignore-syntax rule set anchored at a directory of the repository ("" = root)."""

    def __init__(self, lines: Iterable[str], base: str = "", source: str = "") -> None:
        self.base = base  # "" or "sub/dir/" (with the trailing slash)
        self.source = source
        self.invalid: list[str] = []  # patterns git would not accept either; left out
        patterns = list(lines)
        try:
            self.spec = pathspec.GitIgnoreSpec.from_lines(patterns)
        except ValueError:  # pathspec's GitIgnorePatternError: keep the valid lines
            valid = []
            for pattern in patterns:
                try:
                    pathspec.GitIgnoreSpec.from_lines([pattern])
                except ValueError:
                    self.invalid.append(pattern)
                else:
                    valid.append(pattern)
            self.spec = pathspec.GitIgnoreSpec.from_lines(valid)
        self.empty = len(self.spec.patterns) == 0

    def decide(self, path: str, is_dir: bool = False) -> bool | None:
        """True = ignored, False = re-included by a negation, None = no rule matches."""
        if self.empty or not path.startswith(self.base):
            return None
        rel = path[len(self.base) :]
        return self.spec.check_file(rel + "/" if is_dir else rel).include


def first_decision(rules: Iterable[IgnoreRules], path: str, is_dir: bool = False) -> bool:
    """Apply rule sets ordered from the most specific (deepest) to the least; first match wins."""
    for rule_set in rules:
        decision = rule_set.decide(path, is_dir)
        if decision is not None:
            return decision
    return False
