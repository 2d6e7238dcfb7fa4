"""The hyper-parameters of a merge method, as pydantic models validated with every problem at once.

A value is a number, or ``"auto"``: chosen on the **validation** split from the method's grid (never on
test; :mod:`taskgraph.merge.select`). Every method has

* ``rank`` — re-factor the merged update of every module at this rank by truncated SVD (merge-then-SVD);
  None keeps the update's exact numerical rank. The ``subspace`` method reads it as its subspace rank.

and its own knobs on top (λ, density, p, ...). :func:`parse_params` reports unknown keys and bad values
together, naming the method and its parameters::

    MergeError: merge method 'ties': density: Input should be less than or equal to 1; p: method 'ties'
    takes no parameter 'p' (its parameters: density, density_grid, lambda, lambda_grid, rank)
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError

from taskgraph.errors import TaskgraphError, validation_problems

AUTO = "auto"
Auto = Literal["auto"]
LAMBDA_GRID = (
    0.1,
    0.2,
    0.3,
    0.5,
    0.7,
    1.0,
    1.5,
    2.0,
    3.0,
)  # task arithmetic: best λ falls as 1/T; TIES: near 1 or above
DENSITY_GRID = (0.2, 0.5, 0.8, 1.0)  # TIES keeps the top 20 % by default in its paper; 1: no trim
DROP_GRID = (0.1, 0.3, 0.6, 0.9)  # DARE's drop probability p


class MergeError(TaskgraphError):
    """A merge was asked for with bad sources, tasks, method or hyper-parameters."""


class MergeParams(BaseModel):
    """Base of every method's parameters: unknown keys are errors; ``rank`` is common to all.

    Attributes:
        rank: re-factor the merged update of every module at this rank (truncated SVD); None: exact.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    rank: int | None = Field(None, ge=1)

    def grid(self) -> list[dict[str, float]]:
        """Every combination of the ``auto`` values' grids (one empty dict when nothing is ``auto``).

        A parameter ``x`` whose value is ``"auto"`` takes its values from ``x_grid``; the names are the
        user-facing ones (``lambda``, not ``lambda_``).
        """
        axes: list[tuple[str, tuple[float, ...]]] = []
        for name, info in type(self).model_fields.items():
            value = getattr(self, name)
            key = info.alias or name
            if value == AUTO:
                axes.append((key, tuple(getattr(self, f"{name.rstrip('_')}_grid"))))
        if not axes:
            return [{}]
        names = [k for k, _ in axes]
        return [dict(zip(names, combo)) for combo in itertools.product(*(values for _, values in axes))]

    def fixed(self) -> dict[str, float]:
        """The hyper-parameters given as numbers (not ``auto``, not grids, not ``rank``), by user-facing name."""
        out: dict[str, float] = {}
        for name, info in type(self).model_fields.items():
            value = getattr(self, name)
            if (
                name in ("rank", "seed")
                or name.endswith("_grid")
                or value == AUTO
                or not isinstance(value, (int, float))
            ):
                continue
            out[info.alias or name] = float(value)
        return out

    def draw_seed(self) -> int:
        """The seed of the method's random draws (DARE's drops); 0 for methods that draw nothing."""
        return 0

    def values(self, point: Mapping[str, float]) -> dict[str, float]:
        """The full set of hyper-parameter values at a grid point: the fixed ones plus ``point``."""
        return {**self.fixed(), **point}


def _auto_or_number(low: float, high: float, *, open_low: bool = False, open_high: bool = False) -> Any:
    """A field type taking ``"auto"`` or a number in the interval (a numeric string is read as a number)."""
    interval = f"{'(' if open_low else '['}{low:g}, {high:g}{')' if open_high else ']'}"

    def check(value: Any) -> Any:
        if value == AUTO:
            return value
        try:
            if isinstance(value, bool):
                raise ValueError
            number = float(value)
        except (TypeError, ValueError):
            raise PydanticCustomError(
                "auto_or_number",
                "give 'auto' or a number in {interval}, got {value}",
                {"interval": interval, "value": repr(value)},
            ) from None
        inside = (low < number if open_low else low <= number) and (number < high if open_high else number <= high)
        if not inside or number != number:
            raise PydanticCustomError(
                "auto_or_number",
                "{value} lies outside {interval}; give 'auto' or a number in {interval}",
                {"interval": interval, "value": f"{number:g}"},
            )
        return number

    return Annotated[str | float, BeforeValidator(check)]


Lambda = _auto_or_number(0.0, 100.0)  # the merged update's scale λ
Share = _auto_or_number(0.0, 1.0, open_low=True)  # TIES' density: the share of each task's entries kept
Drop = _auto_or_number(0.0, 1.0, open_high=True)  # DARE's drop probability p


def _grid(low: float, high: float) -> Any:
    """A field type for a grid: a non-empty tuple of distinct numbers inside ``[low, high]``."""

    def check(values: tuple[float, ...]) -> tuple[float, ...]:
        if not values:
            raise ValueError("the grid is empty; give at least one value")
        if len(set(values)) != len(values):
            raise ValueError(f"the grid {list(values)} repeats a value")
        bad = [v for v in values if not low <= v <= high]
        if bad:
            raise ValueError(f"grid values {bad} lie outside [{low:g}, {high:g}]")
        return values

    return Annotated[tuple[float, ...], AfterValidator(check)]


LambdaGrid = _grid(0.0, 100.0)
ShareGrid = _grid(1e-6, 1.0)
DropGrid = _grid(0.0, 0.999)


class LambdaParams(MergeParams):
    """``lambda``: the scale λ of the merged update, a number or ``auto`` (chosen on validation from ``lambda_grid``)."""

    lambda_: Lambda = Field(AUTO, alias="lambda")
    lambda_grid: LambdaGrid = LAMBDA_GRID


def parse_params(method: str, model: type[MergeParams], given: Mapping[str, Any]) -> MergeParams:
    """``given`` validated by ``model``; MergeError listing every problem, and the method's parameters."""
    allowed = sorted(info.alias or name for name, info in model.model_fields.items())
    unknown = [k for k in given if k not in allowed and k not in model.model_fields]
    problems = [
        f"{k}: method {method!r} takes no parameter {k!r} (its parameters: {', '.join(allowed)})" for k in unknown
    ]
    try:
        params = model.model_validate({k: v for k, v in given.items() if k not in unknown})
    except ValidationError as exc:
        problems.insert(0, validation_problems(exc))
        params = None
    if problems or params is None:
        raise MergeError(f"merge method {method!r}: " + "; ".join(problems))
    return params
