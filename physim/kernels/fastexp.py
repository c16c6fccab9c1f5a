"""Re-export of :mod:`physim.fastexp` for the kernels that import it from here.

The fast exponentials are numerics below every package (the family kernels use them too, and
the families sit below the kernels, whose dispatch is generated from them); they live in
:mod:`physim.fastexp`.
"""

from physim.fastexp import (  # noqa: F401
    exp32_clamped,
    exp_clamped,
    exp_flushed,
    expm1_clamped,
    flush_to,
    like,
    log1p_unit,
    sigmoid,
    sigmoid32_flushed,
    sigmoid_flushed,
)
