"""The spec's ``tasks``: one task's name, objective, labels, data source and generation keys."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_serializer, model_validator
from pydantic_core import PydanticCustomError

from taskgraph.spec.section import KindSection, Section, TaskName


class DataSpec(KindSection):
    """Where a task's examples come from: ``source`` plus that source's own parameters."""

    source: str


OBJECTIVES = ("classify", "generate")
GENERATIVE_KEYS = ("objective", "template", "choices", "max_new_tokens", "stop")  # dumped for generate tasks only


class TaskSpec(Section):
    """One task: a unique name, what it learns (``objective``), its labels, its data, an optional description.

    ``objective: classify`` (the default) is a classifier: ``num_labels`` (>= 2) and a head on the pooled
    hidden state. ``objective: generate`` is text-to-text on a causal or encoder-decoder LM base: the loss is on
    the target tokens, ``generate`` writes completions (:mod:`taskgraph.model.generation`). Its data gives an
    input and a target (``data.target`` names the target column; ``template`` builds the input from the row's
    fields, ``"Question: {question} Answer:"``), or, with ``choices`` (a classification cast as text-to-text),
    a label whose choice is the target; ``num_labels`` then follows ``choices`` (1 without choices).
    ``max_new_tokens`` bounds both a target (a longer one is a data error) and what ``generate`` writes;
    ``stop`` ends a completion at the first of these strings.

    ``family`` (e.g. ``sentiment``, ``topic``) is metadata for evaluation only: tasks of one family
    are the ground truth that ``taskgraph eval`` scores learned relations against. Routers never read it.
    """

    name: TaskName
    objective: Literal["classify", "generate"] = "classify"
    choices: list[Annotated[str, Field(min_length=1, max_length=1024)]] | None = Field(
        None, min_length=2, max_length=1024
    )
    num_labels: int | None = Field(None, validate_default=True)
    data: DataSpec | None = None
    description: str | None = None
    family: str | None = Field(None, min_length=1, max_length=64)
    template: str | None = Field(None, min_length=1, max_length=65_536)
    max_new_tokens: int = Field(32, ge=1, le=4096)
    stop: list[Annotated[str, Field(min_length=1, max_length=256)]] = Field(default_factory=list, max_length=32)

    @field_validator("choices")
    @classmethod
    def _distinct_choices(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            repeated = sorted({v for v in value if value.count(v) > 1})
            raise PydanticCustomError("choices", "{message}", {"message": f"choices must differ; repeated: {repeated}"})
        return value

    @field_validator("num_labels")
    @classmethod
    def _label_count(cls, value: int | None, info: ValidationInfo) -> int | None:
        if "objective" not in info.data:
            return value  # the objective is invalid: reported there
        objective = info.data["objective"]
        if objective == "classify":
            if value is None:
                raise PydanticCustomError("missing", "Field required")
            if value < 2:
                raise PydanticCustomError("greater_than_equal", "Input should be greater than or equal to 2")
            return value
        choices = info.data.get("choices")
        if objective != "generate" or (choices is None and "choices" not in info.data):
            return value  # objective or choices invalid: reported there
        count = len(choices) if choices is not None else 1
        if value is not None and value != count:
            raise PydanticCustomError(
                "num_labels",
                f"a generate task's num_labels follows its choices ({count}: "
                f"{'the choices' if choices else 'no choices, one label'}); drop num_labels",
            )
        return count

    @field_validator("template")
    @classmethod
    def _template_slots(cls, value: str | None) -> str | None:
        if value is not None:
            from taskgraph.spec.template import template_fields

            try:
                template_fields(value)
            except ValueError as exc:
                raise PydanticCustomError("template", "{message}", {"message": str(exc)}) from None
        return value

    @model_validator(mode="after")
    def _generative_keys(self) -> TaskSpec:
        if self.objective == "classify":
            given = [k for k in GENERATIVE_KEYS[1:] if k in self.model_fields_set]
            if given:
                raise PydanticCustomError(
                    "generative_key",
                    f"{', '.join(given)}: for objective: generate; this task "
                    "classifies (objective: classify, the default)",
                )
        return self

    @model_serializer(mode="wrap")
    def _classify_as_before(self, handler: Any) -> Any:
        data = handler(self)
        if isinstance(data, dict) and self.objective == "classify":
            for key in GENERATIVE_KEYS:  # a classify task dumps (and hashes) as before objectives existed
                data.pop(key, None)
        return data

    @property
    def generative(self) -> bool:
        return self.objective == "generate"
