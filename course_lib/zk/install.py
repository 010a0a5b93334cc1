"""Finding Java and Apache ZooKeeper's jars on this machine.

Looked for, in order: ``$ZK_CLASSPATH`` (a Java classpath holding ZooKeeper and its
dependencies), Debian/Ubuntu's ``zookeeper`` package (``/usr/share/java/zookeeper.jar``,
whose manifest lists its dependencies), Homebrew's ``zookeeper`` formula
(``$(brew --prefix)/opt/zookeeper/libexec/lib``).  Java is ``$JAVA`` or ``java`` on the
``PATH``.
"""

from __future__ import annotations

import glob
import os
import shutil
from dataclasses import dataclass

from .errors import ZooKeeperNotInstalled

INSTALL_HINT = (
    "On Debian/Ubuntu run `sudo apt-get install -y default-jre-headless zookeeper` "
    "(or `make lab`, which installs everything); on macOS `brew install zookeeper`; "
    "or set ZK_HOSTS to an ensemble you already run (e.g. ZK_HOSTS=127.0.0.1:2181)."
)

DEBIAN_JAR = "/usr/share/java/zookeeper.jar"
DEBIAN_LOGGER = "/usr/share/java/slf4j-simple.jar"
HOMEBREW_LIBS = ("/opt/homebrew/opt/zookeeper/libexec/lib", "/usr/local/opt/zookeeper/libexec/lib")


@dataclass(frozen=True)
class Installation:
    java: str
    classpath: str


def find_installation() -> Installation:
    """Java and a classpath that runs ZooKeeper, or ``ZooKeeperNotInstalled`` saying
    what to install."""
    java = os.environ.get("JAVA") or shutil.which("java")
    if not java or not os.access(java, os.X_OK):
        raise ZooKeeperNotInstalled(f"Java was not found (no `java` on the PATH). {INSTALL_HINT}")
    classpath = _zookeeper_classpath()
    if classpath is None:
        raise ZooKeeperNotInstalled(f"Apache ZooKeeper's jars were not found. {INSTALL_HINT}")
    return Installation(java=java, classpath=classpath)


def _zookeeper_classpath() -> str | None:
    if os.environ.get("ZK_CLASSPATH"):
        return os.environ["ZK_CLASSPATH"]
    if os.path.exists(DEBIAN_JAR):
        # The Debian jar's manifest pulls in its dependencies but no slf4j binding;
        # slf4j-simple sends the server's log to stderr, which we keep in a file.
        jars = [DEBIAN_JAR] + ([DEBIAN_LOGGER] if os.path.exists(DEBIAN_LOGGER) else [])
        return os.pathsep.join(jars)
    for lib in HOMEBREW_LIBS:
        jars = sorted(glob.glob(os.path.join(lib, "*.jar")))
        if any(os.path.basename(j).startswith("zookeeper-") for j in jars):
            return os.pathsep.join(jars)
    return None
