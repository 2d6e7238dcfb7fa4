"""The base of every spec section (:class:`Section`; :class:`KindSection` for a section owned by an extension point),
the serializer that keeps a new field out of older specs' dumps, and the field types sections share.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SerializerFunctionWrapHandler, model_serializer

TaskName = Annotated[
    str,
    Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"),
]
Unit = Annotated[float, Field(ge=0.0, le=1.0)]
MAX_SEED = 2**32 - 1
"""The largest ``training.seed`` (NumPy's legacy seed range; leaves room for seed + offsets in 64 bits)."""
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]


class Section(BaseModel):
    """Base of every spec section: unknown keys are errors, values are checked on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def omit_when_default(*names: str) -> Any:
    """A section's wrap serializer that leaves out the fields ``names`` while they hold their defaults.

    A field added after specs were shipped goes in a section as ``_omit_defaults = omit_when_default("field")``:
    a spec that does not set it dumps (and hashes, :func:`taskgraph.train.run_checkpoint.spec_hash`) as before the
    field existed, so runs and checkpoints of older specs still resume.
    """

    def serialize(self: BaseModel, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if isinstance(data, dict):
            fields = type(self).model_fields
            for name in names:
                if getattr(self, name) == fields[name].get_default(call_default_factory=True):
                    data.pop(name, None)
        return data

    return model_serializer(mode="wrap")(serialize)


class KindSection(Section):
    """A section owned by an extension point: a registered kind plus that kind's own keys.

    The extra keys are validated by the parameter model the kind registered (see
    :mod:`taskgraph.registry`); the validated model is :attr:`params`.
    """

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    _params: Any = PrivateAttr(default=None)

    @property
    def params(self) -> Any:
        """The kind's validated parameter model (None for kinds with no own parameters)."""
        return self._params

    def own_fields(self) -> dict[str, Any]:
        """The keys given beyond the common ones (the kind's own parameters)."""
        return dict(self.model_extra or {})
