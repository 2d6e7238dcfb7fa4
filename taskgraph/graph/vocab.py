"""Graph vocabulary: node and edge type names, in one place."""

TASK = "task"
ADAPTER = "adapter"
LAYER = "layer"
NODE_TYPES = (TASK, ADAPTER, LAYER)

TASK_RELATES_TASK = (TASK, "relates", TASK)
TASK_USES_ADAPTER = (TASK, "uses", ADAPTER)
ADAPTER_USED_BY_TASK = (ADAPTER, "used_by", TASK)
ADAPTER_IN_LAYER = (ADAPTER, "in", LAYER)
LAYER_HAS_ADAPTER = (LAYER, "has", ADAPTER)
ADAPTER_NEXT_ADAPTER = (ADAPTER, "next", ADAPTER)
ADAPTER_PREV_ADAPTER = (ADAPTER, "prev", ADAPTER)
EDGE_TYPES = (
    TASK_RELATES_TASK,
    TASK_USES_ADAPTER,
    ADAPTER_USED_BY_TASK,
    ADAPTER_IN_LAYER,
    LAYER_HAS_ADAPTER,
    ADAPTER_NEXT_ADAPTER,
    ADAPTER_PREV_ADAPTER,
)


def task_node(name: str) -> str:
    """The networkx node id of a task."""
    return f"task:{name}"


def adapter_node(layer: int, skill: int) -> str:
    """The networkx node id of skill ``skill`` of adapted layer ``layer``."""
    return f"adapter:{layer}:{skill}"


def layer_node(layer: int) -> str:
    """The networkx node id of adapted layer ``layer``."""
    return f"layer:{layer}"
