"""Hyperparameter tuning: search spaces from flags or Google's hptuning_config.yaml.

Import-light on purpose: Optuna is imported only by `optuna_glue`, which the study driver uses.
"""

from __future__ import annotations

from .hptuning_config import load_hptuning_config
from .space import grid_size, param_to_text, parse_param, trainer_flags

__all__ = ["grid_size", "load_hptuning_config", "param_to_text", "parse_param", "trainer_flags"]
