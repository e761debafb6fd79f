"""A stand-in for a device array library (CuPy) on the CPU: numpy's API over arrays that refuse to become numpy.

``StrictArray`` wraps a numpy array. Like a CuPy array, it raises on ``__array__`` (so ``np.asarray(a)``,
``np.dot(a, b)`` and every other stray ``np.`` call on it fails), it does not mix with numpy arrays in
arithmetic or in ``strict.<function>`` calls, and its reductions return 0-d arrays. What may cross to the host
crosses explicitly, as on CuPy: ``float(a)``/``bool(a)``/``int(a)`` of a one-element array, ``strict.asnumpy(a)``;
and ``strict.asarray``/``strict.array`` upload numpy data. ``strict.crossings`` counts the host copies
(``asnumpy``) and uploads (``asarray``/``array`` of numpy data), element by element, for tests that bound them.

``strict`` is the namespace (``strict.zeros``, ``strict.copyto``, ``strict.linalg.norm``, ``strict.float64``, ...):
every numpy function, called on the wrapped arrays and returning wrapped ones.
"""

from __future__ import annotations

import functools
import operator
from types import ModuleType

import numpy as np


class HostConversionError(TypeError):
    """A device array was about to become a numpy array without an explicit copy."""


def _unwrap(value, allow_numpy: bool = False):
    if isinstance(value, StrictArray):
        return value._a
    if isinstance(value, np.ndarray) and not allow_numpy:
        raise HostConversionError("a numpy array was mixed with a device array; copy it to the device first")
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(v, allow_numpy) for v in value)
    return value


def _wrap(value, originals=()):
    for original in originals:  # an out= argument comes back as the very array passed
        if isinstance(original, StrictArray) and value is original._a:
            return original
    if isinstance(value, np.ndarray):
        return StrictArray(value)
    if isinstance(value, np.generic) and isinstance(value, (np.number, np.bool_)):
        return StrictArray(np.asarray(value))  # reductions give 0-d device arrays, not host scalars
    if isinstance(value, tuple):
        return tuple(_wrap(v, originals) for v in value)
    return value


class _Proxy:
    """A numpy module, submodule or ufunc whose calls take and give StrictArrays."""

    def __init__(self, target, upload: bool = False):
        self._target, self._upload = target, upload

    def __call__(self, *args, **kwargs):
        originals = list(args) + list(kwargs.values())
        raw_args = [_unwrap(a, self._upload) for a in args]
        raw_kwargs = {k: _unwrap(v, self._upload) for k, v in kwargs.items()}
        if self._upload:
            strict.crossings += sum(np.size(a) for a in args[:1] if isinstance(a, np.ndarray))
        return _wrap(self._target(*raw_args, **raw_kwargs), originals)

    def __getattr__(self, name):
        attr = getattr(self._target, name)
        if isinstance(attr, (ModuleType, np.ufunc)) or callable(attr) and not isinstance(attr, type):
            return _Proxy(attr)
        return attr  # dtypes, constants, classes (np.float64, np.inf, np.errstate)


class _Namespace(_Proxy):
    """``strict``: numpy's namespace for StrictArrays, plus CuPy's explicit crossings."""

    def __init__(self):
        super().__init__(np)
        self.crossings = 0

    def asnumpy(self, a):
        if not isinstance(a, StrictArray):
            raise TypeError("asnumpy takes a device array")
        self.crossings += a._a.size
        return a._a.copy()

    def __getattr__(self, name):
        if name in ("asarray", "array", "ascontiguousarray"):
            return _Proxy(getattr(np, name), upload=True)
        return super().__getattr__(name)


strict = _Namespace()


def _binary(op, reflected=False):
    def method(self, other):
        other = _unwrap(other)
        return _wrap(op(other, self._a) if reflected else op(self._a, other))
    return method


def _inplace(op):
    def method(self, other):
        op(self._a, _unwrap(other))
        return self
    return method


class StrictArray:
    """A numpy array behind a device-like wall: no implicit conversion to numpy."""

    __slots__ = ("_a",)
    __array_ufunc__ = None  # numpy's ufuncs and scalars refuse it too (and defer to its reflected operators)

    def __init__(self, a: np.ndarray):
        object.__setattr__(self, "_a", a)

    def __array__(self, *args, **kwargs):
        raise HostConversionError("implicit conversion of a device array to numpy; use asnumpy() explicitly")

    def __array_namespace__(self, api_version=None):
        return strict

    # explicit scalar crossings, as CuPy allows them
    def __float__(self):
        return float(self._a.reshape(()))

    def __int__(self):
        return int(self._a.reshape(()))

    def __bool__(self):
        return bool(self._a.reshape(()))

    def __index__(self):
        return operator.index(self._a.reshape(()))

    def __len__(self):
        return len(self._a)

    def __repr__(self):
        return f"StrictArray({self._a!r})"

    def __getitem__(self, index):
        return _wrap(self._a[_unwrap(index)])

    def __setitem__(self, index, value):
        self._a[_unwrap(index)] = _unwrap(value)

    def __getattr__(self, name):
        if name.startswith("__") or name in ("base", "ctypes", "data"):
            # no __array_interface__/__array_struct__/buffer for numpy to read the memory through
            raise AttributeError(f"a device array has no {name!r} here")
        attr = getattr(self._a, name)
        if callable(attr):
            return lambda *args, **kwargs: _wrap(attr(*[_unwrap(a) for a in args],
                                                      **{k: _unwrap(v) for k, v in kwargs.items()}))
        return attr  # shape, dtype, size, ndim

    @property
    def T(self):
        return StrictArray(self._a.T)

    def __neg__(self):
        return StrictArray(-self._a)

    def __abs__(self):
        return StrictArray(abs(self._a))

    def __invert__(self):
        return StrictArray(~self._a)


for _name, _op in (("add", operator.add), ("sub", operator.sub), ("mul", operator.mul),
                   ("truediv", operator.truediv), ("pow", operator.pow), ("matmul", operator.matmul),
                   ("and", operator.and_), ("or", operator.or_), ("xor", operator.xor)):
    setattr(StrictArray, f"__{_name}__", _binary(_op))
    setattr(StrictArray, f"__r{_name}__", _binary(_op, reflected=True))
for _name, _op in (("add", operator.iadd), ("sub", operator.isub), ("mul", operator.imul),
                   ("truediv", operator.itruediv), ("pow", operator.ipow), ("and", operator.iand),
                   ("or", operator.ior)):
    setattr(StrictArray, f"__i{_name}__", _inplace(_op))
for _name, _op in (("lt", operator.lt), ("le", operator.le), ("gt", operator.gt), ("ge", operator.ge),
                   ("eq", operator.eq), ("ne", operator.ne)):
    setattr(StrictArray, f"__{_name}__", _binary(_op))
StrictArray.__hash__ = None


def to_strict(a) -> StrictArray:
    """Upload host data to the stand-in device."""
    return strict.asarray(np.asarray(a))


def _host(value):
    return strict.asnumpy(value) if isinstance(value, StrictArray) else value


def minimize_on_device(minimize):
    """``minimize`` with the iterate, the bounds and the optimiser's state on the stand-in device, for a ``fun``
    (and ``jac``, ``callback``) written for numpy: they get host copies of the points and their results are
    uploaded, as a host objective's would be by a device optimiser. The result comes back to the host."""

    @functools.wraps(minimize)
    def on_device(fun, x0, *, jac=True, bounds=None, callback=None, **kwargs):
        def host_fun(x):
            f, g = fun(_host(x)) if jac is True else (fun(_host(x)), None)
            return (f, to_strict(g)) if jac is True else f

        host_jac = jac if jac is True else (lambda x: to_strict(jac(_host(x))))
        if bounds is not None:
            bounds = tuple(b if b is None or np.ndim(b) == 0 or np.asarray(b).dtype == object else to_strict(b)
                           for b in bounds)

        def host_callback(info):
            shown = type(info)({k: _host(v) for k, v in info.items()})
            shown.__dict__.update(info.__dict__)  # state() still comes from the optimiser
            return callback(shown)

        x0 = to_strict(x0) if np.ndim(x0) else x0
        result = minimize(host_fun, x0, jac=host_jac, bounds=bounds,
                          callback=None if callback is None else host_callback, **kwargs)
        for key in ("x", "jac"):
            assert isinstance(result[key], StrictArray), f"the result's {key} left the device"
            result[key] = _host(result[key])
        return result

    return on_device
