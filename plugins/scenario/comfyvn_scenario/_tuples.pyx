# cython: language_level=3
"""``new_tuple(cls, fields)``: what ``tuple.__new__(cls, fields)`` returns, for a tuple subclass ``cls``
(a named tuple) and an exact tuple ``fields``, built directly.

``tuple.__new__`` is a generic call: it packs its arguments into a tuple, slices ``cls`` off it,
parses the rest, copies ``fields`` into a temporary tuple and only then allocates. The runner builds
three named tuples per step, and that path was a sixth of a step. This does what CPython's
``tuple_subtype_new`` does after its checks -- allocate ``cls`` with room for the items through the
type's own ``tp_alloc`` (which tracks it for the garbage collector) and store a new reference to each
item -- and nothing else. The runner falls back to ``tuple.__new__`` where this is not compiled.
"""

from cpython.object cimport PyObject, PyTypeObject
from cpython.ref cimport Py_INCREF
from cpython.tuple cimport PyTuple_GET_ITEM, PyTuple_GET_SIZE, PyTuple_SET_ITEM

cdef extern from *:
    """
    static PyObject *comfyvn_tp_alloc(PyTypeObject *type, Py_ssize_t items) {
        return type->tp_alloc(type, items);
    }
    """
    object comfyvn_tp_alloc(PyTypeObject *type, Py_ssize_t items)


def new_tuple(type cls not None, tuple fields not None):
    if not issubclass(cls, tuple):
        raise TypeError(f"new_tuple: {cls.__name__} is not a tuple subclass")
    cdef Py_ssize_t count = PyTuple_GET_SIZE(fields), index
    made = comfyvn_tp_alloc(<PyTypeObject*>cls, count)
    for index in range(count):
        item = <object>PyTuple_GET_ITEM(fields, index)
        Py_INCREF(item)  # PyTuple_SET_ITEM steals a reference
        PyTuple_SET_ITEM(made, index, item)
    return made
