"""kdlab: what knowledge distillation transfers from a large teacher to a small student."""

__version__ = "0.1.0"
