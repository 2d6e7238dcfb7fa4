"""taskgraph: composable multi-task fine-tuning of transformers with graph-routed low-rank adapters.

The data flow, one folder per stage: ``spec`` → ``graph`` → ``routing`` → ``adapters`` → ``model``
→ ``train`` / ``metrics`` → ``merge`` / ``export``; ``cli`` calls only the public API.
"""

from taskgraph.errors import TaskgraphError
from taskgraph.spec import Spec, dump_spec, load_spec

__version__ = "0.1.0"

__all__ = ["Spec", "TaskgraphError", "dump_spec", "load_spec", "__version__"]
