"""One path from texts to logits for every model kdlab trains: encode, build, train, predict.

A student (stage ``train@<arm>``), the ModernBERT teacher and the Qwen3 + LoRA teacher (stage
``teacher``) differ only in what :class:`Recipe` holds: the model builder, the loss, the optimiser
recipe and what of the model a resume checkpoint keeps. Everything else is this one sequence: refuse
a GPU-less machine when the recipe needs one, tokenise every split once, build the model, train it
with :func:`kdlab.train.train_classifier` (resumable, keyed to the DVC stage), and predict raw logits
for each split to predict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np

from kdlab.checkpoint import ModelState
from kdlab.config import OptimConfig
from kdlab.train import Encoded, LossFn, TrainSummary


@dataclass(frozen=True)
class Texts:
    """Rows to tokenise: ``texts`` (N,), ``labels`` (N,) int and, for distillation, ``teacher_rows`` (N,)
    int indexing the teacher's train+test logits (None: no teacher)."""

    texts: Sequence[str]
    labels: np.ndarray
    teacher_rows: Optional[np.ndarray] = None


@dataclass(frozen=True)
class Recipe:
    """What differs between the models kdlab trains.

    ``stage``: the DVC stage (its resume checkpoints are keyed to the stage's fingerprint, and its
    progress lines carry the name). ``build(accelerator)`` returns a freshly initialised model (seeded;
    the accelerator says the precision, which a LoRA base is loaded in). ``loss_fn(logits, teacher,
    labels)``: see kdlab.losses. ``model_state``: what a checkpoint keeps of the model (the whole
    state_dict by default). ``prepare(split, encoded)`` returns the rows to use (a LoRA teacher gives empty
texts a token and refuses rows it would pool wrongly), before anything is built.
    """

    stage: str
    optim: OptimConfig
    build: Callable[[Any], Any]
    loss_fn: LossFn
    seed: int
    model_state: ModelState = field(default_factory=ModelState)
    prepare: Optional[Callable[[str, Encoded], Encoded]] = None


@dataclass(frozen=True)
class Fitted:
    """A trained model and its raw logits: ``logits[name]`` (N_name, C) float32 in the rows' order."""

    summary: TrainSummary
    model: Any
    accelerator: Any
    logits: dict[str, np.ndarray]


def fit_and_predict(recipe: Recipe, tokenizer, max_length: int, train: Texts, predict: Mapping[str, Texts],
                    teacher_logits: np.ndarray | None = None, log_path: str | Path | None = None) -> Fitted:
    """Train ``recipe``'s model on ``train`` and predict every split of ``predict`` (in that order).

    Texts are truncated to ``max_length`` tokens and padded with ``tokenizer.pad_token_id``;
    ``teacher_logits`` (N_teacher, C) are the soft targets ``train.teacher_rows`` index; the loss per
    step goes to ``log_path`` (CSV). Every process of an ``accelerate launch`` run returns; only the
    main one should write.
    """
    from kdlab.device import require_device
    from kdlab.fingerprint import stage_checkpointing
    from kdlab.train import encode, make_accelerator, predict_logits, train_classifier

    require_device(recipe.optim, recipe.stage)
    checkpointing = stage_checkpointing(recipe.stage, recipe.optim.checkpoint_every, recipe.model_state)
    train_set = encode(train.texts, train.labels, tokenizer, max_length, teacher_rows=train.teacher_rows)
    sets = {name: encode(t.texts, t.labels, tokenizer, max_length, teacher_rows=t.teacher_rows)
            for name, t in predict.items()}
    if recipe.prepare is not None:
        train_set = recipe.prepare("train", train_set)
        sets = {name: recipe.prepare(name, encoded) for name, encoded in sets.items()}
    accelerator = make_accelerator(recipe.optim)
    model = recipe.build(accelerator)
    summary, model = train_classifier(
        accelerator, model, train_set, recipe.optim, recipe.loss_fn, tokenizer.pad_token_id, recipe.seed,
        teacher_logits=teacher_logits, log_path=log_path, desc=recipe.stage, checkpointing=checkpointing,
    )
    logits = {name: predict_logits(accelerator, model, encoded, recipe.optim.eval_batch_size, tokenizer.pad_token_id,
                                   desc=f"{recipe.stage}: predict {name}")
              for name, encoded in sets.items()}
    return Fitted(summary, model, accelerator, logits)
