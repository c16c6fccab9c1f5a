"""Quantiser laws (hypothesis) and converter behaviour."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from physim.instrument.converters import ADC, DAC, dequantize, max_code, quantize
from physim.instrument.specs import ADCSpec, DACSpec

#: x / lsb and code · lsb each round once: allow a few ulps of the full scale beyond ½ LSB
ULP_SLACK = 8 * np.finfo(float).eps

bits_st = st.integers(min_value=2, max_value=24)
lsb_st = st.floats(min_value=1e-9, max_value=1e3, allow_nan=False)
x_st = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@given(x=x_st, lsb=lsb_st, bits=bits_st)
@settings(max_examples=300, deadline=None)
def test_quantize_is_idempotent(x, lsb, bits):
    c1, _ = quantize(np.array([x]), lsb, bits)
    v1 = dequantize(c1, lsb)
    c2, sat = quantize(v1, lsb, bits)
    assert np.array_equal(c1, c2)
    assert sat == 0


@given(x=x_st, y=x_st, lsb=lsb_st, bits=bits_st)
@settings(max_examples=300, deadline=None)
def test_quantize_is_monotone(x, y, lsb, bits):
    lo, hi = min(x, y), max(x, y)
    c, _ = quantize(np.array([lo, hi]), lsb, bits)
    assert c[0] <= c[1]


@given(frac=st.floats(min_value=-1.0, max_value=1.0), lsb=lsb_st, bits=bits_st)
@settings(max_examples=300, deadline=None)
def test_error_is_at_most_half_an_lsb_inside_range(frac, lsb, bits):
    x = frac * max_code(bits) * lsb
    c, sat = quantize(np.array([x]), lsb, bits)
    err = abs(float(dequantize(c, lsb)[0]) - x)
    assert sat == 0
    assert err <= 0.5 * lsb + ULP_SLACK * max_code(bits) * lsb


def test_saturation_is_counted_and_clipped():
    c, sat = quantize(np.array([-10.0, 0.2, 10.0]), 1.0, 3)
    assert sat == 2
    assert c.tolist() == [-3, 0, 3]


def test_adc_codes_times_lsb_is_the_value_and_range_is_frozen():
    adc = ADC(ADCSpec(kind="adc", target="readout", bits=10))
    x = np.linspace(-1, 1, 50)[:, None] * np.array([1.0, 1e-6])
    r = adc.read("y", x)
    assert np.array_equal(r.codes * r.lsb, r.value)
    # per-channel binary auto range: each channel uses between 1/(2·headroom) and 1/headroom
    # of its codes, however different the channels' scales
    used = np.max(np.abs(r.codes), axis=0) / max_code(10)
    assert np.all((used > 0.39) & (used <= 0.8)), used
    r2 = adc.read("y", 3 * x)  # the range is fixed after the calibration shot
    assert r2.n_saturated > 0 and adc.n_saturated == r2.n_saturated


def test_dither_makes_sub_lsb_signals_visible_on_average():
    # a constant 0.3 LSB reads as 0 without dither and as 0.3 LSB on average with it
    n = 20000
    #: 5 standard errors of the mean of uniform dither (std 1/√12 LSB) over n samples
    bound = 5 / np.sqrt(12 * n)
    for dither, expect in ((False, 0.0), (True, 0.3)):
        adc = ADC(
            ADCSpec(kind="adc", target="readout", bits=8, full_scale=127.0, dither=dither, seed=1)
        )
        r = adc.read("x", np.full((n, 1), 0.3))
        assert abs(float(np.mean(r.value)) - expect) <= bound


def test_dac_quantises_per_group_on_binary_ranges():
    dac = DAC(DACSpec(kind="dac", target="parameters", bits=4, headroom=1.0))
    theta = np.array([1.0, 0.5, 1e-3, 2e-3])
    out = dac.write(theta, [slice(0, 2), slice(2, 4)])
    lsb = dac.lsb
    assert lsb[0] == lsb[1] and lsb[2] == lsb[3]  # one range per group
    full = lsb * max_code(4)
    assert np.array_equal(full, 2.0 ** np.round(np.log2(full)))  # powers of two
    assert np.all(np.abs(out - theta) <= 0.5 * lsb * (1 + 1e-12))
    assert out[0] == 1.0  # 1.0 sits exactly on its range


def test_adc_spec_rejects_bad_bits():
    with pytest.raises(ValueError, match="bits"):
        ADCSpec(kind="adc", target="readout", bits=1)


def test_a_parameter_dac_that_rounds_an_element_to_zero_is_named():
    """cmos-lc-4's 0.2 pF coupling capacitors share a group with its 1 pF tanks: a 3-bit DAC
    writes them as 0 pF. The error names the DAC, not a learning rate (nothing was learned);
    with 8 bits they are written and the chip builds."""
    from physim.instrument.hardware import Instrument
    from physim.instrument.specs import parse_nonideal
    from physim.specs import load_device

    device = load_device("cmos-lc-4")

    def dac(bits):
        return parse_nonideal({"sources": [{"kind": "dac", "target": "parameters", "bits": bits}]})

    with pytest.raises(
        ValueError,
        match=r"^dac/parameters wrote a θ the device cannot have "
        r"\(capacitance 'Cc\d' must be positive, got 0\.0\).*more bits",
    ) as err:
        Instrument(device, dac(3)).program(device.theta0)
    assert "learning rate" not in str(err.value)
    written = Instrument(device, dac(8)).program(device.theta0)
    assert np.all(written[device.slices()["capacitance"]] > 0)
