"""LSP request bodies the tests and benches send as an editor would."""

from __future__ import annotations

from lsprotocol import types


def inline_params(
    uri: str, line: int, character: int, *, invoked: bool = False
) -> types.InlineCompletionParams:
    """`textDocument/inlineCompletion` at a position: automatic (typing) unless ``invoked``."""
    kind = types.InlineCompletionTriggerKind
    return types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=types.Position(line=line, character=character),
        context=types.InlineCompletionContext(
            trigger_kind=kind.Invoked if invoked else kind.Automatic
        ),
    )


def insertion(
    uri: str, version: int, line: int, character: int, text: str
) -> types.DidChangeTextDocumentParams:
    """`textDocument/didChange` inserting ``text`` at a position (one incremental change)."""
    at = types.Position(line, character)
    return types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
        content_changes=[
            types.TextDocumentContentChangePartial(range=types.Range(at, at), text=text)
        ],
    )
