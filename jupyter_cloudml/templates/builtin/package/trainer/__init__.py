"""Trainers of the built-in templates: copy one into a notebook cell to change it."""
