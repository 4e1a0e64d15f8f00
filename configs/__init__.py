"""Sweep, profile and route configs (ml_collections ``get_config(arg)`` files).

Importable as a package (``from configs import test``) from the repository root; the launchers
read them by path (``--config=configs/test.py``).
"""
