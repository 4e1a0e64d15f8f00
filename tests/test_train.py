"""The generic training loop (rp_jax.train) on a toy regression problem."""

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import pytest

from rp_jax import train as tr

NUM_POINTS, DIM = 40, 3


def toy_pieces(num_val=8, per_batch=8, empty_batches=0):
  """Linear regression y = x @ w_true, batches of points; the loss's weight is the batch size."""
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(NUM_POINTS, DIM)), jnp.float32)
  y = x @ jnp.asarray([1.0, -2.0, 0.5])
  num_fit = NUM_POINTS - num_val
  num_batches = tr.ceil_div(num_fit, per_batch) + empty_batches

  def init(key, profile_AxD):
    del profile_AxD
    return {"w": 0.1 * jax.random.normal(key, (DIM,))}

  def split(key):
    return tr.query_split(key, NUM_POINTS, num_val)

  def batches(key, sp):
    return tr.shuffled_batches(key, sp.train_idx, per_batch, num_batches)

  def loss(params, profile_AxD, batch, key, hparams, sp):
    del profile_AxD, key, hparams, sp
    ids, valid = batch
    err = jnp.where(valid, (x[ids] @ params["w"] - y[ids]) ** 2, 0.0)
    w = valid.sum().astype(jnp.float32)
    return err.sum() / jnp.maximum(w, 1.0), w

  def validate(params, profile_AxD, sp, hparams):
    del profile_AxD
    return -jnp.mean((x[sp.val_idx] @ params["w"] - y[sp.val_idx]) ** 2)

  pieces = tr.Pieces(init, split, batches, loss, validate)
  return pieces, num_batches


HP = {"learning_rate": jnp.float32(0.05), "weight_decay": jnp.float32(0.0)}


@pytest.fixture(scope="module")
def toy():
  pieces, nb = toy_pieces()
  # A constant rate (cosine_alpha=1), so that test_empty_batches_are_no_ops can reuse this run.
  config = tr.TrainConfig(epochs=15, num_batches=nb, clip_norm=1.0, cosine_alpha=1.0)
  return pieces, jax.jit(tr.make_train(pieces, config))


def test_loss_decreases_and_metrics_shapes(toy):
  _, train = toy
  params, m = train(jnp.zeros((2, 2)), jax.random.key(0), HP)
  assert m["train_loss"].shape == m["val_score"].shape == (15,)
  assert float(m["train_loss"][-1]) < 0.2 * float(m["train_loss"][0])
  assert np.isfinite(np.asarray(m["train_loss"])).all()
  # The kept parameters are those of the best validation epoch (ties keep the earlier epoch).
  best = int(m["best_epoch"])
  assert best == int(np.argmax(np.asarray(m["val_score"])))
  assert float(m["best_score"]) == pytest.approx(float(m["val_score"][best]))
  assert np.isfinite(np.asarray(params["w"])).all()


def test_deterministic_and_seed_dependent(toy):
  _, train = toy
  a = train(jnp.zeros((2, 2)), jax.random.key(3), HP)
  b = train(jnp.zeros((2, 2)), jax.random.key(3), HP)
  c = train(jnp.zeros((2, 2)), jax.random.key(4), HP)
  np.testing.assert_array_equal(np.asarray(a[0]["w"]), np.asarray(b[0]["w"]))
  np.testing.assert_array_equal(np.asarray(a[1]["train_loss"]), np.asarray(b[1]["train_loss"]))
  assert not np.array_equal(np.asarray(a[1]["train_loss"]), np.asarray(c[1]["train_loss"]))


def test_hparams_are_traced_and_used(toy):
  _, train = toy
  slow = {**HP, "learning_rate": jnp.float32(1e-4)}
  _, m_fast = train(jnp.zeros((2, 2)), jax.random.key(0), HP)
  _, m_slow = train(jnp.zeros((2, 2)), jax.random.key(0), slow)
  assert float(m_slow["train_loss"][-1]) > 2 * float(m_fast["train_loss"][-1])
  assert train._cache_size() == 1  # a new learning rate did not recompile


def test_empty_batches_are_no_ops(toy):
  _, train = toy
  pieces_e, nb_e = toy_pieces(empty_batches=2)
  # Same constant rate, so the two runs differ only by the two all-padding batches per epoch.
  cfg_e = tr.TrainConfig(epochs=15, num_batches=nb_e, clip_norm=1.0, cosine_alpha=1.0)
  a, ma = train(jnp.zeros((2, 2)), jax.random.key(0), HP)
  b, mb = jax.jit(tr.make_train(pieces_e, cfg_e))(jnp.zeros((2, 2)), jax.random.key(0), HP)
  np.testing.assert_allclose(np.asarray(a["w"]), np.asarray(b["w"]), rtol=1e-6)
  np.testing.assert_allclose(np.asarray(ma["train_loss"]), np.asarray(mb["train_loss"]), rtol=1e-6)


def test_without_validation_the_last_epoch_is_kept():
  pieces, nb = toy_pieces(num_val=0)
  cfg = tr.TrainConfig(epochs=4, num_batches=nb)
  _, m = jax.jit(tr.make_train(pieces, cfg))(jnp.zeros((2, 2)), jax.random.key(0), HP)
  assert np.isnan(np.asarray(m["val_score"])).all()
  assert int(m["best_epoch"]) == 3


def test_query_split_and_batches():
  sp = tr.query_split(jax.random.key(0), 20, 3)
  sp2 = tr.query_split(jax.random.key(0), 20, 3)
  np.testing.assert_array_equal(np.asarray(sp.val_idx), np.asarray(sp2.val_idx))
  assert sp.val_idx.shape == (3,) and sp.train_idx.shape == (17,)
  both = np.concatenate([np.asarray(sp.val_idx), np.asarray(sp.train_idx)])
  assert sorted(both.tolist()) == list(range(20))
  ids, valid = tr.shuffled_batches(jax.random.key(1), sp.train_idx, 5, 4)
  assert ids.shape == valid.shape == (4, 5)
  assert int(valid.sum()) == 17
  assert sorted(np.asarray(ids)[np.asarray(valid)].tolist()) == sorted(
    np.asarray(sp.train_idx).tolist()
  )
  assert tr.num_val_queries(1012, 0.1) == 101
  assert tr.num_val_queries(5, 0.0) == 0
  with pytest.raises(ValueError, match="val_fraction"):
    tr.num_val_queries(10, 1.0)
  with pytest.raises(ValueError, match="cosine_alpha"):
    tr.TrainConfig(epochs=1, num_batches=1, cosine_alpha=2.0)


def test_cosine_schedule_reaches_alpha():
  cfg = tr.TrainConfig(epochs=2, num_batches=5, clip_norm=0.0, cosine_alpha=0.1)
  tx = tr.make_optimizer(cfg, {"learning_rate": 1.0, "weight_decay": 0.0})
  params = {"w": jnp.zeros(2)}
  state = tx.init(params)
  # inject_hyperparams keeps the (traced) hyperparameters in the state.
  assert float(state.hyperparams["learning_rate"]) == 1.0
  steps = []
  for _ in range(cfg.total_steps + 1):
    u, state = tx.update({"w": jnp.ones(2)}, state, params)
    steps.append(float(u["w"][0]))
  # A constant gradient makes Adam's normalised step 1, so the update is -lr x schedule(count).
  assert steps[0] == pytest.approx(-1.0, rel=1e-3)
  assert steps[-1] == pytest.approx(-0.1, rel=1e-3)
  assert all(a <= b for a, b in zip(steps, steps[1:], strict=False))


def test_make_optimizer_is_adamw_cosine():
  cfg = tr.TrainConfig(epochs=3, num_batches=2, clip_norm=0.5, cosine_alpha=0.2)
  hp = {"learning_rate": 0.1, "weight_decay": 0.01}
  a = tr.make_optimizer(cfg, hp)
  b = tr.adamw_cosine(
    total_steps=6, learning_rate=0.1, weight_decay=0.01, clip_norm=0.5, cosine_alpha=0.2
  )
  params = {"w": jnp.ones(3)}
  g = {"w": jnp.asarray([3.0, -1.0, 0.5])}
  sa, sb = a.init(params), b.init(params)
  for _ in range(3):
    (ua, sa), (ub, sb) = a.update(g, sa, params), b.update(g, sb, params)
    np.testing.assert_array_equal(np.asarray(ua["w"]), np.asarray(ub["w"]))


def _quadratic(params, target):
  err = params["w"] - target
  return jnp.sum(err**2) + jnp.sum(params["b"] ** 2), jnp.sum(err)


def test_gradient_step_modes():
  params = {"w": jnp.asarray([1.0, -2.0, 3.0]), "b": jnp.asarray(0.5)}
  target = jnp.asarray([0.0, 1.0, 2.0])
  tx = tr.adamw_cosine(total_steps=4, learning_rate=0.1, weight_decay=0.0, clip_norm=1.0)
  state = tx.init(params)
  (p1, s1), (loss, aux, grads) = tr.gradient_step(_quadratic, tx, params, state, target)
  assert float(loss) == pytest.approx(1 + 9 + 1 + 0.25)
  assert float(aux) == pytest.approx(1 - 3 + 1)
  np.testing.assert_allclose(np.asarray(grads["w"]), [2.0, -6.0, 2.0])
  assert int(s1.count) == 1 and float(p1["w"][1]) > -2.0  # moved towards the target
  # update_if False: parameters and optimiser state untouched.
  (p2, s2), _ = tr.gradient_step(_quadratic, tx, params, state, target, update_if=lambda a: a > 9)
  assert jax.tree.all(jax.tree.map(np.array_equal, (p2, s2), (params, state)))
  # update_scale 0: parameters untouched, the state advances.
  (p3, s3), _ = tr.gradient_step(_quadratic, tx, params, state, target, update_scale=0.0)
  assert jax.tree.all(jax.tree.map(np.array_equal, p3, params)) and int(s3.count) == 1
  # Flat mode: the same step on one raveled vector.
  flat, unravel = jax.flatten_util.ravel_pytree(params)
  (pf, _), (loss_f, _, g_f) = tr.gradient_step(
    _quadratic, tx, flat, tx.init(flat), target, unravel=unravel
  )
  assert float(loss_f) == float(loss) and g_f.shape == flat.shape
  np.testing.assert_allclose(
    np.asarray(pf), np.asarray(jax.flatten_util.ravel_pytree(p1)[0]), rtol=1e-6
  )


def test_validation_every_k_epochs(toy):
  pieces, train = toy
  _, nb = toy_pieces()
  cfg = tr.TrainConfig(epochs=15, num_batches=nb, clip_norm=1.0, cosine_alpha=1.0, val_every=4)
  _, m = jax.jit(tr.make_train(pieces, cfg))(jnp.zeros((2, 2)), jax.random.key(0), HP)
  _, full = train(jnp.zeros((2, 2)), jax.random.key(0), HP)
  due = np.array([(e + 1) % 4 == 0 or e == 14 for e in range(15)])
  v = np.asarray(m["val_score"])
  assert np.isnan(v[~due]).all()
  # The validated epochs score as in the every-epoch run; the kept one is their best.
  np.testing.assert_allclose(v[due], np.asarray(full["val_score"])[due], rtol=1e-5)
  assert int(m["best_epoch"]) == int(np.flatnonzero(due)[np.argmax(v[due])])
