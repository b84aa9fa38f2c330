"""The one guard against starting the paper recipe on a machine without a GPU (it would take days)."""

from __future__ import annotations

from kdlab.config import OptimConfig
from kdlab.errors import KdlabError


def require_device(optim: OptimConfig, what: str) -> None:
    """Refuse to start the paper recipe on a CPU-only machine (it would take days)."""
    import torch

    if optim.require_gpu and not torch.cuda.is_available():
        raise KdlabError(
            f"{what}: the train profile fine-tunes ModernBERT-base (149M parameters, 3 epochs on 79,278 "
            "complaints; about 80 minutes per arm on a T4) and needs a CUDA GPU, but none is visible. "
            "On this machine run the offline demo (`dvc exp run -S profile=demo`), your own complaints with "
            "tiny models (`dvc exp run -S profile=cpu -S data=local -S data.local_train=/path/complaints.csv`), "
            "or rebuild the reports from the published predictions (`dvc exp run -S profile=audit`); to force "
            "a CPU run anyway add -S optim.require_gpu=false."
        )
