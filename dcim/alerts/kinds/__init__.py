"""Rule kinds: each module holds a family's YAML model and its evaluator."""
