"""rp_jax: LLM profiles for routing in JAX/Flax (re-implementing RouteProfile, arXiv 2605.00180)."""

from rp_jax.types import TEST, TRAIN, DataError, History

__version__ = "0.1.0"
__all__ = ["TEST", "TRAIN", "DataError", "History", "__version__"]
