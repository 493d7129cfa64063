"""The `anytasktune` command: one small module per layer's commands. Nothing imports this package."""
