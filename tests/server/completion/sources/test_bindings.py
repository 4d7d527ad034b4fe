"""What a file's imports bind, resolved to the repository's files (no index needed)."""

from __future__ import annotations

from enclave.server.completion.sources.bindings import (
    Binding,
    Repository,
    bindings,
    class_bases,
    follow,
    imported_not_used,
    member_uses,
    names_in,
    receiver_types,
    references,
)

FILES = [
    "server/context.py",
    "server/model/budget.py",
    "server/model/__init__.py",
    "src/pkg/util.py",
    "web/src/util/index.ts",
    "web/src/util/clamp.ts",
    "web/src/app.ts",
    "geom/area.go",
    "geom/area_test.go",
]
REPO = Repository(FILES)


def test_python_imports_absolute_relative_aliased_and_half_typed() -> None:
    text = (
        "from __future__ import annotations\n"
        "import os, enclave.server.context as ctx\n"
        "from .budget import (fit_pieces,\n    keep_head as head)\n"
        "from .. import context\n"
        "from pkg.util import thing\n"
        "from . import missing\n"
        "def half_typed(:\n"
    )
    found = bindings("server/model/client.py", text, "python", REPO)
    assert found == {
        # a package installed under another name links to the folders: the longest match wins
        "ctx": Binding("ctx", ("server/context.py",), "", "enclave.server.context"),
        "fit_pieces": Binding("fit_pieces", ("server/model/budget.py",), "fit_pieces", ".budget"),
        "head": Binding("head", ("server/model/budget.py",), "keep_head", ".budget"),
        "context": Binding("context", ("server/context.py",), "", "..context"),
        "thing": Binding("thing", ("src/pkg/util.py",), "thing", "pkg.util"),  # a src layout
        # not a module: a name the package's __init__.py may define
        "missing": Binding("missing", ("server/model/__init__.py",), "missing", "."),
    }


def test_typescript_index_files_and_go_packages() -> None:
    ts = "import { clamp as limit } from './util';\nimport * as u from './util/clamp';\n"
    found = bindings("web/src/app.ts", ts, "typescript", REPO)
    assert found["limit"] == Binding("limit", ("web/src/util/index.ts",), "clamp", "./util")
    assert found["u"].paths == ("web/src/util/clamp.ts",) and found["u"].is_module
    index = bindings(
        "web/src/util/index.ts", "export { clamp } from './clamp';\n", "typescript", REPO
    )
    onward = follow(
        found["limit"],
        lambda path, name: index.get(name) if path.endswith("index.ts") else None,
        lambda path, name: path.endswith("clamp.ts"),
    )
    assert onward.paths == ("web/src/util/clamp.ts",) and onward.original == "clamp"
    go = 'import (\n\t"fmt"\n\tg "example.com/app/geom"\n)\n'
    assert bindings("main.go", go, "go", REPO) == {
        "g": Binding("g", ("geom/area.go",), "", "example.com/app/geom")  # tests left out
    }


def test_module_members_are_listed_last_use_first() -> None:
    text = "a = m.first()\nb = mm.other()\nc = m.second(m.first)\n"
    assert member_uses(text)["m"] == ["first", "second"]
    assert member_uses("x = urllib.parse.quote(v)\n")["urllib.parse"] == ["quote"]


def test_module_members_of_the_named_heads_only() -> None:
    text = "self.x = m.first()\ny = urllib.parse.quote(self.z)\nc = m.second(obj.attr)\n"
    every = member_uses(text)
    named = member_uses(text, {"m", "urllib"})
    assert set(every) == {"self", "m", "urllib", "urllib.parse", "obj"}
    assert named == {k: v for k, v in every.items() if k.split(".")[0] in {"m", "urllib"}}
    assert named["m"] == ["second", "first"] and named["urllib.parse"] == ["quote"]
    assert member_uses(text, set()) == {}


def test_a_name_that_shares_its_module_name_is_a_name_not_the_module() -> None:
    """`from lib.alpha import alpha` binds the function alpha of lib/alpha.py: the module
    lookup's fallback (dropping leading parts, for installed package names) must not read it
    as a submodule `lib.alpha.alpha` and land on the same file."""
    repo = Repository(["lib/alpha.py", "pkg/beta/__init__.py", "pkg/beta/beta.py"])
    text = "from lib.alpha import alpha\nfrom pkg.beta import beta\n"
    assert bindings("app.py", text, "python", repo) == {
        "alpha": Binding("alpha", ("lib/alpha.py",), "alpha", "lib.alpha"),
        "beta": Binding("beta", ("pkg/beta/beta.py",), "", "pkg.beta.beta"),  # a real submodule
    }


def test_receiver_types_read_what_the_code_states() -> None:
    python = (
        "def pay(items, shelf: Shelf, n: int):\n"
        "    store = pricing.Store(1)\n"
        "    made = make_store()\n"
        "    with Lock() as guard:\n"
        "        shelf = Bin()\n"
    )
    # the last statement wins; a lower-case call's result is unknown
    assert receiver_types(python, "python") == {
        "shelf": "Bin", "store": "pricing.Store", "guard": "Lock",
    }  # fmt: skip
    ts = "const a = new Subject<number>();\nfunction f(sub: Subscriber<T>, n?: number) {\n"
    assert receiver_types(ts, "ecmascript") == {"a": "Subject", "sub": "Subscriber"}
    go = "func (s *Server) Start(ctx context.Context) {\n\topts := &Options{A: 1}\n\tvar w bytes.Buffer\n"
    assert receiver_types(go, "go") == {"s": "Server", "opts": "Options", "w": "bytes.Buffer"}


def test_references_name_receivers_only_where_the_code_does() -> None:
    text = (
        "def __init__(self, radius):\n"
        '    super().__init__("circle")\n'
        "    super(Circle, self).validate()\n"
        "    self.radius = radius\n"
        "    self.session.send(radius)\n"
        "    Shape.count += helper(radius)\n"
    )
    refs = references(text)
    assert refs.members == (
        ("super()", "__init__"),
        ("super()", "validate"),
        ("self", "radius"),
        ("self", "session"),
        ("Shape", "count"),
    )  # `send` has no receiver that can be named: it is in neither list
    assert "send" not in refs.bare and "count" not in refs.bare
    assert refs.bare[:2] == ("self", "radius")  # most used first
    assert {"helper", "Shape", "super", "__init__"} <= set(refs.bare)


def test_class_bases_from_the_first_line() -> None:
    assert class_bases("class Circle(Shape):") == ["Shape"]
    assert class_bases("class C(pkg.base.Base, Mixin[int], metaclass=Meta):") == ["Base", "Mixin"]
    assert class_bases("class Plain:") == [] and class_bases("class Old(object):") == []
    assert class_bases("export class Circle<T> extends shapes.Shape implements Area {") == ["Shape"]
    assert class_bases("def f(a, b):") == []


def test_python_imports_continued_with_backslashes() -> None:
    """``from m import \\`` continued on the next lines binds every name it lists (a large
    package's files import dozens of names this way, and none of them was offered)."""
    text = (
        "from pkg.util import \\\n"
        "    thing, helper, \\\n"
        "    other as o\n"
        "from .budget import fit_pieces  # a comment \\\n"
        "x = 1\n"
    )
    found = bindings("server/model/client.py", text, "python", REPO)
    assert found == {
        "thing": Binding("thing", ("src/pkg/util.py",), "thing", "pkg.util"),
        "helper": Binding("helper", ("src/pkg/util.py",), "helper", "pkg.util"),
        "o": Binding("o", ("src/pkg/util.py",), "other", "pkg.util"),
        "fit_pieces": Binding("fit_pieces", ("server/model/budget.py",), "fit_pieces", ".budget"),
    }


def test_names_in_finds_whole_names_only_whatever_the_path() -> None:
    """Few names are looked for one by one (in C), many in one pass over the identifiers: both
    find a name's last bare use, never an attribute or a part of another name."""
    text = (
        "from m import quote, q, $el\n"
        "quote_all(x.quote, requote, q)\n"
        "élan_quote = quote(q.q)  # quote\n"
        "$el.q; q$ = 1\n"
    )
    names = {"quote", "q", "$el", "absent"}
    many = names | {f"filler{i}" for i in range(100)}
    expected = {"quote": text.rindex("quote"), "q": text.index("q.q"), "$el": text.rindex("$el")}
    assert names_in(text, names) == expected
    assert names_in(text, many) == expected
    assert imported_not_used(text, 4, names) == set()
    assert imported_not_used("from m import quote, q\nq(1)\n", 2, {"quote", "q"}) == {"quote"}
    assert imported_not_used("from m import quote\nquote(1)\n", 1, {"quote"}) == set()
    assert imported_not_used("x = 1\nfrom m import quote\n", 1, {"quote"}) == set()  # below
