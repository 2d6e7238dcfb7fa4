"""Routed LoRA inventories inside transformers: the layer, its math, the batch routing, injection."""

from taskgraph.adapters.arrow import arrow_routing
from taskgraph.adapters.context import BatchRouting, RoutingContext, distinct_tasks
from taskgraph.adapters.inject import (
    TargetMatcher,
    adapter_parameters,
    inject_adapters,
    linear_module_names,
    routed_layers,
)
from taskgraph.adapters.mixing import (
    add_open_delta,
    gather_rows,
    linearized_factors,
    lora_delta,
    mix_inventory_a,
    mix_inventory_b,
    select_skill_a,
    select_skill_b,
)
from taskgraph.adapters.routed_lora import ADAPTABLE, RoutedLoRALinear, linear_dims

__all__ = [
    "ADAPTABLE",
    "BatchRouting",
    "RoutedLoRALinear",
    "RoutingContext",
    "TargetMatcher",
    "adapter_parameters",
    "arrow_routing",
    "add_open_delta",
    "distinct_tasks",
    "gather_rows",
    "inject_adapters",
    "linear_dims",
    "linear_module_names",
    "linearized_factors",
    "lora_delta",
    "mix_inventory_a",
    "mix_inventory_b",
    "routed_layers",
    "select_skill_a",
    "select_skill_b",
]
