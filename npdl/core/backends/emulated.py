"""The emulated device: NumPy arrays behind a wall, so host/device mix-ups fail on a CPU.

A GPU array library (CuPy) refuses to mix its arrays with NumPy's: ``numpy.asarray(gpu_array)``
raises, ``gpu_array + numpy_array`` raises, and a NumPy function handed a GPU array does not
run on the GPU. Without a GPU such mistakes stay invisible, so the test suite runs on this
stand-in (``NPDL_TEST_DEVICE=emulated``):

* ``EmulatedArray`` holds an ndarray out of reach. Its operators, indexing and methods work
  as an ndarray's do (results are again ``EmulatedArray``; reductions give 0-d arrays, as
  CuPy's do), but when *npdl's own code* converts it implicitly (``np.asarray``), hands it
  to a NumPy function (``np.exp(a)``) or mixes it with a plain ndarray (``a + host``), a
  ``HostDeviceError`` names the npdl line. Code outside npdl (the tests) is let through:
  ``np.testing`` gets the host values, and a host operand joins the device array (the result
  stays on the device), so tests compare and perturb results without ceremony.
  Explicit transfers are allowed, as on CuPy: ``.get()``, ``.item()``, ``float(a)``.
* ``xp`` is the stand-in for the ``cupy`` module: NumPy's functions on unwrapped arrays,
  minus the names CuPy 14 does not have (``vecdot``, ``errstate``...), and with CuPy's
  restrictions (no ``where=`` on ufunc calls, no host arrays as arguments but to
  ``asarray``/``array``), so what passes here also runs on CuPy.
"""
from __future__ import annotations

import sys
import types

import numpy

# numpy names that cupy 14.2 does not have (``dir(numpy)`` minus ``dir(cupy)``, public names);
# the stand-in refuses them so code that runs here also runs on CuPy
CUPY_MISSING = frozenset("""
    False_ ScalarType True_ asmatrix block bmat busday_count busday_offset busdaycalendar bytes_
    char character clongdouble complex256 core ctypeslib datetime64 datetime_as_string
    datetime_data dtypes einsum_path emath errstate f2py flexible float128 frompyfunc fromregex
    geomspace get_include getbufsize geterr geterrcall histogram_bin_edges info insert is_busday
    isnat little_endian longdouble ma matrix matvec memmap nanpercentile nanquantile ndenumerate
    nditer nested_iters object_ polyder polydiv polyint rec recarray record sctypeDict setbufsize
    seterr seterrcall show_runtime spacing str_ strings test timedelta64 typecodes unstack vecdot
    vecmat void random
""".split())
# ``random`` is there too: npdl draws device random numbers through its backend, never xp.random

_TRANSFERS = frozenset({"asarray", "array", "asanyarray"})  # host -> device, allowed with host input
_HERE = __name__


class HostDeviceError(TypeError):
    """npdl code mixed a device array with the host (NumPy) where CuPy would refuse it."""


def _npdl_caller() -> str | None:
    """'file:line' of the nearest npdl frame that called into NumPy or this module, else None.

    Frames of numpy itself and of this module are skipped: ``np.testing`` called from a test
    is not npdl's doing, but ``np.linalg.norm`` called from npdl is.
    """
    f = sys._getframe(2)
    while f is not None:
        name = f.f_globals.get("__name__", "")
        if name == _HERE or name == "numpy" or name.startswith("numpy."):
            f = f.f_back
            continue
        if name == "npdl" or name.startswith("npdl."):
            return f"{f.f_code.co_filename}:{f.f_lineno}"
        return None
    return None


def _refuse_or_none(what: str) -> None:
    where = _npdl_caller()
    if where is not None:
        raise HostDeviceError(f"{what} at {where}: a device array met the host; use "
                              "xp = get_array_module(...) and xp.* (or backend.to_host / to_device "
                              "for a deliberate transfer)")


def _host(x):
    """x with every EmulatedArray replaced by its ndarray (lists/tuples/dicts walked)."""
    if type(x) is EmulatedArray:
        return x._a
    if type(x) in (list, tuple):
        return type(x)(_host(i) for i in x)
    if type(x) is dict:
        return {k: _host(v) for k, v in x.items()}
    return x


def _unwrap(x, what: str, seen: dict):
    """Device arguments to ndarrays for NumPy; a plain ndarray here is a mix-up (refused)."""
    t = type(x)
    if t is EmulatedArray:
        seen[id(x._a)] = x
        return x._a
    if t is numpy.ndarray:
        raise HostDeviceError(f"{what}: a host ndarray {x.shape} {x.dtype} given to a device "
                              "operation; move it first (xp.asarray / backend.to_device)")
    if t is list or t is tuple:
        return t(_unwrap(i, what, seen) for i in x)
    return x


def _wrap(r, seen: dict | None = None):
    """NumPy results back behind the wall: arrays and scalars become EmulatedArray (0-d for scalars)."""
    t = type(r)
    if t is numpy.ndarray:
        if seen:
            orig = seen.get(id(r))
            if orig is not None:    # an ``out=`` argument or an input returned as is: same object
                return orig
        return EmulatedArray(r)
    if isinstance(r, numpy.generic):
        return EmulatedArray(numpy.asarray(r))
    if t is tuple or t is list:
        return t(_wrap(i, seen) for i in r)
    return r


class EmulatedArray:
    """An ndarray on the emulated device (see the module docstring). ``.get()`` copies it to the host."""

    __slots__ = ("_a",)
    __hash__ = None

    def __init__(self, array: numpy.ndarray):
        self._a = array

    # ---- the wall ----------------------------------------------------------------------
    def __array__(self, dtype=None, copy=None):
        _refuse_or_none("implicit conversion of a device array to NumPy (np.asarray / np.array)")
        a = self._a if dtype is None else self._a.astype(dtype, copy=False)
        return a.copy() if copy else a

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if method == "__call__" and not kwargs and len(inputs) == 2 and any(
                isinstance(i, numpy.generic) for i in inputs):
            # a NumPy scalar's operator with a device array (``np.float32(2) * a``): CuPy takes
            # NumPy scalars as Python numbers, so this is the device op, not a host call
            return _wrap(ufunc(*_host(inputs)))
        _refuse_or_none(f"numpy.{ufunc.__name__}{'' if method == '__call__' else '.' + method} "
                        "called on a device array")
        return _wrap(getattr(ufunc, method)(*_host(inputs), **_host(kwargs)))

    def __array_function__(self, func, types_, args, kwargs):
        _refuse_or_none(f"{func.__module__}.{func.__name__} called on a device array")
        return _wrap(func(*_host(args), **_host(kwargs)))

    def get(self) -> numpy.ndarray:
        """A host copy (CuPy's ``ndarray.get``)."""
        return self._a.copy()

    # ---- attributes ----------------------------------------------------------------------
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    strides = property(lambda self: self._a.strides)
    flags = property(lambda self: self._a.flags)
    T = property(lambda self: EmulatedArray(self._a.T))
    device = property(lambda self: "emulated")

    @property
    def base(self):
        b = self._a.base
        return None if b is None else EmulatedArray(b) if type(b) is numpy.ndarray else b

    def __getattr__(self, name):
        if name.startswith("__") or name in ("data", "ctypes", "getfield", "resize", "setfield", "setflags",
                                             "to_device", "tofile", "dump", "dumps"):
            raise AttributeError(f"the emulated device array has no attribute {name!r}")
        attr = getattr(self._a, name)
        if not callable(attr):
            return _wrap(attr)

        def method(*args, **kwargs):
            seen = {id(self._a): self}
            what = f"ndarray.{name}"
            return _wrap(attr(*_unwrap(args, what, seen),
                              **{k: _unwrap(v, what, seen) for k, v in kwargs.items()}), seen)

        method.__name__ = name
        return method

    # explicit host values (a synchronisation on a GPU, allowed as CuPy allows it)
    def item(self, *args):
        return self._a.item(*args)

    def tolist(self):
        return self._a.tolist()

    def __bool__(self):
        return bool(self._a)

    def __float__(self):
        return float(self._a)

    def __int__(self):
        return int(self._a)

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        for i in range(len(self._a)):
            yield EmulatedArray(self._a[i])

    def __repr__(self):
        return "emulated:" + repr(self._a)

    __str__ = __repr__

    def __format__(self, spec):
        return format(self._a, spec) if self._a.ndim == 0 else repr(self)

    def __copy__(self):
        return EmulatedArray(self._a.copy())

    def __deepcopy__(self, memo):
        return EmulatedArray(self._a.copy())

    def __reduce__(self):
        return (EmulatedArray, (self._a,))

    # ---- indexing ------------------------------------------------------------------------
    def __getitem__(self, index):
        return _wrap(self._a[self._index(index)])

    def __setitem__(self, index, value):
        self._a[self._index(index)] = self._operand(value, "item assignment")

    def _index(self, index):
        if type(index) is tuple:
            return tuple(self._index_item(i) for i in index)
        return self._index_item(index)

    def _index_item(self, i):
        if type(i) is EmulatedArray:
            return i._a
        if type(i) is numpy.ndarray:
            _refuse_or_none("indexing a device array with a host ndarray")
        return i

    def _operand(self, other, what):
        t = type(other)
        if t is EmulatedArray:
            return other._a
        if t is numpy.ndarray or t is list:
            _refuse_or_none(f"{what} mixing a device array with a host {t.__name__}")
            return numpy.asarray(other)
        return other

    def __iadd__(self, o):
        self._a += self._operand(o, "+=")
        return self

    def __isub__(self, o):
        self._a -= self._operand(o, "-=")
        return self

    def __imul__(self, o):
        self._a *= self._operand(o, "*=")
        return self

    def __itruediv__(self, o):
        self._a /= self._operand(o, "/=")
        return self

    def __ipow__(self, o):
        self._a **= self._operand(o, "**=")
        return self

    def __neg__(self):
        return EmulatedArray(-self._a)

    def __pos__(self):
        return EmulatedArray(+self._a)

    def __abs__(self):
        return EmulatedArray(abs(self._a))

    def __invert__(self):
        return EmulatedArray(~self._a)


def _binary(op: str, reflected: bool):
    impl = getattr(numpy.ndarray, op)

    def f(self, other):
        t = type(other)
        if t is EmulatedArray:
            other = other._a
        elif t is numpy.ndarray or t is list:
            _refuse_or_none(f"{op} mixing a device array with a host {t.__name__}")
            other = numpy.asarray(other)     # outside npdl (a test): the host operand comes along
        elif not (isinstance(other, (int, float, complex, bool, numpy.generic))):
            return NotImplemented        # a Tensor (or anything else) gets its reflected turn
        return _wrap(impl(self._a, other))

    f.__name__ = op
    return f


for _op in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul",
            "and", "or", "xor", "lshift", "rshift", "lt", "le", "gt", "ge", "eq", "ne"):
    setattr(EmulatedArray, f"__{_op}__", _binary(f"__{_op}__", False))
    if _op not in ("lt", "le", "gt", "ge", "eq", "ne"):
        setattr(EmulatedArray, f"__r{_op}__", _binary(f"__r{_op}__", True))


# ---- the stand-in for the cupy module ------------------------------------------------------
class _Ufunc:
    """A NumPy ufunc with CuPy's call signature (``out``, ``dtype``, ``casting``; no ``where``)."""

    def __init__(self, uf):
        self._uf = uf
        self.__name__ = uf.__name__
        self.nin, self.nout = uf.nin, uf.nout

    def _run(self, method, args, kwargs):
        if "where" in kwargs and method == "__call__":
            raise TypeError(f"xp.{self.__name__}(..., where=...): CuPy ufuncs take no `where`; "
                            "use xp.copyto(out, value, where=mask) or xp.where")
        what = f"xp.{self.__name__}"
        seen: dict = {}
        args = _unwrap(args, what, seen)
        kwargs = {k: _unwrap(v, what, seen) for k, v in kwargs.items()}
        return _wrap(getattr(self._uf, method)(*args, **kwargs), seen)

    def __call__(self, *args, **kwargs):
        return self._run("__call__", args, kwargs)

    def reduce(self, *args, **kwargs):
        return self._run("reduce", args, kwargs)

    def accumulate(self, *args, **kwargs):
        return self._run("accumulate", args, kwargs)

    def reduceat(self, *args, **kwargs):
        return self._run("reduceat", args, kwargs)

    def outer(self, *args, **kwargs):
        return self._run("outer", args, kwargs)

    def at(self, *args, **kwargs):
        return self._run("at", args, kwargs)


def _function(name: str, fn):
    transfer = name in _TRANSFERS
    what = f"xp.{name}"

    def call(*args, **kwargs):
        seen: dict = {}
        if transfer:   # host -> device is what these are for; a transfer copies, as on a GPU
            first = args[0] if args else None
            if type(first) is EmulatedArray:
                seen[id(first._a)] = first
            r = fn(*_host(args), **_host(kwargs))
            if type(first) is not EmulatedArray and isinstance(first, numpy.ndarray) and numpy.shares_memory(r, first):
                r = r.copy()
            return _wrap(r, seen)
        args = _unwrap(args, what, seen)
        kwargs = {k: _unwrap(v, what, seen) for k, v in kwargs.items()}
        return _wrap(fn(*args, **kwargs), seen)

    call.__name__ = name
    call.__doc__ = f"numpy.{name} on the emulated device."
    return call


class _Namespace(types.ModuleType):
    """``xp`` (or ``xp.linalg``...): NumPy's names, wrapped, minus what CuPy lacks."""

    def __init__(self, name: str, source):
        super().__init__(name)
        self._source = source

    def __getattr__(self, name):
        if name.startswith("__") or (self._source is numpy and name in CUPY_MISSING):
            raise AttributeError(f"the emulated device (like CuPy) has no {self.__name__}.{name}")
        value = getattr(self._source, name)
        if name == "ndarray":
            value = EmulatedArray
        elif isinstance(value, numpy.ufunc):
            value = _Ufunc(value)
        elif isinstance(value, types.ModuleType):
            value = _Namespace(f"{self.__name__}.{name}", value)
        elif isinstance(value, type):
            pass                                  # dtypes (xp.float32), finfo, iinfo
        elif callable(value):
            value = _function(name, value)
        setattr(self, name, value)                # cached: the next lookup is a plain attribute
        return value


xp = _Namespace("npdl_emulated_xp", numpy)
