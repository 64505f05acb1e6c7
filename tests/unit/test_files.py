"""Reading what a runner left: regular files only, and only as much as is sent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from execdb.client.files import NotRegularFile, read_head, read_tail, read_text
from execdb.client.text import shorten


@settings(max_examples=50)
@given(st.text(st.characters(exclude_categories=["Cs"]), min_size=1000, max_size=3000))
def test_a_long_file_is_cut_as_shorten_cuts_its_text(
    tmp_path_factory: pytest.TempPathFactory, value: str
) -> None:
    path = tmp_path_factory.getbasetemp() / "read-text"
    path.write_text(value, encoding="utf-8")
    assert read_text(path, 1024) == shorten(value, 1024)[0]


def test_a_huge_file_is_read_at_its_ends_only(tmp_path: Path) -> None:
    path = tmp_path / "log"
    with path.open("wb") as f:
        f.write(b"it began")
        f.truncate(100 * 1024 * 1024)  # sparse: reading it whole would take a while
        f.seek(0, os.SEEK_END)
        f.write(b"and it died")
    got = read_text(path, 65536)
    assert got.startswith("it began")
    assert got.endswith("and it died")
    assert len(got.encode()) <= 65536
    assert "bytes omitted by ExecDB" in got


def test_bytes_that_are_not_utf8_are_replaced(tmp_path: Path) -> None:
    path = tmp_path / "log"
    path.write_bytes(b"a\xffb")
    assert read_text(path, 1024) == "a\ufffdb"


@pytest.mark.parametrize("reader", [read_head, read_text])
def test_only_regular_files_are_read(tmp_path: Path, reader: object) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path, kind in [(fifo, "a FIFO"), (Path("/dev/zero"), "a character device")]:
        with pytest.raises(NotRegularFile, match=f"it is {kind}, not a regular file"):
            reader(path, 1024)  # type: ignore[operator]


@pytest.mark.parametrize(
    ("content", "limit", "tail"),
    [
        (b"one\ntwo\nthree\n", 100, "one\ntwo\nthree\n"),
        (b"one\ntwo\nthree\n", 9, "three\n"),  # the partial line "two" is dropped
        (b"one\ntwo\nthree\n", 10, "two\nthree\n"),
        (b"one\ntwo\nthree\n", 6, "three\n"),  # the cut falls on a line boundary
        (b"x" * 50, 10, "x" * 10),  # one huge line: its end is still worth a look
        (b"a\n\xe2\x82\xac\xe2\x82\xacz", 4, "\u20acz"),  # no half character
    ],
)
def test_read_tail_reads_the_end_on_a_line_boundary(
    tmp_path: Path, content: bytes, limit: int, tail: str
) -> None:
    path = tmp_path / "log"
    path.write_bytes(content)
    assert read_tail(path, limit) == tail


def test_read_tail_reads_only_regular_files(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(NotRegularFile, match="a FIFO"):
        read_tail(fifo, 100)


def test_a_tail_keeps_the_last_bytes_from_a_line_boundary_in_bounded_memory() -> None:
    from execdb.client.run import Tail

    tail = Tail(100)
    for n in range(10_000):
        tail.add(f"line {n}\n".encode())
        assert len(tail._data) <= 2 * 100 + 1 + len(f"line {n}\n")
    text = tail.text()
    assert text.endswith("line 9999\n")
    assert text.startswith("line ")
    assert len(text.encode()) <= 100
    assert Tail(100).text() == ""
    short = Tail(100)
    short.add(b"only \xff line")
    assert short.text() == "only \ufffd line"
