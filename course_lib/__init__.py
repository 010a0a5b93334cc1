"""course_lib: the library behind the *Python distributed systems design* course.

Protocol cores are deterministic state machines without I/O (see DESIGN.md); the
seeded simulator and the real runtime drive them.  Sub-packages:

- ``course_lib.zk``       a real Apache ZooKeeper ensemble on loopback, ``connect()``
- ``course_lib.sim``      discrete-event simulator (virtual clock, network, faults, trace)
- ``course_lib.raft``     Raft: sans-I/O core and ``SimCluster``
- ``course_lib.net``      the same Raft core on real processes: WAL, TCP, ``ProcessCluster``, CLI
- ``course_lib.check``    linearizability checker and models
- ``course_lib.detect``   failure detectors (timeout, phi accrual)
- ``course_lib.coord``    ZooKeeper recipes: registry, configuration, events, locks, election
- ``course_lib.recovery`` primary-backup replication, backup/restore, hot-standby failover
- ``course_lib.consensus`` the chapter's consensus protocol vs single-decree Paxos
- ``course_lib.chapter``  the chapter's own designs, with their flaws, for contrast
- ``course_lib.viz``      widgets and figures
"""

__version__ = "0.1.0"
