"""Pod networking: one network namespace per pod, a veth pair into the rig's bridge, one address each.

The rig creates the bridge (the node network) before anything starts; its first address is the node IP,
where the rig's services and the API server listen, so a pod reaches them at the same URLs the host uses.
"""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import dataclass


class NetworkError(RuntimeError):
    pass


async def ip(*args: str, check: bool = True) -> str:
    proc = await asyncio.create_subprocess_exec(
        "ip", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    if check and proc.returncode != 0:
        raise NetworkError(f"ip {' '.join(args)}: {err.decode().strip()}")
    return out.decode()


@dataclass(frozen=True)
class PodNetwork:
    namespace: str  # network namespace name, for `ip netns exec`
    address: str
    host_veth: str


class NodeNetwork:
    """Allocates pod addresses on the bridge and creates/removes each pod's namespace."""

    def __init__(self, bridge: str, cidr: str) -> None:
        self.bridge = bridge
        self.network = ipaddress.ip_interface(cidr).network
        self.gateway = str(ipaddress.ip_interface(cidr).ip)
        self._free = (str(h) for h in self.network.hosts() if str(h) != self.gateway)
        self._released: list[str] = []
        self._lock = asyncio.Lock()

    def _allocate(self) -> str:
        if self._released:
            return self._released.pop(0)
        try:
            return next(self._free)
        except StopIteration:
            raise NetworkError(f"no free pod address left in {self.network}") from None

    async def create(self, pod_uid: str) -> PodNetwork:
        short = pod_uid.replace("-", "")[:10]
        # named after the bridge, so `rig down` can find whatever a crashed node left behind
        netns, host_veth, pod_veth = f"{self.bridge}-{short}", f"dmh{short}", f"dmp{short}"
        async with self._lock:
            address = self._allocate()
        await ip("netns", "add", netns)
        await ip("link", "add", host_veth, "type", "veth", "peer", "name", pod_veth)
        await ip("link", "set", pod_veth, "netns", netns)
        await ip("link", "set", host_veth, "master", self.bridge, "up")
        prefix = self.network.prefixlen
        await ip("-n", netns, "addr", "add", f"{address}/{prefix}", "dev", pod_veth)
        await ip("-n", netns, "link", "set", pod_veth, "name", "eth0")
        await ip("-n", netns, "link", "set", "eth0", "up")
        await ip("-n", netns, "link", "set", "lo", "up")
        await ip("-n", netns, "route", "add", "default", "via", self.gateway)
        return PodNetwork(netns, address, host_veth)

    async def delete(self, net: PodNetwork) -> None:
        await ip("link", "del", net.host_veth, check=False)
        await ip("netns", "del", net.namespace, check=False)
        async with self._lock:
            self._released.append(net.address)
