"""HSSM training: bit-identical resume, logs and metrics, optimiser, configuration errors."""

import json
from types import SimpleNamespace

import h5py
import numpy as np
import pytest
from pydantic import ValidationError

from physim.hssm.config import ConfigError, HSSMSpec, TrainSpec, parse_train_spec
from physim.hssm.model import HSSM
from physim.hssm.train import batch_indices, check_memory, load_init, train
from physim.logs import provenance
from physim.logs import read_training as read_log
from physim.optim import AdamState, adam_update, clip_by_global_norm

#: Adam's first bias-corrected step is exactly lr·g/(|g| + eps); only round-off remains
TOL_ADAM_FIRST = 1e-15


def _dataset(n=30, length=16, seed=0):
    """A separable synthetic classification task: the class is the sign of channel 0's mean."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, length, 2))
    y = (X[:, :, 0].mean(axis=1) > 0).astype(np.int64)
    X[:, :, 0] += np.where(y, 0.5, -0.5)[:, None]
    k1, k2 = int(0.7 * n), int(0.85 * n)
    return SimpleNamespace(
        X_train=X[:k1],
        y_train=y[:k1],
        X_val=X[k1:k2],
        y_val=y[k1:k2],
        X_test=X[k2:],
        y_test=y[k2:],
        task="classification",
        n_classes=2,
        n_channels=2,
        source=f"test:sign-of-mean(n={n}, L={length}, seed={seed})",
    )


def _spec(**kw):
    base = dict(
        data="tiny",
        model=HSSMSpec(n_blocks=2, hidden=4, ssm_dim=3, dropout=0.1),
        lr=1e-2,
        batch_size=5,
        eval_batch_size=8,
        n_steps=6,
        eval_every=2,
        checkpoint_every=3,
    )
    base.update(kw)
    return TrainSpec(**base)


@pytest.mark.parametrize(
    ("algo", "norm"), [("rhel", "layer"), ("bptt", "layer"), ("rhel", "batch")]
)
def test_resume_is_bit_identical(tmp_path, algo, norm):
    # with a batch norm the running statistics travel in the checkpoint too
    model = HSSMSpec(n_blocks=2, hidden=4, ssm_dim=3, dropout=0.1, norm=norm)
    ds, spec = _dataset(), _spec(algo=algo, model=model)
    full = train(spec, tmp_path / "full", dataset=ds, progress=False, plots=False)
    part = train(spec, tmp_path / "part", dataset=ds, progress=False, stop_after=4)
    assert part.metrics["steps"] == 4 and not part.metrics["finished"]
    # the interrupted run continues from its step-4 checkpoint (written at the interruption)
    resumed = train(spec, tmp_path / "part", dataset=ds, progress=False, plots=False)
    for k, v in full.params.items():
        assert np.array_equal(v, resumed.params[k]), k
    a, b = read_log(tmp_path / "full/train_log.h5"), read_log(tmp_path / "part/train_log.h5")
    for key in ("loss", "grad_norm", "param_grad_norm", "accuracy", "val_accuracy"):
        assert np.array_equal(a[key]["step"], b[key]["step"]), key
        assert np.array_equal(a[key]["value"], b[key]["value"]), key
    assert full.metrics["test_accuracy"] == resumed.metrics["test_accuracy"]


def test_resume_on_other_data_is_refused_naming_both(tmp_path):
    # `tiny` resolves to what is installed: the same configuration can name other data later
    spec = _spec()
    train(spec, tmp_path / "r", dataset=_dataset(seed=0), progress=False, stop_after=3)
    other = _dataset(seed=1)
    with pytest.raises(ConfigError, match=r"trained on test:sign-of-mean.*seed=0.*now.*seed=1"):
        train(spec, tmp_path / "r", dataset=other, progress=False, plots=False)
    res = train(spec, tmp_path / "r", dataset=_dataset(seed=0), progress=False, plots=False)
    assert res.metrics["dataset"] == _dataset(seed=0).source
    assert (
        json.loads((tmp_path / "r/metrics.json").read_text())["dataset"] == res.metrics["dataset"]
    )
    with h5py.File(tmp_path / "r/train_log.h5") as f:
        assert provenance(f)["dataset"] == res.metrics["dataset"]


def test_resume_reads_the_checkpoints_configuration_through_todays_schema(tmp_path):
    """A checkpoint written before a TrainSpec field existed (its configuration lacks
    lr_decay) resumes, bit-identically; one of another configuration is refused, naming the
    field that differs."""
    ds, spec = _dataset(), _spec()
    full = train(spec, tmp_path / "full", dataset=ds, progress=False, plots=False)
    train(spec, tmp_path / "r", dataset=ds, progress=False, stop_after=3)
    ckpt = tmp_path / "r" / "checkpoint.npz"

    def rewrite(edit):
        with np.load(ckpt) as z:
            arrays = {k: z[k] for k in z.files}
        meta = json.loads(str(arrays["meta"]))
        config = json.loads(meta["config"])
        edit(config)
        meta["config"] = json.dumps(config)
        arrays["meta"] = np.array(json.dumps(meta))
        with open(ckpt, "wb") as f:
            np.savez(f, **arrays)

    rewrite(lambda c: c.pop("lr_decay"))
    resumed = train(spec, tmp_path / "r", dataset=ds, progress=False, plots=False)
    for k, v in full.params.items():
        assert np.array_equal(v, resumed.params[k]), k
    rewrite(lambda c: c.update(lr=c["lr"] * 2))
    with pytest.raises(ConfigError, match=r"different configuration \(differs in lr\)"):
        train(spec, tmp_path / "r", dataset=ds, progress=False, plots=False)


def test_resume_after_mid_interval_interrupt_truncates_log(tmp_path):
    # stop between checkpoints: the log holds steps the checkpoint does not; resume drops them
    ds, spec = _dataset(), _spec(checkpoint_every=100)
    train(spec, tmp_path / "r", dataset=ds, progress=False, stop_after=2)
    res = train(spec, tmp_path / "r", dataset=ds, progress=False, plots=False)
    log = read_log(tmp_path / "r/train_log.h5")
    assert list(log["loss"]["step"]) == list(range(1, 7))
    assert res.metrics["finished"]


def test_training_writes_outputs_and_learns(tmp_path):
    ds = _dataset(n=60)
    spec = _spec(n_steps=40, eval_every=10, checkpoint_every=20, patience=None, lr=2e-2)
    train(spec, tmp_path, dataset=ds, progress=False)
    for name in ("metrics.json", "train_log.h5", "training.png", "checkpoint.npz", "best.npz"):
        assert (tmp_path / name).exists(), name
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["steps"] == 40 and "test_accuracy" in m and "val_loss" in m
    loss = read_log(tmp_path / "train_log.h5")["loss"]["value"]
    # the task is linearly separable: the mean loss of the last 10 steps drops clearly
    assert loss[-10:].mean() < 0.8 * loss[:10].mean()


def test_early_stopping(tmp_path):
    ds = _dataset()
    spec = _spec(lr=1e-9, n_steps=50, eval_every=1, patience=2, checkpoint_every=50)
    res = train(spec, tmp_path, dataset=ds, progress=False, plots=False)
    assert res.metrics["early_stopped"] and res.metrics["steps"] < 50


def test_regression_target_mismatch_is_explained(tmp_path):
    ds = _dataset()
    ds.task, ds.y_train, ds.y_val, ds.y_test = (
        "regression",
        ds.y_train * 1.0,
        ds.y_val * 1.0,
        ds.y_test * 1.0,
    )
    with pytest.raises(ConfigError, match="set model.output_step = 16"):
        train(_spec(), tmp_path, dataset=ds, progress=False)


def test_batches_cover_an_epoch_once():
    idx = np.concatenate([batch_indices(3, k, 20, 5) for k in range(4)])
    assert sorted(idx) == list(range(20))
    assert not np.array_equal(batch_indices(3, 0, 20, 5), batch_indices(3, 4, 20, 5))


def test_adam_first_step_and_clipping():
    p = {"a": np.array([1.0, -2.0, 3.0])}
    g = {"a": np.array([0.5, -4.0, 1e-3])}
    st = AdamState.zeros(p)
    adam_update(p, g, st, lr=0.1)
    expected = np.array([1.0, -2.0, 3.0]) - 0.1 * g["a"] / (np.abs(g["a"]) + 1e-8)
    np.testing.assert_allclose(p["a"], expected, rtol=0, atol=TOL_ADAM_FIRST)
    clipped, norm = clip_by_global_norm({"a": np.array([3.0, 4.0])}, 1.0)
    assert norm == 5.0
    np.testing.assert_allclose(clipped["a"], [0.6, 0.8], rtol=1e-15)


def test_config_errors():
    with pytest.raises(ConfigError, match="unknown dataset 'mnist'; choose one of scp1"):
        parse_train_spec({"data": "mnist"})
    with pytest.raises(ConfigError, match="learning rate lr must be > 0, got -0.001"):
        parse_train_spec({"lr": -1e-3})
    with pytest.raises(ConfigError, match="ssm_dim = P .* must be >= 1, got 0"):
        parse_train_spec({"model": {"ssm_dim": 0}})
    with pytest.raises(ConfigError, match="Extra inputs are not permitted"):
        parse_train_spec({"learning_rate": 1e-3})
    spec = parse_train_spec({"data": "adding", "memory_budget_gb": 1.0})
    with pytest.raises(
        ConfigError, match=r"sequence length 50000 needs about .* GB .* allows L <="
    ):
        check_memory(spec, 50_000)
    assert check_memory(spec, 896) < 1e9


def test_init_from_an_earlier_run(tmp_path):
    ds = _dataset()
    first = train(_spec(), tmp_path / "a", dataset=ds, progress=False, plots=False)
    # one step at a negligible learning rate (Adam moves each entry by <= ~lr) from the
    # earlier run's best parameters
    spec = _spec(init_from=str(tmp_path / "a"), n_steps=1, lr=1e-12)
    second = train(spec, tmp_path / "b", dataset=ds, progress=False, plots=False)
    best = np.load(tmp_path / "a/best.npz")
    for k, v in second.params.items():
        np.testing.assert_allclose(v, best[f"p/{k}"], rtol=0, atol=1e-9)
    assert first.params.keys() == second.params.keys()


def test_lr_warmup_scales_the_first_steps(tmp_path):
    """Adam's first update moves each entry by lr·g/(|g| + eps): with lr_warmup = 4 the first
    step is at lr/4, so every parameter moves a quarter as far as without the warm-up."""
    ds = _dataset()
    plain = train(_spec(n_steps=1), tmp_path / "a", dataset=ds, progress=False, plots=False)
    init = plain.model.init_params(_spec().seed)
    warm = train(
        _spec(n_steps=1, lr_warmup=4), tmp_path / "b", dataset=ds, progress=False, plots=False
    )
    moved = 0
    for k, p0 in init.items():
        if k.endswith(("mean", "var")):  # running statistics, not optimised
            continue
        d_plain, d_warm = plain.params[k] - p0, warm.params[k] - p0
        np.testing.assert_allclose(d_warm, d_plain / 4, rtol=1e-6, atol=1e-15, err_msg=k)
        moved += int(np.count_nonzero(np.abs(d_plain) > 1e-4))
    assert moved > 20  # the comparison is not between unmoved entries
    with pytest.raises(ValidationError):
        _spec(lr_warmup=-1)


def test_cosine_decay_follows_half_a_cosine(tmp_path):
    """lr_decay = "cosine": after a warm-up of 2 steps, lr·(1 + cos(π·j/8))/2 for the j-th of
    the remaining 8 steps, 0 at the last; and in a run of 2 steps the first moves every
    parameter half as far as a constant lr would (cos(π/2) = 0) and the second not at all."""
    from physim.hssm.train import learning_rate

    spec = _spec(n_steps=10, lr=0.3, lr_warmup=2, lr_decay="cosine")
    got = [learning_rate(spec, s) for s in range(10)]
    want = [0.15, 0.3] + [0.3 * (1 + np.cos(np.pi * j / 8)) / 2 for j in range(1, 9)]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    assert learning_rate(_spec(lr=0.3), 7) == 0.3  # no decay by default
    ds = _dataset()
    plain = train(_spec(n_steps=1), tmp_path / "a", dataset=ds, progress=False, plots=False)
    init = plain.model.init_params(_spec().seed)
    cos = train(
        _spec(n_steps=2, lr_decay="cosine"), tmp_path / "b", dataset=ds, progress=False, plots=False
    )
    for k, p0 in init.items():
        if not k.endswith(("mean", "var")):
            np.testing.assert_allclose(
                cos.params[k] - p0, (plain.params[k] - p0) / 2, rtol=1e-6, atol=1e-15, err_msg=k
            )
    with pytest.raises(ValidationError):
        _spec(lr_decay="linear")


def test_init_from_errors(tmp_path):
    ds = _dataset()
    with pytest.raises(ConfigError, match="init_from: .* does not exist"):
        train(_spec(init_from=str(tmp_path / "nowhere")), tmp_path / "x", dataset=ds)
    train(_spec(), tmp_path / "a", dataset=ds, progress=False, plots=False)
    wider = _spec(init_from=str(tmp_path / "a"), model=HSSMSpec(n_blocks=2, hidden=5, ssm_dim=3))
    with pytest.raises(ConfigError, match="encoder.W has shape"):
        train(wider, tmp_path / "b", dataset=ds, progress=False)
    deeper = _spec(init_from=str(tmp_path / "a"), model=HSSMSpec(n_blocks=3, hidden=4, ssm_dim=3))
    with pytest.raises(ConfigError, match="different architecture"):
        train(deeper, tmp_path / "c", dataset=ds, progress=False)


def test_precise_norm_statistics_change_evaluation_not_training(tmp_path):
    """norm_stat_batches only resets the running statistics before evaluations: the training
    losses are the same to the bit, the validation numbers are those of the recomputed ones."""
    model = HSSMSpec(n_blocks=2, hidden=4, ssm_dim=3, dropout=0.0, norm="batch")
    ds = _dataset()
    train(_spec(model=model), tmp_path / "a", dataset=ds, progress=False, plots=False)
    spec = _spec(model=model, norm_stat_batches=2)
    precise = train(spec, tmp_path / "b", dataset=ds, progress=False, plots=False)
    a, b = read_log(tmp_path / "a/train_log.h5"), read_log(tmp_path / "b/train_log.h5")
    assert np.array_equal(a["loss"]["value"], b["loss"]["value"])
    assert not np.array_equal(a["val_loss"]["value"], b["val_loss"]["value"])
    # the final running statistics are the mean of the last evaluation's batches
    from physim.hssm.model import HSSM
    from physim.hssm.train import stat_batches

    net = HSSM.build(model, 2, 2, "classification", spec.seed)
    p = {k: v.copy() for k, v in precise.params.items()}
    net.recompute_norm_stats(p, stat_batches(spec, spec.n_steps, ds.X_train))
    for k in net.buffer_names():
        np.testing.assert_allclose(p[k], precise.params[k], rtol=1e-12)


def test_precise_norm_statistics_config_errors():
    with pytest.raises(ValidationError, match="norm_stat_batches = 2 .* model.norm = 'layer'"):
        _spec(norm_stat_batches=2)


def test_init_dt_scale_needs_init_from(tmp_path):
    with pytest.raises(ValidationError, match="init_dt_scale = 0.5 .* init_from is not set"):
        _spec(init_dt_scale=0.5)
    first = train(_spec(), tmp_path / "a", dataset=_dataset(), progress=False, plots=False)
    spec = _spec(init_from=str(tmp_path / "a"), init_dt_scale=0.5, n_steps=1)
    model = HSSM.build(spec.model, 2, 2, "classification", spec.seed)
    start = {k: v.copy() for k, v in load_init(spec.init_from, first.params).items()}
    model.scale_dt(start, 0.5)
    # the run's step 1 starts from exactly those parameters: its first loss equals theirs
    train(spec, tmp_path / "b", dataset=_dataset(), progress=False, plots=False)
    ds = _dataset()
    idx = batch_indices(spec.seed, 0, ds.X_train.shape[0], spec.batch_size)
    want, _, _ = model.loss_and_grad(
        start,
        ds.X_train[idx],
        ds.y_train[idx],
        algo="rhel",
        rng=np.random.default_rng([spec.seed, 2, 0]),
    )
    assert read_log(tmp_path / "b/train_log.h5")["loss"]["value"][0] == want
