from __future__ import annotations

from slmkit.textstream import ByteDetokenizer, StopMatcher, WindowDetokenizer


def feed_all(matcher: StopMatcher, pieces: list[str]) -> str:
    out = ""
    for piece in pieces:
        out += matcher.feed(piece)
        if matcher.stopped:
            return out
    return out + matcher.flush()


def test_byte_detokenizer_holds_back_split_characters() -> None:
    data = "é🙂".encode()
    detok = ByteDetokenizer(lambda t: bytes([t]))
    pieces = [detok.add(b) for b in data]
    assert all("\ufffd" not in p for p in pieces)
    assert "".join(pieces) + detok.flush() == "é🙂"
    assert pieces[0] == ""  # first byte of é alone is not a character yet


def test_byte_detokenizer_flush_replaces_a_dangling_partial_character() -> None:
    detok = ByteDetokenizer(lambda t: bytes([t]))
    assert detok.add(0xF0) == ""
    assert detok.flush() == "\ufffd"


def test_window_detokenizer_waits_for_complete_characters() -> None:
    ids = list("naïve 🙂".encode())

    def decode(seq: list[int]) -> str:
        return bytes(seq).decode("utf-8", errors="replace")

    detok = WindowDetokenizer(decode)  # type: ignore[arg-type]
    pieces = [detok.add(i) for i in ids]
    assert all("\ufffd" not in p for p in pieces)
    assert "".join(pieces) + detok.flush() == "naïve 🙂"


def test_stop_sequence_split_across_pieces_is_found_and_not_emitted() -> None:
    matcher = StopMatcher(["STOP"])
    assert feed_all(matcher, ["abc S", "T", "OP tail"]) == "abc "
    assert matcher.stopped


def test_text_resembling_a_stop_prefix_is_released_when_it_diverges() -> None:
    matcher = StopMatcher(["STOP"])
    assert matcher.feed("abc ST") == "abc "
    assert matcher.feed("ART") == "START"
    assert not matcher.stopped


def test_earliest_of_several_stops_wins() -> None:
    matcher = StopMatcher(["world", "lo"])
    assert feed_all(matcher, ["hello world"]) == "hel"


def test_held_text_is_released_at_the_end() -> None:
    matcher = StopMatcher(["STOP"])
    assert feed_all(matcher, ["the end ST"]) == "the end ST"
    assert not matcher.stopped


def test_no_stops_passes_text_through() -> None:
    matcher = StopMatcher([])
    assert matcher.feed("anything") == "anything"
