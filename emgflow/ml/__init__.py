"""Model training, evaluation and checkpoints for the two seed models (torch is imported by the submodules that need it)."""
