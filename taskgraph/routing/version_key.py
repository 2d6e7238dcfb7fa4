"""Cache keys over tensors at their versions: what a cached result was computed from, compared by identity.

A tensor changed in place (an optimizer step, ``copy_``, a load into it) bumps its ``_version``; a tensor replaced
(a task added, a device move) is another object. So a key of ``(tensor, version)`` pairs and plain values matches a
later one exactly when every tensor is the same object at the same version and every value is equal — without
reading the tensors (no host synchronisation, no arithmetic).
"""

from __future__ import annotations

from collections.abc import Iterable

from torch import Tensor


def version_key(values: Iterable[object], tensors: Iterable[Tensor]) -> tuple[object, ...]:
    """``(*values, *(tensor, tensor._version))``."""
    return (*values, *((t, t._version) for t in tensors))


def same_key(a: tuple[object, ...] | None, b: tuple[object, ...]) -> bool:
    """Whether key ``a`` (None: nothing cached) matches ``b``: the same tensors at the same versions, equal values."""
    return (
        a is not None
        and len(a) == len(b)
        and all((x[0] is y[0] and x[1] == y[1]) if isinstance(x, tuple) else x == y for x, y in zip(a, b))
    )
