"""The spec's ``training`` section: the multi-task loop and its optimizer groups' learning rates."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from taskgraph.spec.section import Section, Seed, omit_when_default


class LearningRates(Section):
    """Separate optimizer groups (routing wants a much larger step than the adapters)."""

    adapters: float = Field(1e-3, gt=0)
    router: float = Field(1e-2, gt=0)
    heads: float = Field(1e-3, gt=0)


class TrainingSpec(Section):
    """The multi-task loop."""

    steps: int = Field(600, ge=1)
    batch_size: int = Field(16, ge=1)
    lr: LearningRates = Field(default_factory=LearningRates)
    weight_decay: float = Field(0.0, ge=0)
    warmup_steps: int = Field(0, ge=0)
    grad_clip: float | None = Field(1.0, gt=0)
    sampling: Literal["uniform", "proportional", "temperature"] = "uniform"
    sampling_temperature: float = Field(2.0, gt=0)  # for sampling: temperature (p ∝ n^(1/T))
    seed: Seed = 0
    eval_every: int = Field(100, ge=1)
    checkpoint_every: int = Field(100, ge=1)
    keep_checkpoints: int = Field(2, ge=1)
    # data sensitivity (applied to the train split only; seeded by ``seed``; val / test stay whole and clean)
    train_examples: int | None = Field(None, ge=1)  # keep at most this many training examples per task
    label_noise: float = Field(0.0, ge=0, lt=1)  # share of training labels replaced by another label
    # training curves written beside log.jsonl, which stays the source of truth (taskgraph.train.tensorboard)
    report_to: list[Literal["tensorboard"]] = Field(default_factory=list)
    # torch.compile the model's forward in training steps (the same numbers as eager; see taskgraph.train.step)
    compile: bool = False
    # recompute each transformer block's activations in the backward instead of keeping them (the same gradients;
    # see taskgraph.model.grad_checkpointing)
    gradient_checkpointing: bool = False
    # several processes under torchrun: ddp, every process holds the whole model; fsdp, the frozen base's weights
    # sharded across them (see taskgraph.train.fsdp). One process trains unsharded either way
    parallel: Literal["ddp", "fsdp"] = "ddp"

    @model_validator(mode="after")
    def _compile_or_checkpointing(self) -> TrainingSpec:
        if self.compile and self.gradient_checkpointing:
            raise ValueError(
                "compile and gradient_checkpointing: choose one; torch.compile cannot trace a checkpointed block "
                "that recomputes under the batch's routing"
            )
        return self

    _omit_defaults = omit_when_default("compile", "gradient_checkpointing", "parallel")
