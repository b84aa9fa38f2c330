"""Progress lines a redirected log can show (Kaggle's saved versions, nohup, `dvc repro > log`).

tqdm draws its bar only on a terminal and hides it otherwise, which left a log silent for an hour per
arm. :class:`Progress` prints one line at least every ``every_seconds`` (at the first log row after
that much time) when standard output is not a terminal: step / total, the loss of the last log
window, examples per second since this process started, elapsed time and ETA.
"""

from __future__ import annotations

import dataclasses
import sys
import time

PROGRESS_SECONDS = 30.0


def speed_key(backbone, optim, max_length: int, processes: int) -> dict:
    """What a training run's examples/s depends on besides the device: the backbone, the batch size, the
    sequence length, the precision setting and the processes. ``kdlab plan`` reuses an earlier run's speed
    (logs/<stage>.json) for another arm only when this and the device name agree."""
    return {"backbone": dataclasses.asdict(backbone), "batch_size": optim.batch_size, "max_length": max_length,
            "precision": optim.precision, "processes": processes}


def duration(seconds: float) -> str:
    """``42s``, ``12m05s``, ``3h07m``."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Progress:
    """Lines for one training run; ``enabled=False`` (another process, or a terminal where tqdm's
    bar shows the same) keeps it quiet except for :meth:`say` on the main process."""

    def __init__(self, desc: str, total_steps: int, start_step: int, lines: bool, main: bool = True,
                 every_seconds: float = PROGRESS_SECONDS, stream=None):
        self.desc, self.total, self.start_step = desc, total_steps, start_step
        self.lines, self.main, self.every = lines and main, main, every_seconds
        self.stream = stream or sys.stdout
        self.started = self.last = time.perf_counter()
        self.examples = 0
        self.printed = False

    @staticmethod
    def for_stream(stream=None) -> bool:
        """Whether to print lines: the stream is not a terminal (where tqdm hides its bar)."""
        stream = stream or sys.stdout
        return not (hasattr(stream, "isatty") and stream.isatty())

    def say(self, message: str) -> None:
        if self.main:
            if self.lines:
                print(message, file=self.stream, flush=True)
            else:
                from tqdm.auto import tqdm

                tqdm.write(message, file=self.stream)

    def count(self, examples: int) -> None:
        self.examples += examples

    def logged(self, step: int, loss: float) -> None:
        """Call at each log row: prints when ``every_seconds`` passed, at the first row and at the end."""
        now = time.perf_counter()
        if not self.lines or (self.printed and now - self.last < self.every and step < self.total):
            return
        self.last, self.printed = now, True
        elapsed = now - self.started
        done = step - self.start_step
        rate = self.examples / elapsed if elapsed > 0 else float("nan")
        eta = elapsed / done * (self.total - step) if done > 0 else float("nan")
        print(f"{self.desc}: step {step:,}/{self.total:,} ({100 * step / self.total:.1f} %), loss {loss:.4f}, "
              f"{rate:,.1f} examples/s, elapsed {duration(elapsed)}, ETA {duration(eta) if eta == eta else '?'}",
              file=self.stream, flush=True)

    def seconds(self) -> float:
        return time.perf_counter() - self.started
