# Cython declarations for runner.py (an "augmenting" .pxd: the .py stays plain Python, and these types
# apply only where setup.py compiles it). The classes become C types whose attributes are struct
# fields, and `step`'s locals get C types; nothing here changes what the runner does. Every attribute
# runner.py sets on these classes must be declared here (a C type has no __dict__).
import cython

cdef unsigned long long _MULTIPLIER, _INCREMENT, _MASK
cdef double _SCALE

cdef class Choice:
    cdef public object actions, apply, check, conditions, entry, key, move, raw, target, visible_to, weight

cdef class Menu:
    cdef public object all_hold, candidates, cumulative, picks, total

cdef class Node:
    cdef public object actions, apply, choices, default_menu, end, id, menus, raw, scene_id, settled

cdef class Scenario:
    cdef public object source, project, multi_scene, start, variables, default_pov, nodes, scene_starts
    cdef public object last_step, _conditions

@cython.locals(scenario=Scenario, node=Node, target=Node, choice=Choice, menu=Menu, current=cython.ulonglong)
cpdef step(source, state=*, choice_id=*, seed=*, pov=*)
