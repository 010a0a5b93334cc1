"""course_lib: the library behind the *Python distributed systems design* course.

Protocol cores are deterministic state machines without I/O (see DESIGN.md); the
seeded simulator and the real runtime drive them.  Sub-packages:

- ``course_lib.zk``       a real Apache ZooKeeper ensemble on loopback, ``connect()``
- ``course_lib.sim``      discrete-event simulator (virtual clock, network, faults, trace)
- ``course_lib.raft``     Raft: sans-I/O core and ``SimCluster``
- ``course_lib.check``    linearizability checker and models
- ``course_lib.detect``   failure detectors (timeout, phi accrual)
"""

__version__ = "0.1.0"
