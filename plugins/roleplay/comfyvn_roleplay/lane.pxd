# Cython declarations for lane.py (an "augmenting" .pxd: the .py stays plain Python, and these
# types apply only where setup.py compiles it). Nothing here changes what the lane does.
import cython

cdef class FastLane:
    cdef public object builder
    cdef object _sink
    cdef object _progress
    cdef dict _speakers
    cdef dict _days
    cdef dict _narrators
    cdef dict _flanks
    cdef bint _split_paragraphs
    cdef bint _ooc
    cdef Py_ssize_t _cap

    @cython.locals(name=object, mes=object, text=str, speaker_name=str, scene_nodes=list, nodes=list,
                   ids=list, count=Py_ssize_t, node=dict, previous=dict, found=tuple, narrator=object,
                   extra=object, swipe_id=object, is_user=object, hidden=object, first=str, key=tuple)
    cpdef bint take(self, dict obj, Py_ssize_t index, Py_ssize_t line) except -1

    @cython.locals(stamp=str, at=Py_ssize_t, day=tuple, h1=Py_UCS4, h2=Py_UCS4, m1=Py_UCS4, m2=Py_UCS4, s1=Py_UCS4,
                   s2=Py_UCS4, hour=int, minute=int, second=int)
    cpdef tuple _moment(self, object value)

    @cython.locals(nodes=list, speech=dict, block=Py_ssize_t, speech_block=Py_ssize_t, paragraph=str,
                   pieces=list, piece=str, story=str, j=Py_ssize_t, action=bint, row=dict, flanks=tuple)
    cpdef list _nodes(self, str text, Py_ssize_t line, Py_ssize_t index)
