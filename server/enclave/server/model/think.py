"""Separate ``<think>...</think>`` text from the answer, in streams that split tags anywhere.

Servers older than Ollama 0.9, and models that ignore ``think``, write their reasoning into the
answer text between these tags. :class:`ThinkSplitter` routes it to the thinking channel so the
answer never contains it; a tag cut across two chunks is held back until it is whole.
"""

from __future__ import annotations

OPEN = "<think>"
CLOSE = "</think>"


class ThinkSplitter:
    """Feed text chunks; get back (thinking, content) pieces with every tag removed."""

    def __init__(self) -> None:
        self._inside = False
        self._pending = ""  # a possible partial tag at the end of the last chunk

    def feed(self, chunk: str) -> tuple[str, str]:
        text = self._pending + chunk
        self._pending = ""
        thinking: list[str] = []
        content: list[str] = []
        while text:
            tag = CLOSE if self._inside else OPEN
            at = text.find(tag)
            if at >= 0:
                (thinking if self._inside else content).append(text[:at])
                text = text[at + len(tag) :]
                self._inside = not self._inside
                continue
            keep = _partial_tag_length(text, tag)
            if not self._inside and keep == 0:
                # a stray closing tag (the model was told not to think but did, unannounced)
                stray = text.find(CLOSE)
                if stray >= 0:
                    thinking.append("".join(content) + text[:stray])
                    content = []
                    text = text[stray + len(CLOSE) :]
                    continue
                keep = _partial_tag_length(text, CLOSE)
            body, self._pending = text[: len(text) - keep], text[len(text) - keep :]
            (thinking if self._inside else content).append(body)
            break
        return "".join(thinking), "".join(content)

    def flush(self) -> tuple[str, str]:
        """End of stream: a held-back partial tag was ordinary text after all."""
        rest, self._pending = self._pending, ""
        return (rest, "") if self._inside else ("", rest)


def _partial_tag_length(text: str, tag: str) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of ``tag``."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:size]):
            return size
    return 0


def strip_think(text: str) -> tuple[str, str]:
    """Whole-text form: (thinking, content)."""
    splitter = ThinkSplitter()
    thinking, content = splitter.feed(text)
    more_thinking, more_content = splitter.flush()
    return thinking + more_thinking, content + more_content
