# cython: language_level=3
"""``new_tuple(cls, fields)``: what ``tuple.__new__(cls, fields)`` returns, for a tuple subclass ``cls``
(a named tuple) and an exact tuple ``fields``, built directly.

``tuple.__new__`` is a generic call: it packs its arguments into a tuple, slices ``cls`` off it,
checks that ``cls`` is safe to build as a tuple, parses the rest, copies ``fields`` into a temporary
tuple and only then allocates. The runner builds three named tuples per step, and that path was a
sixth of a step. This does what CPython's ``tuple_subtype_new`` does at the end -- allocate ``cls``
with room for the items through the type's own ``tp_alloc`` (which tracks it for the garbage
collector) and store a new reference to each item.

The safety check stays CPython's own: the first time a class comes, it is built by ``tuple.__new__``,
which refuses a class that is not a tuple subclass or whose instances are not laid out as a tuple's
(``os.stat_result`` keeps hidden fields; building one without them would crash when it is freed), and
only a class it accepted takes the direct way afterwards. The runner falls back to ``tuple.__new__``
where this is not compiled.
"""

from cpython.object cimport PyObject, PyTypeObject
from cpython.ref cimport Py_INCREF
from cpython.tuple cimport PyTuple_GET_ITEM, PyTuple_GET_SIZE, PyTuple_SET_ITEM

cdef extern from *:
    """
    static PyObject *comfyvn_tp_alloc(PyObject *cls, Py_ssize_t items) {
        return ((PyTypeObject *)cls)->tp_alloc((PyTypeObject *)cls, items);
    }
    """
    object comfyvn_tp_alloc(object cls, Py_ssize_t items)

cdef set _accepted = set()  # the classes tuple.__new__ has built


def new_tuple(cls, tuple fields not None):
    if cls not in _accepted:
        made = tuple.__new__(cls, fields)  # raises TypeError for a class it is not safe to build
        if cls is not tuple:  # tuple.__new__(tuple, fields) is fields itself; it stays that way
            _accepted.add(cls)
        return made
    cdef Py_ssize_t count = PyTuple_GET_SIZE(fields), index
    made = comfyvn_tp_alloc(cls, count)
    for index in range(count):
        item = <object>PyTuple_GET_ITEM(fields, index)
        Py_INCREF(item)  # PyTuple_SET_ITEM steals a reference
        PyTuple_SET_ITEM(made, index, item)
    return made
