"""Put routed LoRA inventories into any Hugging Face transformer by target-module names.

A target matches a linear module (``nn.Linear`` or GPT-2's ``Conv1D``) whose last name component
equals it (``query``, ``c_attn``, ``q_proj``), or, written ``re:<pattern>``, whose qualified name
``re.fullmatch``-es the pattern (``re:.*layer\\.[01]\\..*query``). Every base parameter is frozen;
the adapted modules are numbered in module order, which is their column l in the routing. A target that
matches no linear module while others do is a :class:`~taskgraph.errors.TaskgraphWarning` naming it: one list
written for several families (Llama's ``q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj`` on a
Phi-3, whose attention and MLP inputs are the fused ``qkv_proj`` and ``gate_up_proj``) adapts less than it says.
"""

from __future__ import annotations

import re
import warnings

from torch import nn

from taskgraph.adapters.context import RoutingContext
from taskgraph.adapters.routed_lora import ADAPTABLE, RoutedLoRALinear
from taskgraph.errors import ModelError, TaskgraphWarning
from taskgraph.spec.models import AdaptersSpec

REGEX_PREFIX = "re:"


class TargetMatcher:
    """Decides whether a qualified module name is one of the targets; a bad regex is a ModelError.

    Args:
        targets: last name components (``"query"``) or ``"re:<pattern>"`` full-match patterns.
    """

    def __init__(self, targets: list[str]) -> None:
        if not targets:
            raise ModelError("no target modules given: name at least one, e.g. ['query', 'value']")
        self.targets = list(targets)
        self._names = {t for t in targets if not t.startswith(REGEX_PREFIX)}
        self._patterns: dict[str, re.Pattern[str]] = {}  # target -> its compiled pattern
        for t in targets:
            if t.startswith(REGEX_PREFIX):
                try:
                    self._patterns[t] = re.compile(t[len(REGEX_PREFIX) :])
                except re.error as exc:
                    raise ModelError(f"target module {t!r} is not a valid regular expression: {exc}") from exc

    def __call__(self, qualified_name: str) -> bool:
        if qualified_name.rsplit(".", 1)[-1] in self._names:
            return True
        return any(p.fullmatch(qualified_name) for p in self._patterns.values())

    def unmatched(self, qualified_names: list[str]) -> list[str]:
        """The targets that match none of ``qualified_names``, in the order they were given."""
        last = {name.rsplit(".", 1)[-1] for name in qualified_names}

        def hit(target: str) -> bool:
            if target in self._patterns:
                return any(self._patterns[target].fullmatch(name) for name in qualified_names)
            return target in last

        return [t for t in self.targets if not hit(t)]

    def __repr__(self) -> str:
        return f"TargetMatcher({self.targets!r})"


def linear_module_names(model: nn.Module) -> list[str]:
    """Qualified names of every module a routed LoRA could wrap, in module order."""
    return [name for name, module in model.named_modules() if isinstance(module, ADAPTABLE)]


def inject_adapters(
    model: nn.Module,
    targets: list[str],
    adapters: AdaptersSpec,
    skills: int,
    context: RoutingContext,
) -> list[tuple[str, RoutedLoRALinear]]:
    """Freeze ``model`` and replace every targeted linear module by a :class:`RoutedLoRALinear`.

    Args:
        model: any ``nn.Module`` (a transformers model); modified in place.
        targets: target module names or ``re:`` patterns (``spec.model.target_modules``).
        adapters: rank, alpha, dropout, heads and linearized mode of every inventory.
        skills: K as decided by the router (``RouterClass.inventory_size(adapters.skills, T)``).
        context: the one :class:`RoutingContext` every layer reads.

    Returns:
        ``[(qualified name, layer)]`` in module order; ``layer.index`` is its position.
    """
    if routed_layers(model):
        raise ModelError("the model already has routed adapters; inject them once, into a fresh base model")
    matcher = TargetMatcher(targets)
    found = [(n, m) for n, m in model.named_modules() if n and isinstance(m, ADAPTABLE) and matcher(n)]
    if not found:
        names = linear_module_names(model)
        sample = sorted({n.rsplit(".", 1)[-1] for n in names})[:20]
        raise ModelError(
            f"no linear module of the {type(model).__name__} matches target_modules {targets}; "
            f"its linear modules are named {sample} (e.g. {names[:4]}); give one of those last names "
            f"or a 're:<pattern>' matched against the full name"
        )
    unmatched = matcher.unmatched([n for n, _ in found])
    if unmatched:
        adapted = sorted({n.rsplit(".", 1)[-1] for n, _ in found})
        named = sorted({n.rsplit(".", 1)[-1] for n in linear_module_names(model)})[:20]
        warnings.warn(
            f"target_modules {unmatched} match no linear module of the {type(model).__name__}; only {adapted} are "
            f"adapted (its linear modules are named {named})",
            TaskgraphWarning,
            stacklevel=2,
        )
    for p in model.parameters():
        p.requires_grad_(False)
    layers: list[tuple[str, RoutedLoRALinear]] = []
    for index, (name, base) in enumerate(found):
        layer = RoutedLoRALinear(
            base,
            index,
            rank=adapters.rank,
            alpha=adapters.alpha,
            heads=adapters.splits,
            skills=skills,
            dropout=adapters.dropout,
            context=context,
            linearized=adapters.linearized,
            name=name,
        )
        parent_name, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent_name), attr, layer)
        layers.append((name, layer))
    return layers


def routed_layers(model: nn.Module) -> list[tuple[str, RoutedLoRALinear]]:
    """The routed layers of ``model`` as ``[(qualified name of the wrapped module, layer)]``, by index."""
    layers = [(name, m) for name, m in model.named_modules() if isinstance(m, RoutedLoRALinear)]
    return sorted(layers, key=lambda item: item[1].index)


def adapter_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The trainable inventory parameters (every layer's ``A`` and ``B``), in layer order."""
    return [p for _, layer in routed_layers(model) for p in (layer.A, layer.B)]
