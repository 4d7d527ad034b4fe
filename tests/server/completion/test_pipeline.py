"""Completion context against a real index: what is chosen, why, and what is left out."""

from __future__ import annotations

from pathlib import Path

from enclave.config import Config, EmbeddingConfig
from enclave.indexer.api import open_index
from enclave.server.completion.pipeline import prepare_completion
from enclave.server.completion.sources.imports import popular_members
from enclave.server.types import ContextPiece
from tests.support.repos import make_repo
from tests.support.shapes import FILES, REPORT


def test_definitions_come_from_imports_and_the_same_language(tmp_path: Path) -> None:
    root = make_repo(
        tmp_path / "repo",
        {
            "shapes/geometry.py": "def perimeter(width, height):\n    return 2 * (width + height)\n",
            "web/ui.ts": "export function perimeter(el: Element): number {\n  return 0;\n}\n",
            "app.py": "from shapes.geometry import perimeter\n\n\ndef fence(w, h):\n    return \n",
        },
    )
    config = Config(embedding=EmbeddingConfig(provider="none"))
    index = open_index(root, config)
    index.update()
    text = (root / "app.py").read_text().replace("return \n", "return perimeter(w, h) + \n")
    pieces = prepare_completion(
        index, "app.py", text, 4, len("    return perimeter(w, h) + "), config
    ).pieces
    definitions = [p for p in pieces if p.reason.startswith("definition")]
    assert [(p.path, p.start_line, p.end_line) for p in definitions] == [
        ("shapes/geometry.py", 1, 2)
    ]
    assert "imported by this file from shapes.geometry" in definitions[0].reason
    assert definitions[0].text.startswith("def perimeter(width, height):")
    assert all(p.path != "web/ui.ts" for p in pieces if p.reason.startswith("definition"))


PACKAGE = {
    "shop/__init__.py": "from shop.pricing import total\n",
    "shop/pricing.py": (
        "from __future__ import annotations\n\n"
        "def total(items):\n    return sum(i.price for i in items)\n\n\n"
        "def discount(amount, rate):\n    return amount * (1 - rate)\n\n\n"
        "def _rounding(value):\n    return round(value, 2)\n"
    ),
    "shop/store.py": (
        "class Store:\n    def get(self, key):\n        return key\n\n\n"
        "class Cache:\n    def get(self, key):\n        return None\n"
    ),
    "shop/checkout.py": (
        "from __future__ import annotations\n\n"
        "from . import pricing\n"
        "from .store import Store as Shelf\n"
        "from shop import total\n\n\n"
        "def pay(items, rate, registry):\n"
        "    shelf = Shelf()\n"
        "    found = registry.get(items)\n"
        "    amount = total(found)\n"
        "    \n"
    ),
}


def _context_at_end(tmp_path: Path, files: dict[str, str], path: str) -> list[ContextPiece]:
    root = make_repo(tmp_path / "repo", files)
    config = Config(embedding=EmbeddingConfig(provider="none"))
    index = open_index(root, config)
    index.update()
    text = files[path]
    line = text.count("\n") - 1
    return prepare_completion(index, path, text, line, 4, config).pieces


def test_imports_are_resolved_through_what_binds_them(tmp_path: Path) -> None:
    """The names near the cursor resolve through the import that binds them (an alias, a
    relative module, a package's re-export), the report names that import (not the file's
    first import), a method of an object of unknown class brings no same-named methods, and
    the members of an imported module not used yet are there as signatures: the next line may
    call `pricing.discount`."""
    pieces = _context_at_end(tmp_path, PACKAGE, "shop/checkout.py")
    by_reason = {p.reason: (p.path, p.start_line, p.end_line) for p in pieces}
    assert by_reason["definition of `Store as Shelf` (imported by this file from .store)"] == (
        "shop/store.py", 1, 3,
    )  # fmt: skip
    # `from shop import total`: shop/__init__.py only re-exports it from shop/pricing.py
    assert by_reason["definition of `total` (imported by this file from shop)"] == (
        "shop/pricing.py", 3, 4,
    )  # fmt: skip
    assert not any("__future__" in p.reason for p in pieces)
    # `registry.get`: the class of `registry` is unknown, so no `get` of the repository is sent
    assert not any(p.reason.startswith("definition of `get`") for p in pieces)
    outline = [p for p in pieces if p.reason.startswith("signatures of")]
    assert [(p.path, p.text) for p in outline] == [
        ("shop/pricing.py", "def discount(amount, rate):\n")
    ], outline
    assert "(imported by this file from .pricing)" in outline[0].reason


MAIL = {
    "mail/__init__.py": "from mail.parse import parse_address\n",
    "mail/parse.py": (
        "def parse_address(text):\n    return text\n\n\n"
        "def quote(text):\n    return '\"' + text + '\"'\n"
    ),
    "mail/charset.py": "class Charset:\n    name = 'utf-8'\n",
    "mail/utils.py": (
        "from mail.parse import quote\n"
        "from mail.charset import Charset\n\n\n"
        "def format_pair(pair):\n    return Charset().name, quote(pair)\n"
    ),
    "app.py": (
        "import mail\n"
        "from mail import utils\n\n\n"
        "def send(message):\n"
        "    text = utils.quote(message)\n"
        "    \n"
    ),
}


def test_a_module_s_names_taken_from_other_files_are_its_own_to_its_users(
    tmp_path: Path,
) -> None:
    """`utils.quote` where mail/utils.py only takes `quote` from mail/parse.py resolves to
    parse.py's definition; a package's names taken from its files (`mail.parse_address`) are
    among its signatures; a name a module takes for its own use (utils' `Charset`) is not."""
    pieces = _context_at_end(tmp_path, MAIL, "app.py")
    quote = [p for p in pieces if p.reason.startswith("definition of `utils.quote`")]
    assert [(p.path, p.start_line, p.end_line) for p in quote] == [("mail/parse.py", 5, 6)]
    outline = [p for p in pieces if "imported by this file from mail)" in p.reason]
    assert [(p.path, p.text) for p in outline] == [
        ("mail/parse.py", "def parse_address(text):\n")
    ], pieces
    assert not any("class Charset" in p.text for p in pieces), pieces


def test_a_dotted_import_s_members_resolve_and_same_named_functions_of_two_modules_show(
    tmp_path: Path,
) -> None:
    """`import mime.b64` then `mime.b64.header_length(...)` near the cursor brings b64's
    definition; qp's `header_length`, declared the same way in another module, is still among
    qp's signatures (only a Go package's build variants are one declaration)."""
    files = {
        "mime/__init__.py": "",
        "mime/b64.py": "def header_length(data):\n    return len(data) * 4 // 3\n",
        "mime/qp.py": "def header_length(data):\n    return len(data) * 3\n",
        "app.py": (
            "import mime.b64\nimport mime.qp\n\n\ndef sizes(data):\n"
            "    short = mime.b64.header_length(data)\n    \n"
        ),
    }
    pieces = _context_at_end(tmp_path, files, "app.py")
    b64 = [p for p in pieces if p.path == "mime/b64.py"]
    assert [p.reason for p in b64] == [
        "definition of `mime.b64.header_length` (module `mime.b64` imported by this file from"
        " mime.b64)"
    ], pieces
    qp = [p for p in pieces if p.path == "mime/qp.py"]
    assert [p.text for p in qp] == ["def header_length(data):\n"], pieces


def test_a_go_package_and_typescript_imports_are_resolved(tmp_path: Path) -> None:
    files = {
        "go.mod": "module example.com/app\n",
        "geom/area.go": "package geom\n\nfunc Area(w, h int) int {\n\treturn w * h\n}\n",
        "geom/scale.go": "package geom\n\nfunc Scale(v, by int) int {\n\treturn v * by\n}\n",
        "main.go": (
            'package main\n\nimport (\n\t"fmt"\n\t"example.com/app/geom"\n)\n\n'
            "func main() {\n\tfmt.Println(geom.Area(2, 3))\n\t\n}\n"
        ),
        "src/util/index.ts": "export { clamp } from './clamp';\n",
        "src/util/clamp.ts": (
            "export function clamp(v: number, lo: number, hi: number): number {\n"
            "  return Math.min(hi, Math.max(lo, v));\n}\n"
        ),
        "src/app.ts": "import { clamp as limit } from './util';\n\nconst x = limit(5, 0, 1);\n\n",
    }
    pieces = _context_at_end(tmp_path, files, "main.go")
    found = {(p.path, p.start_line) for p in pieces}
    assert ("geom/area.go", 3) in found  # geom.Area near the cursor: its definition
    assert ("geom/scale.go", 3) in found  # the package's other function, as a signature
    ts = _context_at_end(tmp_path / "ts", files, "src/app.ts")
    assert [(p.path, p.reason) for p in ts if p.path == "src/util/clamp.ts"] == [
        ("src/util/clamp.ts", "definition of `clamp as limit` (imported by this file from ./util)")
    ]


def _long_function(name: str) -> str:
    body = "".join(f"    step_{i} = value * {i} + offset\n" for i in range(24))
    return f"def {name}(value, offset):\n{body}    return value\n"


def test_definitions_past_their_share_of_the_budget_come_as_signatures(tmp_path: Path) -> None:
    """Whole definitions take at most a share (35 %) of the context budget; the names near the
    cursor past that still show how to call them (their signature line), and the budget left
    goes to the signatures of what else the file imports: the next line is as likely to call
    those."""
    names = ["alpha", "beta", "gamma", "delta", "epsilon"]
    files = {f"lib/{name}.py": _long_function(name) for name in names}
    files["lib/extra.py"] = "def unused_yet(a, b):\n    return a\n"
    files["app.py"] = (
        "".join(f"from lib.{name} import {name}\n" for name in names)
        + "from lib.extra import unused_yet\n\n\ndef run(v):\n"
        + "".join(f"    {name}(v, 1)\n" for name in names)
        + "    \n"
    )
    pieces = _context_at_end(tmp_path, files, "app.py")
    whole = [p for p in pieces if p.reason.startswith("definition of")]
    short = {p.path: p for p in pieces if p.reason.startswith("signatures of")}
    assert whole and len(whole) < len(names)  # not every definition fits whole
    for name in names:  # yet every name near the cursor shows at least its signature
        path = f"lib/{name}.py"
        if any(p.path == path for p in whole):
            continue
        assert short[path].text == f"def {name}(value, offset):\n", short[path]
        assert (short[path].start_line, short[path].end_line) == (1, 1)
        assert short[path].reason == (
            f"signatures of `{name}` (imported by this file from lib.{name})"
        )
    assert short["lib/extra.py"].text == "def unused_yet(a, b):\n"


def test_a_go_package_outline_leads_with_what_its_files_use(tmp_path: Path) -> None:
    """Of a large Go package, the signatures shown first are of the functions its other files
    call most (not the first files' in name order); a declaration repeated in build variants
    (`_unsafe.go` / `_purego.go`) is shown once."""
    many = "".join(f"func Step{i}(v int) int {{\n\treturn v + {i}\n}}\n\n" for i in range(30))
    files = {
        "go.mod": "module example.com/app\n",
        "calc/a_steps.go": f"package calc\n\n{many}",
        "calc/b_use.go": "package calc\n\nfunc B(v int) int {\n\tmust(v > 0)\n\treturn v\n}\n",
        "calc/c_use.go": "package calc\n\nfunc C(v int) int {\n\tmust(v < 9)\n\treturn v\n}\n",
        "calc/z_check.go": "package calc\n\nfunc must(ok bool) {\n\tif !ok {\n\t\tpanic(ok)\n\t}\n}\n",
        "calc/ptr_unsafe.go": "package calc\n\nfunc addr(v *int) uintptr {\n\treturn 0\n}\n",
        "calc/ptr_purego.go": "package calc\n\nfunc addr(v *int) uintptr {\n\treturn 1\n}\n",
        "calc/d_new.go": "package calc\n\nfunc D(v int) int {\n\t\n\treturn v\n}\n",
    }
    root = make_repo(tmp_path / "repo", files)
    config = Config(embedding=EmbeddingConfig(provider="none"))
    index = open_index(root, config)
    index.update()
    pieces = prepare_completion(index, "calc/d_new.go", files["calc/d_new.go"], 3, 1, config).pieces
    outline = [p for p in pieces if p.reason.startswith("signatures of")]
    assert any(p.path == "calc/z_check.go" and p.text == "func must(ok bool) {\n" for p in outline)
    assert len([p for p in outline if p.text == "func addr(v *int) uintptr {\n"]) == 1


def test_a_go_package_outline_takes_the_functions_beside_a_type_the_code_uses(
    tmp_path: Path,
) -> None:
    """Of a large Go package, the functions written in the file that defines a type the lines
    near the cursor use (`refs`) are among its signatures, though no file calls them yet, no
    code like the cursor's names them and other files' names come first in every other order."""
    many = "".join(f"func Step{i}(v int) int {{\n\treturn v + {i}\n}}\n\n" for i in range(30))
    files = {
        "go.mod": "module example.com/app\n",
        "calc/a_steps.go": f"package calc\n\n{many}",
        "calc/refs.go": (
            "package calc\n\ntype refs []int\n\n"
            "func settle(values []int) int {\n\treturn len(values)\n}\n"
        ),
        # `refs` 7 lines up: out of the lines whose code similar code is searched for
        "calc/d_new.go": (
            "package calc\n\nfunc D() int {\n\tr := refs{1, 2}\n"
            + "".join(f"\tn{i} := {i}\n" for i in range(6))
            + "\t\n}\n"
        ),
    }
    root = make_repo(tmp_path / "repo", files)
    config = Config(embedding=EmbeddingConfig(provider="none"))
    index = open_index(root, config)
    index.update()
    text = files["calc/d_new.go"]
    pieces = prepare_completion(index, "calc/d_new.go", text, 10, 1, config).pieces
    outline = [p for p in pieces if p.reason.startswith("signatures of")]
    assert any(
        p.path == "calc/refs.go" and "func settle(values []int) int {" in p.text for p in outline
    ), pieces


def test_a_method_call_resolves_through_the_class_the_code_states(tmp_path: Path) -> None:
    """`shelf = Shelf()` then `shelf.get(`: the `get` of Shelf (imported under an alias), not
    the other classes' `get`s; the same through an annotation, `new` in TypeScript and a Go
    method's receiver."""
    pieces = _context_at_end(
        tmp_path,
        {
            **PACKAGE,
            "shop/checkout.py": (
                "from .store import Store as Shelf\n\n\n"
                "def pay(items, cache: Cache):\n"
                "    shelf = Shelf()\n"
                "    found = shelf.get(items)\n"
                "    cache.get(items)\n"
                "    \n"
            ),
            "shop/cache.py": "class Cache:\n    def get(self, key):\n        return key\n",
        },
        "shop/checkout.py",
    )
    # `shelf.get` is Store's `get`; `Shelf()` then brings the class that holds it, whole, and
    # no piece is chosen for another class's `get` (`cache: Cache` is a name used near the
    # cursor, not a class this file imports or defines: no `cache.get` is resolved).
    store = [(p.start_line, p.end_line, p.reason) for p in pieces if p.path == "shop/store.py"]
    assert store[0] == (
        1, 3, "definition of `Store as Shelf` (imported by this file from .store)"
    )  # fmt: skip
    assert not [p.reason for p in pieces if "get" in p.reason]
    files = {
        "src/queue.ts": (
            "export class Queue {\n  push(v: number): void {}\n  pop(): number { return 0; }\n}\n"
        ),
        "src/stack.ts": "export class Stack {\n  pop(): number { return 1; }\n}\n",
        "src/app.ts": "import { Queue } from './queue';\n\nconst q = new Queue();\nq.pop();\n\n",
    }
    ts = _context_at_end(tmp_path / "ts", files, "src/app.ts")
    pops = [
        (p.path, p.start_line, p.end_line)
        for p in ts
        if "pop()" in p.text and p.reason.startswith("definition")
    ]
    assert pops == [("src/queue.ts", 1, 4)]  # Queue's `pop`, inside `Queue` (`new Queue()`)
    go = {
        "go.mod": "module example.com/app\n",
        "shop/shelf.go": (
            "package shop\n\ntype Shelf struct{}\n\nfunc (s *Shelf) Count() int {\n\treturn 0\n}\n"
        ),
        "shop/bin.go": "package shop\n\ntype Bin struct{}\n\nfunc (b Bin) Count() int {\n\treturn 1\n}\n",
        "shop/use.go": "package shop\n\nfunc (s *Shelf) Twice() int {\n\treturn s.Count() * 2\n\t\n}\n",
    }
    pieces_go = _context_at_end(tmp_path / "go", go, "shop/use.go")
    counts = [p for p in pieces_go if p.reason.startswith("definition") and "Count" in p.reason]
    assert [(p.path, p.reason) for p in counts] == [
        ("shop/shelf.go", "definition of `s.Count` (`s` is a `Shelf`, this package)")
    ]


def _shelf_class() -> str:
    methods = "".join(
        f"    def {name}(self, items):\n"
        + "".join(f"        self.count_{i} = len(items) + {i}\n" for i in range(6))
        + f"        return '{name.upper()}_DONE'\n\n"
        for name in ["stock", "label", "weigh", "restock", "audit", "clean", "sort", "move"]
    )
    return f"class Shelf:\n    '''Where the items wait.'''\n\n{methods}"


def test_a_long_class_shows_whole_the_members_the_code_uses(tmp_path: Path) -> None:
    """A class over its share of the budget comes as its head and its members' signatures,
    except the members the code near the cursor uses (`box.restock`, `Shelf.audit`), which
    come whole."""
    files = {
        "shop/__init__.py": "",
        "shop/shelf.py": _shelf_class(),
        "shop/fill.py": (
            "from shop.shelf import Shelf\n\n\n"
            "def fill(items, box):\n"
            "    box.restock(items)\n"
            "    shelf = Shelf()\n"
            "    \n"
        ),
    }
    pieces = _context_at_end(tmp_path, files, "shop/fill.py")
    shelf = next(p for p in pieces if p.reason.startswith("definition of `Shelf`"))
    assert shelf.text.startswith("class Shelf:\n")
    assert "RESTOCK_DONE" in shelf.text  # used near the cursor: whole
    assert "    def weigh(self, items): ...\n" in shelf.text  # not used: its signature
    assert "WEIGH_DONE" not in shelf.text
    files["shop/fill.py"] = files["shop/fill.py"].replace(
        "box.restock(items)", "Shelf.audit(items)"
    )
    pieces = _context_at_end(tmp_path / "member", files, "shop/fill.py")
    shelf = next(p for p in pieces if p.reason.startswith("definition of `Shelf`"))
    assert "AUDIT_DONE" in shelf.text and "RESTOCK_DONE" not in shelf.text


def test_a_class_and_its_member_used_near_the_cursor_come_as_one_piece(tmp_path: Path) -> None:
    """`shape = Rectangle(...)` then `shape.area()`: the method is resolved first (it is
    nearer), then the class that holds it replaces it, whole, rather than the class being left
    out as overlapping and shown by its bare `class Rectangle:` line."""
    files = {
        **{k: v for k, v in FILES.items() if k != "app/report.py"},
        "app/report.py": REPORT
        + "\n\ndef rectangle_area(width: float, height: float) -> float:\n    \n",
    }
    pieces = _context_at_end(tmp_path, files, "app/report.py")
    geometry = [
        (p.start_line, p.end_line, p.reason) for p in pieces if p.path == "shapes/geometry.py"
    ]
    assert geometry[:2] == [
        (4, 13, "definition of `Rectangle` (imported by this file from shapes.geometry)"),
        (
            16,
            18,
            "definition of `rectangle_perimeter` (imported by this file from shapes.geometry)",
        ),
    ]
    assert not any("area" in reason or "signatures of" in reason for _, _, reason in geometry)


def test_a_module_s_members_other_files_use_most_are_among_its_signatures(tmp_path: Path) -> None:
    """`import lib.log as log` and nothing of it used yet: the module has more public names
    than one piece shows, and the one the repository's other files call (`log.get_logger`,
    defined last) is among those shown; the file being written does not count itself."""
    helpers = "".join(f"def helper_{i}(value):\n    return value + {i}\n\n\n" for i in range(30))
    files = {
        "lib/__init__.py": "",
        "lib/log.py": helpers + "def get_logger(name):\n    return name\n",
        **{
            f"app/job_{i}.py": f"from lib import log\n\nLOG = log.get_logger('job_{i}')\n"
            for i in range(3)
        },
        # (the import out of the last lines, which find similar code: no other file is like it)
        "app/main.py": "from lib import log\n" + "\n" * 6 + "def main():\n    total = 0\n    \n",
    }
    root = make_repo(tmp_path / "repo", files)
    config = Config(embedding=EmbeddingConfig(provider="none"))
    index = open_index(root, config)
    index.update()
    text = files["app/main.py"]

    def outline() -> str:
        pieces = prepare_completion(index, "app/main.py", text, 9, 4, config).pieces
        return next(p.text for p in pieces if p.path == "lib/log.py")

    # the first completion asks for the module's uses in the background and does not wait
    assert "get_logger" not in outline()
    assert popular_members(index, "app/job_0.py", "log", wait=True)["get_logger"] == 2
    assert "def get_logger(name):\n" in outline()


def test_an_imported_module_s_outline_keeps_a_name_an_uncertain_definition_also_shows(
    tmp_path: Path,
) -> None:
    """`encode` used near the cursor without an import that binds it is any of the repository's
    `encode`s: their definitions are uncertain and come last, where the budget may drop them.
    The outline of an imported module that defines one still lists its signature."""
    files = {
        "codec_a.py": "def encode(text):\n    return text.upper()\n",
        "codec_b.py": "def encode(text, level=1):\n    return text.lower()\n\n\n"
        "def decode(text):\n    return text\n",
        "main.py": "import codec_a\nimport codec_b\n\nSTEPS = [encode]\n\n\ndef run(text):\n    \n",
    }
    pieces = _context_at_end(tmp_path, files, "main.py")
    outlines = [(p.path, p.text) for p in pieces if p.reason.startswith("signatures of")]
    assert ("codec_b.py", "def encode(text, level=1):\n") in outlines, pieces
    assert ("codec_a.py", "def encode(text):\n") in outlines, pieces


def _outline_at(
    tmp_path: Path, files: dict[str, str], at: tuple[str, int, int], module: str
) -> tuple[str, list[ContextPiece]]:
    """The signatures of ``module``'s file in the context at ``at`` (path, line, character) of
    a repository of ``files``, and all the pieces."""
    root = make_repo(tmp_path / "repo", files)
    config = Config(embedding=EmbeddingConfig(provider="none"))
    index = open_index(root, config)
    index.update()
    path, line, character = at
    pieces = prepare_completion(index, path, files[path], line, character, config).pieces
    return "".join(p.text for p in pieces if p.path == module), pieces


def test_a_package_s_outline_leads_with_what_similar_code_elsewhere_calls(tmp_path: Path) -> None:
    """A Go package with more names than one piece shows: the name that code like the lines
    before the cursor calls in another file (`fit27`, used by that file only) is among the
    signatures, ahead of names more files use but no similar code calls."""
    names = [f"fit{i}" for i in range(30)]
    funcs = "".join(
        f"func {n}(v int) int {{\n\treturn v + {i}\n}}\n\n" for i, n in enumerate(names)
    )
    calls = "".join(f"\t_ = {n}(1)\n" for n in names if n != "fit27")
    similar = (
        "\tscaleFactor := offsetWidth * 2\n\tborderRadius := scaleFactor + paddingTop\n"
        "\treturn fit27(borderRadius)\n"
    )
    files = {
        "go.mod": "module example.com/app\n",
        "geom/fit.go": f"package geom\n\n{funcs}",
        **{f"geom/use_{u}.go": f"package geom\n\nfunc use{u}() {{\n{calls}}}\n" for u in "ab"},
        "geom/other.go": f"package geom\n\nfunc layout(offsetWidth, paddingTop int) int {{\n{similar}}}\n",
        "geom/main.go": (
            "package geom\n\nfunc render(offsetWidth, paddingTop int) int {\n"
            "\tscaleFactor := offsetWidth * 2\n\tborderRadius := scaleFactor + paddingTop\n\t\n}\n"
        ),
    }
    outline, pieces = _outline_at(tmp_path, files, ("geom/main.go", 5, 1), "geom/fit.go")
    assert "func fit27(v int) int {\n" in outline, pieces
    assert outline.count("func fit") < len(names)  # (more names than one piece shows)


def _wordy_module(last: str) -> dict[str, str]:
    """A package `lib` whose module `text` has more names than one piece of signatures shows:
    30 functions `word_<i>(item)`, then ``last``."""
    words = "".join(f"def word_{i}(item):\n    return item + {i}\n\n\n" for i in range(30))
    return {"lib/__init__.py": "", "lib/text.py": words + last}


def test_a_private_name_similar_code_calls_is_among_a_python_module_s_signatures(
    tmp_path: Path,
) -> None:
    """`import lib.text as text`: of a module with more names than one piece shows, a private
    one (`text._fold`) is left out unless code like the lines before the cursor calls it."""
    similar = (
        "    width = margin * 2\n    height = width + padding\n    return text._fold(height)\n"
    )
    files = {
        **_wordy_module("def _fold(value):\n    return value\n"),
        "app/other.py": f"from lib import text\n\n\ndef layout(margin, padding):\n{similar}",
        "app/main.py": (
            "from lib import text\n\n\ndef render(margin, padding):\n"
            "    width = margin * 2\n    height = width + padding\n    \n"
        ),
    }
    outline, pieces = _outline_at(tmp_path, files, ("app/main.py", 6, 4), "lib/text.py")
    assert "def _fold(value):\n" in outline, pieces


def test_names_the_words_near_the_cursor_speak_of_join_a_module_s_signatures(
    tmp_path: Path,
) -> None:
    """A module with more names than one piece shows: `to_hex`, which no file calls and which
    comes last in it, is among its signatures when a comment just above the cursor speaks of a
    hexdump (a word the full-text search for similar code does not match with `hex`), and left
    out when nothing near the cursor does."""
    files = {
        # (a long body: it is no match for a full-text search for code like the cursor's)
        **_wordy_module("def to_hex(number, width):\n" + "    number += width\n" * 20),
        "app/main.py": (
            "from lib import text\n\n\ndef render(value):\n"
            "    # the output is inspired by hexdump\n    \n"
        ),
    }
    outline, pieces = _outline_at(tmp_path, files, ("app/main.py", 5, 4), "lib/text.py")
    assert "def to_hex(number, width):\n" in outline, pieces
    assert outline.count("def word_") < 30  # (more names than one piece shows)

    files["app/main.py"] = "from lib import text\n\n\ndef render(value):\n    # as it says\n    \n"
    # (a new repository beside the first: a background search may still be reading that one)
    outline, pieces = _outline_at(tmp_path / "again", files, ("app/main.py", 5, 4), "lib/text.py")
    assert outline and "to_hex" not in outline, pieces
