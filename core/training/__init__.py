"""Training recipes, run directories and checkpoints (imports torch only in submodules)."""
