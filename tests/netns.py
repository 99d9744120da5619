"""Simulated hosts whose network a test can cut: Linux network namespaces joined to this one by veth pairs.

``Island(name, index)`` makes a namespace with a veth pair: this side is
``10.213.<index>.1/30``, the namespace's side ``10.213.<index>.2/30``. A process
started with :meth:`Island.command` lives in the namespace and reaches this
side's address only over the pair (its loopback is its own), so
:meth:`Island.cut` isolates it and :meth:`Island.mend` undoes the cut. Two kinds
of cut:

* ``"unplugged"``: this side's link goes down, as a pulled cable; the
  namespace's sockets get "No route to host" at once;
* ``"silent"``: each side's neighbour entry for the other points at a MAC
  address nobody has, as behind a dead switch: every frame is dropped without
  a word, and both ends notice only by their TCP timeouts and keepalives.

Needs root (CAP_NET_ADMIN) and ``ip`` from iproute2, which `.ci/run` installs;
:func:`require_netns` skips on a machine that cannot make a namespace and fails
in CI (``CI=true``) when ``ip`` is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid

import pytest

__all__ = ["Island", "require_netns"]

#: A locally administered MAC address no interface here has: frames sent to it are dropped by the receiving veth.
_NOBODY = "02:00:5e:00:de:ad"


def _ip(*args: str, namespace: str | None = None) -> None:
    command = ["ip", *(["netns", "exec", namespace, "ip"] if namespace else []), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {done.stderr.strip()}")


def require_netns() -> None:
    """Skip unless this machine lets the test make a network namespace (fail in CI when ``ip`` is missing)."""
    if shutil.which("ip") is None:
        message = "the ip command (iproute2) is missing: apt-get install iproute2 (.ci/run does it)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root (CAP_NET_ADMIN)")
    probe = f"tl-probe-{uuid.uuid4().hex[:8]}"
    done = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        pytest.skip(f"this machine does not allow network namespaces ({done.stderr.strip()})")
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, timeout=30)


class Island:
    """One namespace and its veth pair; use ``with``, which removes both."""

    def __init__(self, index: int) -> None:
        tag = uuid.uuid4().hex[:6]
        self.namespace = f"tl-{tag}-{index}"
        self.outside_link, self.inside_link = f"tl{tag}{index}o", f"tl{tag}{index}i"  # at most 15 characters
        self.gateway = f"10.213.{index}.1"  # this side: what the namespace's processes connect to
        self.address = f"10.213.{index}.2"
        self.network = f"10.213.{index}.0/30"
        self._cut: str | None = None

    def __enter__(self) -> "Island":
        _ip("netns", "add", self.namespace)
        try:
            _ip("link", "add", self.outside_link, "type", "veth", "peer", "name", self.inside_link)
            _ip("link", "set", self.inside_link, "netns", self.namespace)
            _ip("addr", "add", f"{self.gateway}/30", "dev", self.outside_link)
            _ip("link", "set", self.outside_link, "up")
            _ip("addr", "add", f"{self.address}/30", "dev", self.inside_link, namespace=self.namespace)
            _ip("link", "set", self.inside_link, "up", namespace=self.namespace)
            _ip("link", "set", "lo", "up", namespace=self.namespace)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        # Deleting the namespace deletes the end inside it, and with it the pair.
        subprocess.run(["ip", "netns", "del", self.namespace], capture_output=True, timeout=30)
        subprocess.run(["ip", "link", "del", self.outside_link], capture_output=True, timeout=30)

    def command(self, *argv: str) -> list[str]:
        """``argv`` run inside the namespace (``ip netns exec`` execs it: the pid stays the program's)."""
        return ["ip", "netns", "exec", self.namespace, *argv]

    def cut(self, how: str = "silent") -> None:
        self._cut = how
        if how == "unplugged":
            _ip("link", "set", self.outside_link, "down")
        elif how == "silent":
            _ip("neigh", "replace", self.address, "lladdr", _NOBODY, "dev", self.outside_link, "nud", "permanent")
            _ip("neigh", "replace", self.gateway, "lladdr", _NOBODY, "dev", self.inside_link, "nud", "permanent",
                namespace=self.namespace)
        else:
            raise ValueError(f"unknown cut {how!r}: 'unplugged' or 'silent'")

    def mend(self) -> None:
        if self._cut == "unplugged":
            _ip("link", "set", self.outside_link, "up")
        elif self._cut == "silent":
            _ip("neigh", "del", self.address, "dev", self.outside_link)
            _ip("neigh", "del", self.gateway, "dev", self.inside_link, namespace=self.namespace)
        self._cut = None
