"""One file per update rule; ``sam_core.optim.registry`` lists them."""
