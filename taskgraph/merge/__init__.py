"""Merge methods (task arithmetic, TIES, DARE, ...) register in :data:`taskgraph.registry.MERGES` here."""
