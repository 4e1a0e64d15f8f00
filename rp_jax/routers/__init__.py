"""Routers (sim, mlp, graph) and baselines."""
