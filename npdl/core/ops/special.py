"""Special functions NumPy lacks: the error function.

``erf`` uses the rational approximations of the Cephes library (S. L. Moshier, ndtr.c),
accurate to about 1e-16 relative in float64: x*T(x^2)/U(x^2) for |x| <= 1, and
1 - erfc(|x|) with erfc = exp(-x^2) P(x)/Q(x) for 1 < |x| < 8, exp(-x^2) R(x)/S(x) beyond.
"""
from __future__ import annotations

import numpy as np

from npdl.core.backend import get_array_module

_T = (9.60497373987051638749e0, 9.00260197203842689217e1, 2.23200534594684319226e3,
      7.00332514112805075473e3, 5.55923013010394962768e4)
_U = (1.0, 3.35617141647503099647e1, 5.21357949780152679795e2, 4.59432382970980127987e3,
      2.26290000613890934246e4, 4.92673942608635921086e4)
_P = (2.46196981473530512524e-10, 5.64189564831068821977e-1, 7.46321056442269912687e0,
      4.86371970985681366614e1, 1.96520832956077098242e2, 5.26445194995477358631e2,
      9.34528527171957607540e2, 1.02755188689515710272e3, 5.57535335369399327526e2)
_Q = (1.0, 1.32281951154744992508e1, 8.67072140885989742329e1, 3.54937778887819891062e2,
      9.75708501743205489753e2, 1.82390916687909736289e3, 2.24633760818710981792e3,
      1.65666309194161350182e3, 5.57535340817727675546e2)
_R = (5.64189583547755073984e-1, 1.27536670759978104416e0, 5.01905042251180477414e0,
      6.16021097993053585195e0, 7.40974269950448939160e0, 2.97886665372100240670e0)
_S = (1.0, 2.26052863220117276590e0, 9.39603524938001434673e0, 1.20489539808096656605e1,
      1.70814450747565897222e1, 9.60896809063285878198e0, 3.36907645100081516050e0)


def _poly(x: np.ndarray, coeffs) -> np.ndarray:
    """Horner evaluation, highest power first."""
    xp = get_array_module(x)
    out = xp.full_like(x, coeffs[0])
    for c in coeffs[1:]:
        out *= x
        out += c
    return out


def erf(x: np.ndarray) -> np.ndarray:
    """Elementwise error function, same dtype as ``x`` (computed in float64)."""
    xp = get_array_module(x)
    x64 = xp.asarray(x, dtype=np.float64)
    out = xp.empty_like(x64)
    ax = xp.abs(x64)
    small = ax <= 1.0
    if small.any():
        xs = x64[small]
        z = xs * xs
        out[small] = xs * _poly(z, _T) / _poly(z, _U)
    big = ~small
    if big.any():
        a = ax[big]
        e = xp.exp(-a * a)
        mid = a < 8.0
        erfc = xp.empty_like(a)
        erfc[mid] = e[mid] * _poly(a[mid], _P) / _poly(a[mid], _Q)
        far = ~mid
        erfc[far] = e[far] * _poly(a[far], _R) / _poly(a[far], _S)
        out[big] = xp.copysign(1.0 - erfc, x64[big])
    return out.astype(xp.asarray(x).dtype, copy=False)
