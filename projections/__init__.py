"""Read-model logic: how each case event changes a view. Pure; storage lives in ``infra``."""
