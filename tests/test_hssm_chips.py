"""HSSM cores as chips (physim.hssm.chips): the zero-valued chip is the ideal model bit for
bit, the measured gradient degrades with converter bits and Q, the input gradient is a
quantised record, and what makes no sense for an HRU core is refused."""

from __future__ import annotations

import numpy as np
import pytest

from physim.fidelity import fidelity
from physim.hssm.config import HSSMSpec, TrainSpec
from physim.hssm.model import HSSM
from physim.hssm.train import train

SPEC = HSSMSpec(n_blocks=2, hidden=4, ssm_dim=6, dropout=0.0)


def _file(tmp_path, name: str, body: str) -> str:
    path = tmp_path / f"{name}.toml"
    path.write_text(f'name = "{name}"\n' + body)
    return str(path)


ZERO = """
[[sources]]
kind = "dissipation"
quality_factor = inf
temperature = 0.0
[[sources]]
kind = "mismatch"
relative_dtod = 0.0
[[sources]]
kind = "flip_error"
gain_error = 0.0
"""


def _batch(seed=0, n=3, L=40):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, L, 2)), rng.integers(0, 2, size=n)


def test_zero_valued_chips_train_exactly_like_the_ideal_model(tmp_path):
    """Training through chips whose every source is zero gives the ideal run's losses and
    parameters bit for bit (the same kernel calls with the same operands)."""
    zero = _file(tmp_path, "zero", ZERO)
    base = TrainSpec(
        data="tiny",
        model=SPEC.model_copy(update={"hidden": 8}),
        n_steps=6,
        eval_every=3,
        batch_size=8,
        checkpoint_every=100,
    )
    ideal = train(base, tmp_path / "ideal", progress=False, plots=False)
    chip_spec = base.model_copy(update={"model": base.model.model_copy(update={"nonideal": zero})})
    chips = train(chip_spec, tmp_path / "chips", progress=False, plots=False)
    assert chips.model.chips is not None and len(chips.model.chips) == 2
    for k, v in ideal.params.items():
        assert np.array_equal(v, chips.params[k]), k
    assert ideal.metrics["val_loss"] == chips.metrics["val_loss"]
    assert [c["block"] for c in chips.metrics["chips"]] == [0, 1]
    assert len({c["seed"] for c in chips.metrics["chips"]}) == 2  # one chip per block


def _core_cosines(nonideal: str | None) -> list[float]:
    """Per block, the θ-scaled cosine of the measured core gradient vs the ideal BPTT twin
    (no mismatch here, so the as-built chips are the nominal ones)."""
    X, y = _batch()
    ideal = HSSM.build(SPEC, 2, 2, "classification", seed=1)
    params = ideal.init_params(1)
    _, _, gb = ideal.loss_and_grad(params, X, y, algo="bptt")
    model = HSSM.build(SPEC.model_copy(update={"nonideal": nonideal}), 2, 2, "classification", 1)
    _, _, g = model.loss_and_grad(params, X, y, algo="rhel")
    return [
        fidelity(g[f"blocks.{i}.core"], gb[f"blocks.{i}.core"], dev).cosine
        for i, dev in enumerate(ideal.devices)
    ]


def test_the_measured_gradient_degrades_monotonically_with_adc_bits(tmp_path):
    errors = []
    for bits in (4, 7, 10, 14):
        body = "".join(
            f'[[sources]]\nkind = "adc"\ntarget = "{t}"\nbits = {bits}\n'
            for t in ("readout", "accumulator")
        )
        cos = _core_cosines(_file(tmp_path, f"adc{bits}", body))
        errors.append(max(1.0 - c for c in cos))
    assert all(a > b for a, b in zip(errors, errors[1:], strict=False)), errors
    assert errors[-1] < 1e-4 < errors[0]


def test_the_measured_gradient_degrades_monotonically_with_q(tmp_path):
    errors = []
    for q in (30.0, 300.0, 3e3, 3e4):
        body = f'[[sources]]\nkind = "dissipation"\nquality_factor = {q}\n'
        errors.append(max(1.0 - c for c in _core_cosines(_file(tmp_path, f"q{q:g}", body))))
    assert all(a > b for a, b in zip(errors, errors[1:], strict=False)), errors


def test_the_input_gradient_is_a_record_quantised_by_the_readout_adc(tmp_path):
    """∂L/∂u leaves the chip through its readout ADC: every value is an integer number of the
    record's LSB, and it differs from the analog signal by at most half an LSB."""
    adc = _file(tmp_path, "adc8", '[[sources]]\nkind = "adc"\ntarget = "readout"\nbits = 8\n')
    X, _ = _batch()
    model = HSSM.build(SPEC.model_copy(update={"nonideal": adc}), 2, 2, "classification", 1)
    params = model.init_params(1)
    chip, dev = model.chips[0], model.devices[0]
    u = np.ascontiguousarray(np.random.default_rng(3).normal(size=(40, 3, SPEC.hidden)))
    theta = params["blocks.0.core"]
    phi, traj = chip.forward(theta, u)
    dphi = np.random.default_rng(4).normal(size=phi.shape)
    res = chip.echo(dev, theta, u, traj, dphi, eps=1e-2)
    lsb = chip.instrument.adc_readout.lsb["block0.grad_u"]
    codes = res.grad_u / lsb
    assert np.array_equal(codes, np.rint(codes)) and np.any(codes != 0)
    # the analog ∂L/∂u of the same echo on the ideal twin
    from physim.rhel import rhel_echo
    from physim.simulate import simulate

    twin = rhel_echo(dev, theta, u, simulate(dev, theta, u), dphi, eps=1e-2, input_grad=True)
    assert np.max(np.abs(res.grad_u - twin.grad_u) / lsb) <= 0.5 + 1e-9


def test_what_makes_no_sense_for_an_hru_core_is_refused(tmp_path):
    amp = _file(
        tmp_path,
        "amp",
        '[[sources]]\nkind = "amplifier"\nnoise_temperature = 4.0\nimpedance = 50.0\n'
        "frequency = 5e9\n",
    )
    with pytest.raises(ValueError, match="amplifier.noise_temperature"):
        HSSM.build(SPEC.model_copy(update={"nonideal": amp}), 2, 2, "classification", 1)
    hot = _file(
        tmp_path,
        "hot",
        '[[sources]]\nkind = "dissipation"\nquality_factor = 100.0\ntemperature = 300.0\n',
    )
    with pytest.raises(ValueError, match="dissipation.boltzmann"):
        HSSM.build(SPEC.model_copy(update={"nonideal": hot}), 2, 2, "classification", 1)
    ok = _file(
        tmp_path,
        "ok",
        '[[sources]]\nkind = "dissipation"\nquality_factor = 100.0\n'
        "temperature = 1e-4\nboltzmann = 1.0\n",
    )
    model = HSSM.build(SPEC.model_copy(update={"nonideal": ok}), 2, 2, "classification", 1)
    X, y = _batch()
    with pytest.raises(ValueError, match="algo = 'rhel'"):
        model.loss_and_grad(model.init_params(1), X, y, algo="bptt")
    with pytest.raises(ValueError, match="precision = 'float64'"):
        HSSMSpec(nonideal=ok, precision="float32")
    with pytest.raises(ValueError, match="one per block"):
        HSSM.build(SPEC.model_copy(update={"nonideal": [ok] * 3}), 2, 2, "classification", 1)


def test_rhel_on_mismatched_chips_is_exact_for_the_chips_as_built(tmp_path):
    """Chained RHEL measured on chips with 5 % fabrication mismatch equals the BPTT gradient of
    their as-built twins to round-off (LinHRU is quadratic: the centred echo is exact), while it
    differs from the ideal twin's: mismatch moves the target, it does not bias in-situ RHEL."""
    from physim.gradients import align
    from physim.hssm.chips import as_built_twin

    mm = _file(
        tmp_path,
        "mm",
        '[[sources]]\nkind = "mismatch"\nrelative_dtod = 0.05\ninput_dtod = 0.05\n',
    )
    X, y = _batch()
    chips = HSSM.build(SPEC.model_copy(update={"nonideal": mm}), 2, 2, "classification", 1)
    params = chips.init_params(1)
    _, _, measured = chips.loss_and_grad(params, X, y, algo="rhel")
    _, _, built = as_built_twin(chips).loss_and_grad(params, X, y, algo="bptt")
    ideal = HSSM.build(SPEC, 2, 2, "classification", 1)
    _, _, nominal = ideal.loss_and_grad(params, X, y, algo="bptt")
    for k in ("encoder.W", "blocks.0.core", "blocks.1.core"):
        scale = np.max(np.abs(built[k]))
        assert np.max(np.abs(measured[k] - built[k])) <= 1e-10 * scale, k
        assert 1.0 - align(measured[k], nominal[k])[0] > 1e-3, k
