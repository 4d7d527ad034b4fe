"""`workspace/symbol` from the index's symbols table (prefix, fuzzy and qualified-name matches)."""

from __future__ import annotations

import asyncio
import logging

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from enclave.indexer.api import IndexProblem
from enclave.indexer.types import SymbolDef
from enclave.server.lsp.convert import path_to_uri
from enclave.server.lsp.services import Root, Services

log = logging.getLogger(__name__)
LIMIT = 100

KINDS = {
    "function": types.SymbolKind.Function,
    "method": types.SymbolKind.Method,
    "class": types.SymbolKind.Class,
    "struct": types.SymbolKind.Struct,
    "interface": types.SymbolKind.Interface,
    "trait": types.SymbolKind.Interface,
    "enum": types.SymbolKind.Enum,
    "module": types.SymbolKind.Module,
    "namespace": types.SymbolKind.Namespace,
    "constant": types.SymbolKind.Constant,
    "variable": types.SymbolKind.Variable,
    "type": types.SymbolKind.TypeParameter,
    "field": types.SymbolKind.Field,
    "property": types.SymbolKind.Property,
    "constructor": types.SymbolKind.Constructor,
    "section": types.SymbolKind.String,
}


def symbol_information(root: Root, symbol: SymbolDef) -> types.SymbolInformation:
    container = symbol.qualified_name.rsplit(".", 1)[0] if "." in symbol.qualified_name else None
    start = types.Position(line=max(0, symbol.start_line - 1), character=0)
    end = types.Position(line=max(0, symbol.end_line - 1), character=0)
    full = types.Range(start=start, end=end if end.line > start.line else start)
    return types.SymbolInformation(
        name=symbol.qualified_name or symbol.name,
        kind=KINDS.get(symbol.kind, types.SymbolKind.Variable),
        location=types.Location(uri=path_to_uri(root.path / symbol.path), range=full),
        container_name=container or symbol.path,
    )


def find(services: Services, query: str) -> list[types.SymbolInformation]:
    """Blocking: search every usable root (call from a worker thread)."""
    results: list[types.SymbolInformation] = []
    for root in services.roots:
        if root.index is None or root.error is not None:
            continue
        try:
            found = root.index.find_symbols(query, limit=LIMIT)
        except IndexProblem:
            log.warning("symbol search failed in %s", root.path, exc_info=True)
            continue
        results += [symbol_information(root, symbol) for symbol in found]
    return results[:LIMIT]


def register(server: LanguageServer, services: Services) -> None:
    @server.feature(types.WORKSPACE_SYMBOL)
    async def workspace_symbol(
        ls: LanguageServer, params: types.WorkspaceSymbolParams
    ) -> list[types.SymbolInformation]:
        for root in list(services.roots):  # right after start the indexes may still be opening
            await services.wait_opened(root)
        return await asyncio.to_thread(find, services, params.query)
