"""The spec's ``model`` and ``adapters`` sections: the base transformer, and the LoRA inventory of every adapted
layer with the PEFT LoRA folders some adapters start from.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from taskgraph.spec.section import Section, TaskName, omit_when_default


class ModelSpec(Section):
    """The base transformer.

    Exactly one of ``path`` (a local directory, or ``package:<module>/<subdir>`` for a model that
    ships inside an installed Python package) and ``config`` (a transformers config dict with a
    ``model_type``; random init, for tests and the planted benchmark). ``quantize`` (``none``, ``int8``,
    ``nf4``) quantizes the frozen base at load; a checkpoint then holds no base weights and records it here.
    """

    path: str | None = None
    config: dict[str, Any] | None = None
    tokenizer: str | None = None  # a directory or package: path; default: the model's own
    max_length: int = Field(64, ge=1, le=8192)
    pooling: Literal["mean", "last", "cls"] = "mean"
    target_modules: list[str] = Field(default_factory=lambda: ["query", "value"], min_length=1)
    # encoder-decoder: a BERT2BERT EncoderDecoderModel whose encoder and decoder both start from the encoder at
    # ``path`` (for generate tasks when no pretrained decoder is at hand; :mod:`taskgraph.model.lm_base`)
    warm_start: Literal["encoder-decoder"] | None = None
    # the frozen base's linear layers quantized at load, the adapters in full precision on top (QLoRA; see
    # :mod:`taskgraph.model.quantize`): int8 weight-only or 4-bit NormalFloat, both through torchao
    quantize: Literal["none", "int8", "nf4"] = "none"

    @model_validator(mode="after")
    def _one_source(self) -> ModelSpec:
        if (self.path is None) == (self.config is None):
            raise ValueError("give exactly one of 'path' (a directory or package:...) and 'config'")
        if self.config is not None and not isinstance(self.config.get("model_type"), str):
            raise ValueError("config needs a 'model_type' string, e.g. 'bert', 'gpt2', 'llama'")
        if self.warm_start is not None and self.path is None:
            raise ValueError(
                "warm_start starts from pretrained weights: give 'path'; a config-built encoder-decoder "
                "is config: {model_type: encoder-decoder, encoder: {...}, decoder: {...}}"
            )
        return self

    _omit_defaults = omit_when_default("warm_start", "quantize")


class ImportSpec(Section):
    """A PEFT LoRA folder an adapter starts from: a ``skill`` slot of every inventory, or a ``task``'s own
    adapter (router ``private``). See :mod:`taskgraph.model.lora_import`; ``path`` is relative to the current folder."""

    path: str = Field(..., min_length=1)
    skill: int | None = Field(None, ge=0)
    task: TaskName | None = None

    @model_validator(mode="after")
    def _one_target(self) -> ImportSpec:
        if (self.skill is None) == (self.task is None):
            raise ValueError(
                "give exactly one of 'skill' (a slot of every layer's inventory, 0..K-1) and 'task' "
                "(the task whose own adapter it becomes; router private)"
            )
        return self


RENAMED_ADAPTER_KEY = "heads"  # adapters.heads (taskgraph 0.1) is adapters.splits


class AdaptersSpec(Section):
    """The LoRA inventory of every adapted layer: K skills of rank r whose input and output dimensions are cut into
    ``splits`` parts (H, MHR's "heads"; 1 for Poly); ``imports``: PEFT LoRA folders some adapters start from.

    ``splits`` was ``heads`` in taskgraph 0.1; that key is still read (the spec loader says it was renamed), so
    that "heads" means only the per-task classification heads.
    """

    rank: int = Field(8, ge=1)
    alpha: float = Field(16.0, gt=0)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    skills: int = Field(8, ge=1)
    splits: int = Field(1, ge=1)
    linearized: bool = False
    imports: list[ImportSpec] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _renamed_heads(cls, data: Any) -> Any:
        if isinstance(data, dict) and RENAMED_ADAPTER_KEY in data:
            if "splits" in data:
                raise ValueError("give adapters.splits only: adapters.heads is its old name (taskgraph 0.1)")
            data = {("splits" if k == RENAMED_ADAPTER_KEY else k): v for k, v in data.items()}
        return data

    @property
    def heads(self) -> int:
        """The 0.1 name of :attr:`splits`, for code written against it."""
        return self.splits

    _omit_defaults = omit_when_default("imports")
