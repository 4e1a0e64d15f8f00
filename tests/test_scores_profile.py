"""scores profiles: standardised benchmark scores of the candidates' common benchmarks + a code."""

from __future__ import annotations

import numpy as np
import pytest

from rp_jax.data.routeprofile import load_routeprofile
from rp_jax.profiles import scores
from rp_jax.profiles.spec import parse_profile

NAN = np.nan


def _codes(num_models, dim, seed=0):
  return np.random.default_rng(seed).normal(size=(num_models, dim))


def test_scores_profile_standardises_the_candidates_common_benchmarks():
  # 4 models, 3 benchmarks; candidates 0..2. Benchmark 2 lacks candidate 1's score (dropped);
  # model 3 is no candidate and lacks benchmark 0 (gets the mean, 0).
  s = np.array([[10.0, 1.0, 5.0], [20.0, 2.0, NAN], [60.0, 6.0, 7.0], [NAN, 4.0, 9.0]], np.float32)
  p = scores.score_profiles(s, np.array([0, 1, 2]), _codes(4, 16))
  k = 3  # two common benchmarks + the constant
  z = p[:, :k] * np.sqrt(k)
  np.testing.assert_allclose(z[:3, :2].mean(0), 0.0, atol=1e-6)
  np.testing.assert_allclose(z[:3, :2].std(0), 1.0, rtol=1e-5)
  np.testing.assert_allclose(z[:, 2], 1.0, rtol=1e-6)
  assert z[3, 0] == 0.0  # missing score -> the candidates' mean
  # benchmark 1 of model 3: (4 - mean 3) / std of (1, 2, 6)
  np.testing.assert_allclose(z[3, 1], (4.0 - 3.0) / np.std([1.0, 2.0, 6.0]), rtol=1e-5)
  np.testing.assert_allclose(np.linalg.norm(p[:, k:], axis=1), scores.CODE_WEIGHT, rtol=1e-5)


def test_scores_profile_errors_are_clear():
  s = np.ones((3, 5), np.float32)
  with pytest.raises(ValueError, match="profile dimension above 6"):
    scores.score_profiles(s, np.array([0, 1]), _codes(3, 6))
  with pytest.raises(ValueError, match="no candidate models"):
    scores.score_profiles(s, np.array([], np.int64), _codes(3, 16))
  with pytest.raises(ValueError, match="3 models have scores but 2 have codes"):
    scores.score_profiles(s, np.array([0]), _codes(2, 16))


def test_scores_spec_parses_like_index():
  spec = parse_profile("scores")
  assert (spec.profile, spec.graph, spec.hops, spec.id) == ("scores", "", 0, "scores")


def test_newllm_scores_profile_of_the_held_out_model_reads_no_routing_task(data_dir):
  h = load_routeprofile(data_dir, "newllm")
  codes = _codes(h.num_models, 64)
  p = scores.score_profiles(h.scores_MxT, h.candidates, codes)
  common = np.flatnonzero(np.isfinite(h.scores_MxT[h.candidates]).all(axis=0))
  names = {h.task_names[t] for t in common}
  assert names == {"ifeval", "bbh", "math", "gpqa", "musr", "mmlu_pro"}
  assert not names & {h.task_names[t] for t in h.routing_tasks}
  # The held-out model is described by its scores: it differs from every candidate's block.
  held = int(h.held_out[0])
  block = p[:, : len(common) + 1]
  others = [int(m) for m in h.candidates if m != held]
  assert np.min(np.linalg.norm(block[others] - block[held], axis=1)) > 0.1
