"""Loaders that turn files (or a generator) into a validated History."""
