"""Consensus: the chapter's "more than half" protocol against single-decree Paxos.

Modules, one job each:

- ``chapter_sim``    the chapter's ``ConsensusProtocol`` hosted in the simulator, and a
                     seed search for a run where nodes decide different values
- ``messages``       ballots, Paxos's messages and hard state (frozen dataclasses), ``Phase``
- ``paxos``          the sans-I/O core ``PaxosNode``: tick / step / propose -> Ready
- ``host``           drives one core in the simulator (persist, send, report)
- ``cluster``        ``PaxosCluster``: the public model for the lesson and the tests
- ``campaign``       seeded fault campaigns checking agreement, validity, termination
                     (``python -m course_lib.consensus.campaign --seed N``)
- ``quorum``         majorities counted: every pair intersects; smaller sets need not
- ``raft_consensus`` Raft (``course_lib.raft``) used as consensus on one value
- ``side_by_side``   ``SideBySide``: the chapter's protocol and Paxos over one network you
                     control ("you are the network"): held messages, schedules, safety
- ``plots``          plotly figures: quorums on a networkx layout, message timelines
"""

from .campaign import CampaignSummary, PaxosRun, run_campaign, run_seed
from .chapter_sim import ChapterCluster, ChapterHost, ChapterRun, find_disagreement, run_chapter
from .cluster import PaxosCluster
from .host import PaxosHost
from .messages import (
    ZERO, Accept, Accepted, Ballot, Decided, HardState, Inquire, Nack, Phase, Prepare, Promise,
)
from .paxos import PaxosConfig, PaxosNode, Ready, majority
from .quorum import disjoint_pair, majorities, node_names, pairs_checked, quorums
from .raft_consensus import RaftDecision, raft_decide
from .side_by_side import TWO_VALUES, HeldMessage, SideBySide, StepResult, parse_step

__all__ = [
    "Accept", "Accepted", "Ballot", "CampaignSummary", "ChapterCluster", "ChapterHost",
    "ChapterRun", "Decided", "HardState", "HeldMessage", "Inquire", "Nack",
    "PaxosCluster", "PaxosConfig", "PaxosHost", "PaxosNode", "PaxosRun", "Phase",
    "Prepare", "Promise", "RaftDecision", "Ready", "SideBySide", "StepResult",
    "TWO_VALUES", "ZERO", "disjoint_pair", "find_disagreement", "majorities",
    "majority", "node_names", "pairs_checked", "parse_step", "quorums", "raft_decide",
    "run_campaign", "run_chapter", "run_seed",
]
