"""A node whose pods are local processes: ``python -m procnode --name N --kubeconfig K --root DIR ...``.

Registers a Node, keeps its Lease fresh, and runs every pod bound to it: each container's command + args as
a process in the pod's own network namespace (its own IP on the rig's bridge), with env, volumes, probes,
restart policy, termination messages and logs as a kubelet provides them. With ``--runtime runc`` (container
mode) each container runs from its image through runc instead, confined by its security context (oci.py).
See docs/rig.md.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from pathlib import Path

from lightkube import AsyncClient, KubeConfig

from .kubelet_api import serve
from .network import NodeNetwork
from .node import ProcessNode
from .oci import ImageStore
from .pod import NodeContext


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", required=True)
    p.add_argument("--kubeconfig", required=True, type=Path)
    p.add_argument("--root", required=True, type=Path, help="per-pod working directories live here")
    p.add_argument("--bridge", required=True, help="the rig's bridge; pods get a veth into it")
    p.add_argument("--cidr", required=True, help="node IP and prefix on the bridge, e.g. 10.213.0.1/16")
    p.add_argument("--apiserver-port", required=True, type=int, help="for KUBERNETES_SERVICE_PORT in pods")
    p.add_argument("--kubelet-port", required=True, type=int)
    p.add_argument("--health-port", required=True, type=int)
    p.add_argument("--tls-cert", required=True, type=Path)
    p.add_argument("--tls-key", required=True, type=Path)
    # Advertised capacity: generous, since test pods mostly wait on I/O or never start (burst benchmarks)
    p.add_argument("--cpu", default="256")
    p.add_argument("--memory", default="512Gi")
    p.add_argument("--pods", default="1000")
    p.add_argument(
        "--default-command",
        default="datamanager",
        help="entrypoint for containers without `command` (the project image's ENTRYPOINT)",
    )
    p.add_argument(
        "--runtime",
        choices=["process", "runc"],
        default="process",
        help="process: containers run as local processes; runc: from their images, as containers",
    )
    p.add_argument("--restart-backoff", type=float, default=1.0, help="first crash-loop delay, doubling")
    p.add_argument("--restart-backoff-cap", type=float, default=30.0)
    return p.parse_args()


async def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("httpx2").setLevel(logging.WARNING)  # one line per API request is noise
    logging.getLogger("httpx").setLevel(logging.WARNING)
    node_ip = args.cidr.split("/")[0]
    client = AsyncClient(KubeConfig.from_file(args.kubeconfig), field_manager="procnode")
    base_env = {
        # no kube-proxy here: pods reach the API server at the node IP directly
        "KUBERNETES_SERVICE_HOST": node_ip,
        "KUBERNETES_SERVICE_PORT": str(args.apiserver_port),
        "KUBERNETES_SERVICE_PORT_HTTPS": str(args.apiserver_port),
    }
    if args.runtime == "process":  # a container's PATH and HOME come from its image in container mode
        base_env |= {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/root"),
            "LANG": "C.UTF-8",
        }
    ctx = NodeContext(
        client=client,
        network=NodeNetwork(args.bridge, args.cidr),
        root=args.root,
        node_ip=node_ip,
        allocatable={"cpu": args.cpu, "memory": args.memory},
        base_env=base_env,
        default_command=[args.default_command] if args.default_command else [],
        restart_base=args.restart_backoff,
        restart_cap=args.restart_backoff_cap,
        images=ImageStore() if args.runtime == "runc" else None,
        runc_root=args.root.parent / "runc",
        # one cgroup parent per rig (its bridge's name is unique), the containers' cgroups under it
        cgroup_parent=f"/{args.bridge}",
    )
    args.root.mkdir(parents=True, exist_ok=True)
    node = ProcessNode(
        args.name, ctx, {"cpu": args.cpu, "memory": args.memory, "pods": args.pods}, args.kubelet_port
    )
    await node.register()
    runner = await serve(args.root, node_ip, args.kubelet_port, args.tls_cert, args.tls_key, args.health_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tasks = [asyncio.create_task(node.heartbeat()), asyncio.create_task(node.watch_pods())]
    await stop.wait()
    for task in tasks:
        task.cancel()
    await node.shutdown()
    await runner.cleanup()
    await client.close()


if __name__ == "__main__":
    asyncio.run(main())
