"""Completion context through packages, on repositories indexed whole (tests included): imports
resolve to the package's own binding, names reached through a package follow its re-exports,
and what the cursor's line calls is fitted before any signatures."""

from __future__ import annotations

from pathlib import Path

import pytest

from enclave.config import CompletionConfig, Config, EmbeddingConfig
from enclave.indexer.api import open_index
from enclave.server.completion.pipeline import prepare_completion
from enclave.server.completion.sources.bindings import (
    Binding,
    Repository,
    bindings,
    exported_names,
)
from enclave.server.types import ContextPiece
from tests.support.repos import make_repo


def _pieces_at_end(
    tmp_path: Path, files: dict[str, str], path: str, config: Config | None = None
) -> list[ContextPiece]:
    """The pieces a completion at the end of ``path``'s last line sends, the repository
    indexed whole by the real indexer."""
    config = config or Config(embedding=EmbeddingConfig(provider="none"))
    index = open_index(make_repo(tmp_path / "repo", files), config)
    index.update()
    lines = files[path].splitlines()
    return prepare_completion(
        index, path, files[path], len(lines) - 1, len(lines[-1]), config
    ).pieces


def _from_code(pieces: list[ContextPiece]) -> list[tuple[str, str]]:
    """(path, reason) of the definitions and signatures sent (not similar code)."""
    return [
        (p.path, p.reason)
        for p in pieces
        if p.reason.startswith(("definition of", "signatures of"))
    ]


FIELD = "def field(name, default=None):\n    return (name, default)\n"
TEST_FIELD = "def test_field_default():\n    assert True\n"


@pytest.mark.parametrize(
    "entry",
    [
        "from .fields import field\n",
        "from .fields import *\n",
        "from . import fields\nfrom .fields import *\n\n__all__ = ['field']\n",
    ],
    ids=["named", "star", "all"],
)
def test_a_name_a_package_re_exports_is_not_a_test_module_of_that_name(
    tmp_path: Path, entry: str
) -> None:
    """`from pkg.models import field`, field a function pkg/models/__init__.py re-exports (by
    name, by `from .fields import *`, listed in `__all__`): its definition is sent, never the
    signatures of the test module tests/models/field.py whose path ends as `models.field`."""
    files = {
        "pkg/__init__.py": "",
        "pkg/models/__init__.py": entry,
        "pkg/models/fields.py": FIELD,
        "tests/models/field.py": TEST_FIELD,
        "pkg/app.py": "from pkg.models import field\n\n\ndef make():\n    return field(",
    }
    sent = _from_code(_pieces_at_end(tmp_path, files, "pkg/app.py"))
    assert sent == [
        ("pkg/models/fields.py", "definition of `field` (imported by this file from pkg.models)")
    ]


def test_a_name_the_package_binds_wins_over_its_submodule_of_that_name(tmp_path: Path) -> None:
    """`from pkg.models import field` where pkg/models/field.py is a submodule that
    pkg/models/__init__.py imports `field` from (`from .field import field`): at run time the
    name is the function, so the function's definition is sent."""
    files = {
        "pkg/__init__.py": "",
        "pkg/models/__init__.py": "from .field import field\n",
        "pkg/models/field.py": FIELD,
        "pkg/app.py": "from pkg.models import field\n\n\ndef make():\n    return field(",
    }
    sent = _from_code(_pieces_at_end(tmp_path, files, "pkg/app.py"))
    assert sent == [
        ("pkg/models/field.py", "definition of `field` (imported by this file from pkg.models)")
    ]


def test_a_module_matched_by_its_end_is_never_a_test_module_from_source_code() -> None:
    """The suffix match meant for src layouts and installed names: source code gets the
    package's module (not the shorter tests/util.py); a test file may still reach a test
    helper that way; a submodule is looked for beside the package's __init__.py only."""
    repo = Repository(
        ["src/util/__init__.py", "src/util/_impl.py", "tests/util.py", "tests/models/field.py",
         "src/pkg/__init__.py", "src/pkg/models.py"]
    )  # fmt: skip
    text = "import util\nfrom pkg.models import field\n"
    assert bindings("src/app.py", text, "python", repo) == {
        "util": Binding("util", ("src/util/__init__.py",), "", "util"),
        "field": Binding("field", ("src/pkg/models.py",), "field", "pkg.models"),
    }
    assert repo.python_module("util", "tests/test_app.py") == "tests/util.py"
    assert repo.python_module("models.field", "src/app.py") is None


PACKAGES = {
    "util/__init__.py": "from ._impl import helper\nfrom ._impl import make_thing as thing\n",
    "util/_impl.py": ("def helper(x):\n    return x\n\n\ndef make_thing(kind):\n    return kind\n"),
    "tests/util.py": "def test_helper():\n    pass\n",
    "pkg/__init__.py": "from . import sub\n",
    "pkg/events/__init__.py": "from ._api import *\n",
    "pkg/events/_api.py": (
        "from ._more import *\n\n__all__ = ['listen', 'remove']\n\n_registry = {}\n\n\n"
        "def listen(target, name, fn):\n    return fn\n\n\n"
        "def remove(target, name, fn):\n    return None\n\n\n"
        "def _clear():\n    _registry.clear()\n"
    ),
    "pkg/events/_more.py": "def shout(message):\n    return message.upper()\n",
    "pkg/sub/__init__.py": "from ._x import name\n",
    "pkg/sub/_x.py": "def name(value):\n    return value\n",
    "tests/sub/_x.py": "def name(value):\n    return None\n",
}


@pytest.mark.parametrize(
    ("call", "path", "reason"),
    [
        ("util.helper(1)", "util/_impl.py", "`util.helper` (module `util` imported by this file from util)"),
        ("util.thing(1)", "util/_impl.py", "`util.thing` (module `util` imported by this file from util)"),
        ("events.listen(1, 2, 3)", "pkg/events/_api.py", "`events.listen` (module `events` imported by this file from pkg.events)"),
        ("pkg.sub.name(2)", "pkg/sub/_x.py", "`pkg.sub.name` (module `pkg` imported by this file from pkg)"),
    ],
    ids=["named", "renamed", "star", "subpackage"],
)  # fmt: skip
def test_names_reached_through_a_package_follow_its_re_exports(
    tmp_path: Path, call: str, path: str, reason: str
) -> None:
    """`util.helper(...)`, `events.listen(...)`, `pkg.sub.name(...)` where the package's
    __init__.py takes the name from a private submodule (by name, renamed, by `import *`):
    the definition is sent first, from the package's own file."""
    files = {
        **PACKAGES,
        "app.py": f"import util\nfrom pkg import events\nimport pkg\n\n\ndef go():\n    {call}",
    }
    pieces = _pieces_at_end(tmp_path, files, "app.py")
    first = pieces[0]
    assert (first.path, first.reason) == (path, f"definition of {reason}")
    assert not any(where.startswith("tests/") for where, _ in _from_code(pieces)), pieces


def test_a_package_s_import_star_offers_what_its_all_lists(tmp_path: Path) -> None:
    """The signatures of a package whose __init__.py is `from ._api import *` are the names
    `_api.__all__` lists (`remove` beside the `listen` being called), not its private ones nor
    what `_api`'s own `from ._more import *` takes and its `__all__` leaves out."""
    files = {**PACKAGES, "app.py": "from pkg import events\n\n\ndef go():\n    events.listen("}
    sent = _from_code(_pieces_at_end(tmp_path, files, "app.py"))
    outline = [(path, why) for path, why in sent if why.startswith("signatures of")]
    assert outline == [
        ("pkg/events/_api.py", "signatures of `remove` (imported by this file from pkg.events)")
    ]


def _worker() -> dict[str, str]:
    """A class whose method's last line calls a method far above it (out of the prefix),
    in a file that imports a module of many functions and a few long ones."""
    names = ["alpha", "beta", "gamma", "delta"]
    body = "".join(f"    step_{i} = value * {i} + offset\n" for i in range(6))
    files = {f"lib/{n}.py": f"def {n}(value, offset):\n{body}    return value\n" for n in names}
    files["lib/ops.py"] = "".join(
        f"def operation_{i}(first_value, second_value, third_value, options=None):\n"
        "    return first_value\n\n\n"
        for i in range(40)
    )
    files["app/worker.py"] = (
        "from lib import ops\n"
        + "".join(f"from lib.{n} import {n}\n" for n in names)
        + "\n\nclass Worker:\n"
        + "    def rescale(self, value, scale):\n        total = value * scale\n        return total\n\n"
        + "".join(f"    def other_{i}(self):\n        return {i}\n\n" for i in range(40))
        + "    def run(self, items):\n"
        + "".join(f"        {n}(items, 1)\n" for n in names)
        + "        ops.operation_1(items, 2, 3)\n"
        + "        return self.rescale("
    )
    return files


def test_what_the_cursor_s_line_calls_is_fitted_before_any_signatures(tmp_path: Path) -> None:
    """The method the cursor's line calls (`self.rescale(`, known only as this file's class's)
    is sent whole and first, though the imported definitions used above it are more certain
    and the imported module's signatures would fill the budget."""
    config = Config(
        embedding=EmbeddingConfig(provider="none"),
        completion=CompletionConfig(context_tokens=400, prefix_tokens=300),
    )
    pieces = _pieces_at_end(tmp_path, _worker(), "app/worker.py", config)
    sent = _from_code(pieces)
    assert sent[0] == ("app/worker.py", "definition of `rescale` (a method of this file's class)")
    assert pieces[0].text.startswith("    def rescale(self, value, scale):\n")
    assert pieces[0].text.rstrip().endswith("return total")
    assert any(why.startswith("signatures of") for _, why in sent[1:])  # (the budget was tight)


def test_what_the_file_imports_and_does_not_use_yet_comes_first(tmp_path: Path) -> None:
    """An import written for a use not written yet is what the next lines are about to call:
    its signatures come before those of the names the file used last, and fit in a budget that
    holds only some of them."""
    modules = {
        name: "".join(
            f"def {name}_{i}(value: int, scale: float = 1.0, label: str = '') -> int:\n"
            f"    return value\n\n\n"
            for i in range(3)
        )
        for name in ("alpha", "beta", "gamma")
    }
    main = (
        "from app.alpha import alpha_0\n"
        "from app.beta import beta_0\n"
        "from app.gamma import gamma_2\n\n\n"
        "def setup():\n"
        + "".join(f"    alpha_0({i})\n    beta_0({i})\n" for i in range(6))
        + "\n\ndef run(items):\n"  # far enough below for the names above not to be near it
        + "".join(f"    total_{i} = len(items) + {i}\n" for i in range(50))
        + "    "
    )
    files = {f"app/{name}.py": text for name, text in modules.items()} | {
        "app/__init__.py": "",
        "app/main.py": main,
    }
    config = Config(
        embedding=EmbeddingConfig(provider="none"),
        completion=CompletionConfig(context_tokens=120, prefix_tokens=300),
    )
    sent = _from_code(_pieces_at_end(tmp_path, files, "app/main.py", config))
    signatures = [path for path, why in sent if why.startswith("signatures of")]
    assert signatures[:1] == ["app/gamma.py"], sent


# A TypeScript package whose modules import everything from one barrel file (`src/internal.ts`:
# `export * from "./core/index"`, itself a barrel that re-exports the barrel again: a cycle).
BARREL = {
    "src/core/atom.ts": (
        "export class Atom {\n  constructor(public name: string) {}\n}\n\n"
        "export function createAtom(name: string, onBecomeObserved?: () => void): Atom {\n"
        "  return new Atom(name)\n}\n"
    ),
    "src/core/index.ts": 'export * from "./atom"\nexport * from "../internal"\n',
    "src/utils/utils.ts": (
        "let lastId = 0\n\nexport function getNextId(): number {\n  return ++lastId\n}\n\n"
        "export const defineProperty = Object.defineProperty\n"
    ),
    "src/internal.ts": 'export * from "./utils/utils"\nexport * from "./core/index"\n',
    "src/api/autorun.ts": (
        'import { createAtom, getNextId } from "../internal"\n\n'
        "export function autorun(view: () => void) {\n"
        "  const id = getNextId()\n"
        "  const atom = createAtom("
    ),
}


def test_names_a_typescript_barrel_re_exports_resolve_to_their_definitions(
    tmp_path: Path,
) -> None:
    """`import { createAtom, getNextId } from "../internal"`, the barrel taking them by `export *
    from` (through another barrel, in a cycle): the definition the cursor's line calls is sent
    first, from the file that defines it, then the other imported name's, from its own."""
    pieces = _pieces_at_end(tmp_path, BARREL, "src/api/autorun.ts")
    sent = _from_code(pieces)
    why = "imported by this file from ../internal"
    assert sent[:2] == [
        ("src/core/atom.ts", f"definition of `createAtom` ({why})"),
        ("src/utils/utils.ts", f"definition of `getNextId` ({why})"),
    ], sent
    assert pieces[0].text.startswith("export function createAtom(name: string")


def test_a_name_a_typescript_module_exports_as_a_value_is_sent_as_its_line(
    tmp_path: Path,
) -> None:
    """`export const defineProperty = Object.defineProperty` is no function to the index, yet
    importers call it: the line that binds it is sent as its definition."""
    files = {
        **BARREL,
        "src/api/extend.ts": (
            'import { defineProperty } from "../internal"\n\n'
            "export function extend(target: object, key: string) {\n  defineProperty("
        ),
    }
    pieces = _pieces_at_end(tmp_path, files, "src/api/extend.ts")
    first = pieces[0]
    assert (first.path, first.reason, first.text) == (
        "src/utils/utils.ts",
        "definition of `defineProperty` (imported by this file from ../internal)",
        "export const defineProperty = Object.defineProperty\n",
    ), pieces


def test_what_a_typescript_module_exports_by_name() -> None:
    """`export * from` takes a module's named exports (declared, listed, renamed, re-exported),
    never its default export nor what it only imports."""
    text = (
        'import { helper } from "./helper"\n'
        "export function first() {}\nexport declare abstract class Second {}\n"
        "export const third = 3\nexport interface Fourth {}\nexport type Fifth = string\n"
        "export enum Sixth {}\nexport default function main() {}\nfunction local() {}\n"
        'export { local as seventh, helper as default }\nexport { eighth } from "./eighth"\n'
    )
    names = exported_names(text, "src/mod.ts", Repository(["src/mod.ts"]))
    assert names == {
        "first", "Second", "third", "Fourth", "Fifth", "Sixth", "seventh", "eighth"
    }  # fmt: skip
