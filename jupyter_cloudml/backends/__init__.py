"""Backends: where jobs run. `base.Backend` is the interface every backend implements."""
