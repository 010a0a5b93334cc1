"""``python -m course_lib.lab [FLAGS...]``: start ZooKeeper, then JupyterLab on the course.

    python -m course_lib.lab                         # what `make lab` runs
    python -m course_lib.lab --port=8890 --IdentityProvider.token=secret
    python -m course_lib.lab install-config          # install the save hook and the server
                                                     # extension (make install, Binder)

FLAGS go to ``jupyter lab`` as they are (``make lab LAB_FLAGS="--port=8890"``).  The
ZooKeeper ensemble is the course's default one (``$COURSE_ZK_DIR``, ``$COURSE_ZK_PORT``)
unless ``$ZK_HOSTS`` names another.
"""

from __future__ import annotations

import os
import sys

from . import install_config, lab_command


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["install-config"]:
        print(f"installed the course's save hook and server extension: {install_config()}")
        return 0
    if not os.environ.get("ZK_HOSTS"):
        from course_lib.zk import Ensemble, ZooKeeperError
        ensemble = Ensemble.default()
        try:
            ensemble.start()
        except (ZooKeeperError, ValueError) as error:
            print(f"error: ZooKeeper did not start: {error}", file=sys.stderr)
            return 1
        print(f"ZooKeeper serves at {ensemble.hosts} (stop it with `make zk-stop`)")
    install_config()
    command = lab_command(extra=argv)
    os.execv(command[0], command)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
