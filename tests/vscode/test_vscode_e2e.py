"""End-to-end: the packaged extension (.vsix) installed into a real VS Code (code-server), driven
by a real browser (Debian's chromium through Playwright), against the real language server and the
test Ollama server.

Needs tests/vscode/setup.sh first (Node 24, code-server, chromium, Playwright); run on its own:
``.venv/bin/python -m pytest -q -p no:cacheprovider --rootdir=. tests/vscode``. Screenshots of
each step go to .artifacts/vscode-e2e/ (or $ENCLAVE_VSCODE_E2E_ARTIFACTS).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.support.repos import make_repo
from tests.support.shapes import FILES

ROOT = Path(__file__).resolve().parents[2]
EXTENSION_DIR = ROOT / "editors" / "vscode"
VSIX = EXTENSION_DIR / "enclave.vsix"
CACHE = Path(os.environ.get("ENCLAVE_VSCODE_E2E_CACHE", ROOT / ".cache" / "vscode-e2e"))
ARTIFACTS = Path(os.environ.get("ENCLAVE_VSCODE_E2E_ARTIFACTS", ROOT / ".artifacts" / "vscode-e2e"))
EXTENSION_ID = "enclave.enclave"
# The workbench's id of the item statusBar.ts creates with id "enclave.status": <extension id>.<id>.
STATUS_ITEM_ID = f"{EXTENSION_ID}.enclave.status"
SETUP_HINT = (
    "run tests/vscode/setup.sh first (it installs code-server, Node 24, chromium and Playwright)"
)

# lib/status.ts renderStatus (what statusBar.ts shows); "~spin" is a modifier class, not a name.
READY_TEXTS = ("$(check) Enclave", "$(check) Enclave (lexical)")
FAILED_TEXTS = (
    "$(error) Enclave: not running",
    "$(circle-slash) Enclave: stopped",
    "$(error) Enclave: error",
    "$(warning) Enclave: degraded",
)

T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, every: float = 0.5) -> T:
    """Poll ``probe`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = probe()
            if value:
                return value
        except AssertionError:
            raise
        except Exception as exc:  # a page mid-reload, a detached frame
            last_error = exc
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout:.0f} s waiting for {what} ({last_error!r})"
            )
        time.sleep(every)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def load_setup() -> dict[str, str]:
    env_file = CACHE / "env.json"
    if not env_file.is_file():
        pytest.fail(
            f"VS Code end-to-end setup missing ({env_file} not found): {SETUP_HINT}", pytrace=False
        )
    setup: dict[str, str] = json.loads(env_file.read_text())
    for key in ("node_bin", "code_server", "chromium"):
        if not setup.get(key) or not Path(setup[key]).exists():
            pytest.fail(
                f"VS Code end-to-end setup incomplete ({key}: {setup.get(key)!r}): {SETUP_HINT}",
                pytrace=False,
            )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.fail(
            f"Playwright for Python is not installed in this environment: {SETUP_HINT}",
            pytrace=False,
        )
    return setup


def build_vsix() -> Path:
    """``npm ci && npm run package`` unless the .vsix is newer than every input of the build."""
    inputs = [
        EXTENSION_DIR / n
        for n in ("package.json", "package-lock.json", "esbuild.mjs", "tsconfig.json", "README.md")
    ]
    inputs += [p for p in (EXTENSION_DIR / "src").rglob("*") if p.is_file()]
    newest_input = max(p.stat().st_mtime for p in inputs if p.exists())
    if VSIX.is_file() and VSIX.stat().st_mtime > newest_input:
        return VSIX
    lock = EXTENSION_DIR / "package-lock.json"
    installed = EXTENSION_DIR / "node_modules" / ".package-lock.json"
    if not installed.is_file() or installed.stat().st_mtime < lock.stat().st_mtime:
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"], cwd=EXTENSION_DIR, check=True, timeout=600
        )
    subprocess.run(["npm", "run", "package"], cwd=EXTENSION_DIR, check=True, timeout=600)
    assert VSIX.is_file(), f"npm run package did not make {VSIX}"
    return VSIX


def clean_env(setup: dict[str, str], home: Path) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("ENCLAVE_", "OLLAMA_", "VSCODE_"))
    }
    env["PATH"] = f"{setup['node_bin']}{os.pathsep}{env.get('PATH', '')}"
    env["HOME"] = str(home)
    env["XDG_CONFIG_HOME"] = str(home / ".config")
    env["XDG_DATA_HOME"] = str(home / ".local" / "share")
    env["XDG_CACHE_HOME"] = str(home / ".cache")
    return env


@contextlib.contextmanager
def process(args: list[str], log: Path, **kwargs: Any) -> Iterator[subprocess.Popen[bytes]]:
    """A process in its own process group, its output in ``log``; killed (group and all) at the end."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **kwargs
        )
        try:
            yield proc
        finally:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, sig)
                try:
                    proc.wait(timeout=10)
                    break
                except subprocess.TimeoutExpired:
                    continue


def read_url_from(log: Path, proc: subprocess.Popen[bytes], timeout: float) -> str:
    def probe() -> str | None:
        assert proc.poll() is None, f"the test Ollama server exited: {log.read_text()}"
        match = re.search(r"https?://[\d.]+:\d+", log.read_text())
        return match.group(0) if match else None

    return wait_for("the test Ollama server's URL", probe, timeout, every=0.2)


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def extension_logs(user_data: Path) -> str:
    parts = []
    for path in sorted((user_data / "logs").glob(f"*/**/exthost*/{EXTENSION_ID}/*")):
        if path.is_file():
            parts.append(f"----- {path}\n{path.read_text(errors='replace')}")
    for path in sorted((user_data / "logs").glob("*/**/exthost*/exthost.log")):
        parts.append(f"----- {path}\n{path.read_text(errors='replace')[-6000:]}")
    return "\n".join(parts) or f"(no extension log under {user_data / 'logs'})"


def settings(ollama_url: str) -> dict[str, Any]:
    return {
        # Enclave, aimed at the test model server (as tests/server/lsp/conftest.py options_for).
        "enclave.server.path": str(ROOT / ".venv" / "bin" / "enclave"),
        "enclave.ollama.host": ollama_url,
        "enclave.ollama.chatModel": "deepseek-r1",
        "enclave.ollama.completionModel": "qwen2.5-coder:1.5b",
        "enclave.ollama.connectTimeout": 2,
        "enclave.ollama.firstTokenTimeout": 60,
        "enclave.ollama.totalTimeout": 120,
        "enclave.completion.maxTokens": 24,
        "enclave.completion.numCtx": 1024,
        "enclave.completion.contextTokens": 300,
        "enclave.completion.debounceMs": 60,
        "enclave.chat.maxTokens": 48,
        "enclave.chat.numCtx": 2048,
        "enclave.chat.contextTokens": 600,
        "enclave.embedding.provider": "ollama",
        "enclave.embedding.model": "nomic-embed-text",
        "enclave.trace.server": "messages",
        # A quiet VS Code: no trust prompt, no welcome pages, nothing else offering completions.
        "security.workspace.trust.enabled": False,
        "workbench.startupEditor": "none",
        "workbench.secondarySideBar.defaultVisibility": "hidden",
        "workbench.tips.enabled": False,
        "workbench.welcomePage.walkthroughs.openOnInstall": False,
        "workbench.enableExperiments": False,
        "telemetry.telemetryLevel": "off",
        "update.mode": "none",
        "extensions.autoUpdate": False,
        "extensions.autoCheckUpdates": False,
        "extensions.ignoreRecommendations": True,
        "chat.disableAIFeatures": True,
        "git.openRepositoryInParentFolders": "never",
        "editor.inlineSuggest.enabled": True,
        "editor.quickSuggestions": {"other": False, "comments": False, "strings": False},
        "editor.suggestOnTriggerCharacters": False,
        "editor.wordBasedSuggestions": "off",
        "editor.minimap.enabled": False,
        "files.autoSave": "off",
    }


class Step:
    """Screenshots named after the test's steps, kept as artifacts."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.n = 0

    def shot(self, name: str) -> Path:
        self.n += 1
        path = ARTIFACTS / f"{self.n:02d}-{name}.png"
        with contextlib.suppress(Exception):
            self.page.screenshot(path=str(path))
        return path


def status_text(page: Any) -> str | None:
    """The status bar item's text as its source writes it: ``$(check) Enclave`` (icons as $(name))."""
    items = page.locator(f'.statusbar-item[id="{STATUS_ITEM_ID}"]')
    if items.count() == 0:
        return None
    item = items.first
    icons = item.locator(".codicon")
    names = []
    for i in range(icons.count()):
        classes = str(icons.nth(i).get_attribute("class") or "").split()
        names += [f"$({c.removeprefix('codicon-')})" for c in classes if c.startswith("codicon-")]
    text = " ".join(str(item.inner_text()).split())
    return " ".join([*names, text])


def ghost_text(page: Any) -> str:
    parts = page.locator(".monaco-editor .ghost-text-decoration, .monaco-editor .ghost-text")
    texts = (str(parts.nth(i).inner_text()) for i in range(parts.count()))
    return "\n".join(texts).replace("\u00a0", " ")


def answer_frame(page: Any) -> Any | None:
    """The answer panel's webview (an iframe inside an iframe): the frame holding #answer."""
    for frame in page.frames:
        with contextlib.suppress(Exception):
            if frame.locator("#answer").count() > 0:
                return frame
    return None


@pytest.mark.timeout(1200)
def test_extension_in_code_server(tmp_path: Path) -> None:
    setup = load_setup()
    from playwright.sync_api import sync_playwright

    started = time.monotonic()
    vsix = build_vsix()
    print(f"vsix ready in {time.monotonic() - started:.0f} s: {vsix}")

    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    home = tmp_path / "home"
    home.mkdir()
    user_data = tmp_path / "user-data"
    extensions = user_data / "extensions"
    env = clean_env(setup, home)
    code_server = [
        setup["code_server"],
        "--user-data-dir",
        str(user_data),
        "--extensions-dir",
        str(extensions),
    ]

    installed = subprocess.run(
        [*code_server, "--install-extension", str(vsix)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert installed.returncode == 0, (
        f"--install-extension failed:\n{installed.stdout}\n{installed.stderr}"
    )
    assert list(extensions.glob(f"{EXTENSION_ID}-*")), (
        f"not installed: {installed.stdout}{installed.stderr}"
    )

    repo = make_repo(tmp_path / "shapes", FILES)

    ok = False
    with contextlib.ExitStack() as stack:
        ollama_log = ARTIFACTS / "ollama-server.log"
        ollama = stack.enter_context(
            process(
                [sys.executable, "-m", "tests.support.ollama_server", "--port", "0"],
                ollama_log,
                cwd=ROOT,
                env={**env, "PYTHONUNBUFFERED": "1"},
            )
        )
        ollama_url = read_url_from(ollama_log, ollama, timeout=120)
        # The remote ("Machine") settings: code-server's browser workbench replaces the extension
        # host's user settings with its own (empty) ones right after start, so the extension would
        # see D/User/settings.json only at activation. The workbench's own settings stay in User.
        for scope in ("User", "Machine"):
            (user_data / scope).mkdir(parents=True, exist_ok=True)
            (user_data / scope / "settings.json").write_text(
                json.dumps(settings(ollama_url), indent=2)
            )

        port = free_port()
        cs_log = ARTIFACTS / "code-server.log"
        cs = stack.enter_context(
            process(
                [
                    *code_server,
                    "--auth",
                    "none",
                    "--bind-addr",
                    f"127.0.0.1:{port}",
                    "--disable-telemetry",
                    "--disable-update-check",
                    "--disable-workspace-trust",
                    str(repo),
                ],
                cs_log,
                cwd=tmp_path,
                env=env,
            )
        )

        def cs_up() -> bool:
            assert cs.poll() is None, f"code-server exited:\n{cs_log.read_text()}"
            return http_ok(f"http://127.0.0.1:{port}/healthz")

        wait_for("code-server to answer /healthz", cs_up, timeout=90)

        pw = stack.enter_context(sync_playwright())
        browser = pw.chromium.launch(
            executable_path=setup["chromium"],
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        stack.callback(browser.close)
        page = browser.new_page(viewport={"width": 1400, "height": 850})
        page.set_default_timeout(30_000)
        step = Step(page)
        try:
            # 1. The workbench opens the repository; Enclave's status bar item reaches "ready".
            page.goto(f"http://127.0.0.1:{port}/?folder={repo}", timeout=60_000)
            page.locator(".monaco-workbench").wait_for(timeout=90_000)
            step.shot("workbench")

            def ready() -> str | None:
                text = status_text(page)
                assert text not in FAILED_TEXTS, f"Enclave's status bar item says {text!r}"
                return text if text in READY_TEXTS else None

            text = wait_for("Enclave's status bar item to say ready", ready, timeout=240)
            print(f"status bar: {text!r} after {time.monotonic() - started:.0f} s")
            step.shot("status-ready")

            # 2. Typing in a Python file shows ghost text.
            page.keyboard.press("Control+P")
            page.locator(".quick-input-widget input").wait_for()
            page.keyboard.type("report.py", delay=20)
            page.locator(".quick-input-list .monaco-list-row").first.wait_for()
            page.keyboard.press("Enter")
            editor = page.locator(
                '.editor-group-container .monaco-editor[data-uri$="app/report.py"]'
            )
            editor.wait_for()
            editor.locator(".view-lines").click()
            page.keyboard.press("Control+End")
            page.keyboard.press("Enter")
            page.keyboard.press("Enter")
            page.keyboard.type(
                "def rectangle_area(width: float, height: float) -> float:", delay=15
            )
            page.keyboard.press("Enter")
            page.keyboard.type("return ", delay=15)
            step.shot("typed")

            seen: list[str] = []

            def ghost() -> str | None:
                """The ghost text once it is the same twice in a row (it may still be streaming)."""
                seen.append(ghost_text(page))
                stable = len(seen) > 1 and seen[-1] == seen[-2]
                return seen[-1] if stable and seen[-1].strip() else None

            suggestion = None
            for attempt in range(4):
                with contextlib.suppress(AssertionError):
                    suggestion = wait_for("ghost text", ghost, timeout=20 if attempt == 0 else 45)
                    break
                page.keyboard.press("Alt+Backslash")  # editor.action.inlineSuggest.trigger
            assert suggestion, "no ghost text appeared after typing and Alt+\\"
            print(f"ghost text: {suggestion!r}")
            step.shot("ghost-text")

            # 3. Tab accepts it: the suggestion's text lands in the file. (After accepting, VS Code
            # asks again and may show a new suggestion: the check is the file, not the ghost text.)
            page.keyboard.press("Tab")
            page.keyboard.press("Control+S")
            first_line = " ".join(suggestion.splitlines()[0].split())
            report = repo / "app" / "report.py"
            expected = f"return {first_line}"

            def accepted() -> str | None:
                lines = report.read_text().splitlines()
                line = " ".join(lines[10].split()) if len(lines) > 10 else ""
                return line if line.startswith(expected) else None

            line = wait_for(f"{expected!r} on line 11 of the saved {report.name}", accepted, 15)
            print(f"accepted: {line!r}")
            step.shot("accepted")

            # 4. Enclave: Explain Selection on describe() shows an answer with citations.
            page.keyboard.press("Escape")
            page.keyboard.press("Control+Home")
            for _ in range(3):
                page.keyboard.press("ArrowDown")
            for _ in range(4):
                page.keyboard.press("Shift+ArrowDown")
            page.keyboard.press("Shift+End")
            page.keyboard.press("F1")
            page.locator(".quick-input-widget input").wait_for()
            page.keyboard.type("Enclave: Explain Selection", delay=20)
            row = page.locator(
                ".quick-input-list .monaco-list-row", has_text="Explain Selection"
            ).first
            row.wait_for()
            page.keyboard.press("Enter")

            def answered() -> Any | None:
                frame = answer_frame(page)
                if frame is None:
                    return None
                error = frame.locator("#answer .error")
                assert error.count() == 0, f"the answer failed: {error.first.inner_text()}"
                done = frame.locator("#answer p.model").count() > 0
                return (
                    frame
                    if done and frame.locator("#answer section.citations li").count() > 0
                    else None
                )

            frame = wait_for(
                "the explanation with citations in the answer panel", answered, timeout=300
            )
            title = frame.locator("#answer h2").inner_text()
            sources = frame.locator("#answer section.citations li").all_inner_texts()
            body = frame.locator("#answer .markdown").all_inner_texts()
            print(f"answer {title!r}: {body!r}; sources {sources!r}")
            assert title.startswith("Explain app/report.py:4"), title
            assert any("app/report.py" in s for s in sources), sources
            assert body and "".join(body).strip(), "the answer panel shows no answer text"
            final = step.shot("explain-answer")
            shutil.copyfile(final, ARTIFACTS / "vscode.png")
            ok = True
        finally:
            if not ok:
                step.shot("failure")
                print("===== Enclave extension log (code-server) =====")
                print(extension_logs(user_data))
                print("===== code-server output (tail) =====")
                print((ARTIFACTS / "code-server.log").read_text(errors="replace")[-4000:])
            with contextlib.suppress(Exception):
                shutil.copytree(user_data / "logs", ARTIFACTS / "logs", dirs_exist_ok=True)
