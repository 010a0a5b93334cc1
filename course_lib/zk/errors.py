"""Errors of ``course_lib.zk``: each message says what to run to fix it."""


class ZooKeeperError(RuntimeError):
    """Base class of the ensemble's errors."""


class ZooKeeperNotInstalled(ZooKeeperError):
    """Java or Apache ZooKeeper is missing on this machine."""


class ZooKeeperUnavailable(ZooKeeperError):
    """Nothing answers at the ZooKeeper address, or no quorum formed in time."""
