"""Running a job's command for `execdb job run`: its output passed through unchanged while
its tail is kept, a heartbeat while it runs, and the signals that stop `execdb` forwarded to
it. Only the standard library: the reports around it are the caller's.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

from execdb.client.files import tail_text

# The signals an executor (or a person at a terminal) stops a run with.
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
# After the command ends, how long its output may still be drained: a process it left behind
# in the background can hold the pipes open for ever.
DRAIN_SECONDS = 5.0
CHUNK = 64 * 1024


class Tail:
    """The last bytes of a stream, in bounded memory (at most about three times `max_bytes`)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._data = bytearray()
        self._lock = threading.Lock()

    def add(self, chunk: bytes) -> None:
        with self._lock:
            self._data += chunk
            # Trimmed now and then, not on every chunk; one byte more than the tail is kept
            # so that tail_text sees whether its cut falls on a line boundary.
            if len(self._data) > 2 * self.max_bytes + 1:
                del self._data[: len(self._data) - self.max_bytes - 1]

    def text(self) -> str:
        with self._lock:
            data = bytes(self._data[-self.max_bytes - 1 :])
        return tail_text(data, self.max_bytes)


@dataclass(frozen=True, slots=True)
class Ended:
    """How the command ended."""

    exit_code: int  # as a shell gives it: 128 + N for a command killed by signal N
    killed_by: str | None = None  # the signal that ended the command, e.g. "SIGKILL"
    stopped_by: str | None = None  # the signal that stopped `execdb`, forwarded to it
    not_started: str | None = None  # why the command could not be started

    def describe(self) -> str:
        """The end in words, for the report's details."""
        if self.not_started is not None:
            return f"the command could not be started: {self.not_started}"
        said = f"the command exited with code {self.exit_code}"
        if self.killed_by is not None:
            said = f"the command was killed by {self.killed_by} (exit code {self.exit_code})"
        if self.stopped_by is not None:
            said += f"; the run was stopped by {self.stopped_by}, forwarded to the command"
        return said


def run(
    command: Sequence[str],
    tail: Tail,
    *,
    beat: Callable[[], None] | None = None,
    every: float = 0.0,
) -> Ended:
    """Run `command`, copy its stdout and stderr to ours unchanged and into `tail`, call
    `beat` every `every` seconds while it runs (0: never), and forward FORWARDED signals to
    it. Returns when it has ended; never raises for the command's sake."""
    forward = _Forward()
    with _handling(forward):
        try:
            child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as exc:
            code = 127 if isinstance(exc, FileNotFoundError) else 126
            return Ended(code, not_started=f"{command[0]}: {exc.strerror or exc}")
        forward.to(child)
        returncode = _supervise(child, tail, beat, every)
    stopped = signal.Signals(forward.received[0]).name if forward.received else None
    if returncode < 0:
        return Ended(128 - returncode, signal.Signals(-returncode).name, stopped)
    return Ended(returncode, stopped_by=stopped)


def _supervise(
    child: subprocess.Popen[bytes], tail: Tail, beat: Callable[[], None] | None, every: float
) -> int:
    """Copy the child's output and beat until it ends; its return code."""
    assert child.stdout is not None
    assert child.stderr is not None
    readers = [
        _thread(_copy, child.stdout.fileno(), 1, tail),
        _thread(_copy, child.stderr.fileno(), 2, tail),
    ]
    done = threading.Event()
    if beat is not None and every > 0:
        _thread(_beat, beat, every, done)
    returncode = child.wait()
    done.set()
    for reader in readers:
        reader.join(DRAIN_SECONDS)
    child.stdout.close()
    child.stderr.close()
    return returncode


class _Forward:
    """A signal handler that passes the signal on to the child, once there is one."""

    def __init__(self) -> None:
        self.received: list[int] = []
        self._child: subprocess.Popen[bytes] | None = None

    def to(self, child: subprocess.Popen[bytes]) -> None:
        self._child = child
        for number in self.received:  # arrived while the child was being started
            child.send_signal(number)

    def __call__(self, number: int, frame: FrameType | None) -> None:
        self.received.append(number)
        if self._child is not None and self._child.returncode is None:
            self._child.send_signal(number)


@contextmanager
def _handling(forward: _Forward) -> Iterator[None]:
    """While in the block, FORWARDED signals go to `forward` (in the main thread only: no
    other thread can take signals)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.signal(number, forward) for number in FORWARDED}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _thread(target: Callable[..., None], *args: object) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


def _copy(source: int, target: int, tail: Tail) -> None:
    """Copy `source` to `target` until its end, keeping the tail; a closed `target` (our
    reader went away) does not stop the keeping."""
    writable = True
    while chunk := os.read(source, CHUNK):
        tail.add(chunk)
        while writable and chunk:
            try:
                chunk = chunk[os.write(target, chunk) :]
            except OSError:
                writable = False


def _beat(beat: Callable[[], None], every: float, done: threading.Event) -> None:
    while not done.wait(every):
        beat()
