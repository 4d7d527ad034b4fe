"""<think> splitting: thinking is routed apart, whatever the chunking of the stream."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from enclave.server.model.think import ThinkSplitter, strip_think


def split_stream(chunks: list[str]) -> tuple[str, str]:
    splitter = ThinkSplitter()
    thinking, content = "", ""
    for chunk in chunks:
        t, c = splitter.feed(chunk)
        thinking, content = thinking + t, content + c
    t, c = splitter.flush()
    return thinking + t, content + c


def test_think_block_is_routed_apart() -> None:
    assert strip_think("<think>plan it</think>\n\nanswer") == ("plan it", "\n\nanswer")


def test_tags_split_across_chunks() -> None:
    chunks = ["Hi <", "thi", "nk>secret", " plan</th", "ink", "> there", " <", "b>"]
    assert split_stream(chunks) == ("secret plan", "Hi  there <b>")


def test_stray_closing_tag_moves_preceding_text_to_thinking() -> None:
    assert strip_think("reasoning here</think>answer") == ("reasoning here", "answer")


@given(
    st.text(alphabet="ab<>/thinkx ", max_size=30),
    st.text(alphabet="ab /xy", max_size=30),
    st.lists(st.integers(min_value=1, max_value=7), min_size=1, max_size=20),
)
def test_any_chunking_gives_the_same_result(thought: str, answer: str, cuts: list[int]) -> None:
    thought = thought.replace("<think>", "").replace("</think>", "")
    text = f"<think>{thought}</think>{answer}"
    chunks, at = [], 0
    for size in cuts * 10:
        if at >= len(text):
            break
        chunks.append(text[at : at + size])
        at += size
    chunks.append(text[at:])
    thinking, content = split_stream(chunks)
    assert "<think>" not in content and "</think>" not in content
    assert content == answer
    assert thinking == strip_think(text)[0]
