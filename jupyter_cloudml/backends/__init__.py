"""Backends: where jobs run. `base.Backend` is the interface; `local` and `kubernetes` implement it."""
