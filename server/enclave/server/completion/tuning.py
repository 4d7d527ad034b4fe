"""The tuning of completions, in one place: every number that decides how much of what context a
completion gathers, and how the text around the cursor is laid out for the prompt cache.

``TUNING`` is the one instance the pipeline reads; ``bench/quality.py`` reports it with its figures.
The user's settings (``completion.*``: budgets in tokens, ``num_ctx``) are ``enclave.config``'s.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Tuning:
    """The constants of the completion pipeline (see each field's comment)."""

    # -- the cursor (enclave.server.completion.cursor, ...sources.definitions) ------------------
    near_before: int = 40  # lines above the cursor whose names are looked up
    near_after: int = 10
    typed_before: int = 120  # lines above the cursor read for what class a local name holds
    # -- definitions (...sources.definitions) ---------------------------------------------------
    max_definitions: int = 6
    line_tokens: int = 12  # a guess of tokens per line, to fetch only definitions that can fit
    definition_share: float = (
        0.35  # of the context budget, for whole definitions (the rest: signatures)
    )
    certain: float = 4.0  # the score of a definition an import binds: these lead the pieces
    # -- similar code and recent edits (...sources.similar, ...sources.recent) ------------------
    max_similar: int = 4
    similar_hits: int = (
        10  # similar code searched for: max_similar shown, all of it names what it calls
    )
    max_recent: int = 3
    recent_window: int = 8  # lines either side of a recent edit
    # -- signatures (...sources.outline, ...sources.imports) ------------------------------------
    signature_lines: int = 3
    overload_lines: int = 16  # a signature with TypeScript overloads may take this many lines
    overload_scan: int = 200  # lines read for them (the comments between overloads are left out)
    module_signatures: int = 24  # signatures shown of one imported module or package
    said_signatures: int = 8  # more of them, for names the words near the cursor speak of
    near_file: float = (
        1.0  # and for the names of a file defining what the lines near the cursor use
    )
    words_lines: int = (
        10  # lines above the cursor (and its own) whose words, comments too, are read
    )
    max_names_bytes: int = 1 << 20  # of a package file read to learn which names it uses
    # Characters of redacted repository files kept across completions (sources.files): about
    # 16 MB of text, a few hundred source files, whatever their number or size.
    redacted_cache_chars: int = 16 << 20
    popular_chunks: int = 60  # chunks read to learn which members of a module the repository calls
    popular_seconds: float = (
        300.0  # how long that is kept (it orders signatures only: staleness is cheap)
    )
    popular_kept: int = 256  # module names kept
    # -- the text around the cursor (enclave.server.completion.fit) -----------------------------
    single_line_tokens: int = 48  # the longest answer a single-line completion may generate
    # The prompt cache: Ollama (llama.cpp) keeps the previous prompt's evaluated tokens and reads
    # only what follows the longest prefix the new prompt shares with it. While the user types,
    # the start of the file text sent moves in steps of this many lines, not with every line the
    # budget allows.
    prefix_step_lines: int = 32
    # ...and the text after the cursor, which a prompt carries after the text before it (so it is
    # read again for every keystroke), stops after this many lines: the rest of the block at hand.
    suffix_lines: int = 8
    # ...and the room left for context pieces shrinks in steps of this many tokens as the text
    # around the cursor grows: a piece at the edge of the budget does not come and go with each
    # keystroke.
    context_step_tokens: int = 256


TUNING = Tuning()
