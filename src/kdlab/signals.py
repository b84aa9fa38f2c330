"""Stop a training run cleanly on SIGTERM (`kill`, a job scheduler, a container or notebook session being
stopped) or SIGINT (Ctrl-C): the loop finishes its step, saves a checkpoint (kdlab.checkpoint) and stops.
A process killed without a signal it can catch (SIGKILL, power loss) resumes from the last periodic one."""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator

from kdlab.errors import KdlabError


class TrainingStopped(KdlabError):
    """SIGTERM or SIGINT arrived: a checkpoint was saved and the run stopped (exit status 1)."""


class StopRequest:
    """Set by SIGTERM / SIGINT; the loop checks it after each step, saves, and stops."""

    def __init__(self):
        self.signal: str | None = None

    def requested(self, accelerator) -> bool:
        """Whether any process got a signal (several processes agree on the step: one all-reduce)."""
        if accelerator.num_processes == 1:
            return self.signal is not None
        import torch

        flag = torch.tensor(0.0 if self.signal is None else 1.0, device=accelerator.device)
        return bool(accelerator.reduce(flag, reduction="sum").item() > 0)


@contextlib.contextmanager
def stop_signals(enabled: bool = True) -> Iterator[StopRequest]:
    """While training: the first SIGTERM/SIGINT asks the loop to checkpoint and stop; a second one
    stops at once (KeyboardInterrupt; the last complete checkpoint is kept)."""
    request = StopRequest()
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield request
        return

    def handler(signum, frame):
        if request.signal is not None:
            raise KeyboardInterrupt
        request.signal = signal.Signals(signum).name

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield request
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
