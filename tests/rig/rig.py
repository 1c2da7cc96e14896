"""The local rig: a real control plane and real services on loopback, for tests and the demo.

``python tests/rig/rig.py up``   starts every component on free ports with state in a private temporary
                                 directory, waits until each is ready and writes ``.rig/env``.
``python tests/rig/rig.py down`` stops exactly the processes ``up`` started (by pid) and removes the state.
``python tests/rig/rig.py status`` tells whether a rig is running.

Binaries come from ``tests/rig/build.sh`` (pinned versions, cached outside the repository).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# RIG_HOME lets several rigs run side by side (one per checkout by default).
RIG_DIR = Path(os.environ.get("RIG_HOME", REPO / ".rig"))
ENV_FILE = RIG_DIR / "env"
PIDS_FILE = RIG_DIR / "pids.json"
VERSIONS_FILE = Path(__file__).with_name("versions.env")
CACHE = Path(os.environ.get("DATAMANAGER_RIG_CACHE", Path.home() / ".cache" / "datamanager-rig"))
MYSQL_ROOT_PASSWORD = "rig-root-pw"  # loopback-only throw-away instance
NODE_NAME = "procnode"
READY_TIMEOUT = float(os.environ.get("RIG_READY_TIMEOUT", "90"))


def versions() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in VERSIONS_FILE.read_text().splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs if not k.startswith("#")}


def binary(component: str, version_key: str, name: str) -> Path:
    path = CACHE / f"{component}-{versions()[version_key]}" / "bin" / name
    if not path.exists():
        sys.exit(f"rig: {path} is missing; run `make rig-build` (tests/rig/build.sh) first")
    return path


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------- node network


def ip(*args: str, check: bool = True) -> str:
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RigError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def create_bridge() -> tuple[str, str, int]:
    """The node network: a bridge whose first address is the node IP; pods join it, services listen on it."""
    routes = ip("route")
    used = {line.split()[0] for line in routes.splitlines() if line and line[0].isdigit()}
    for _ in range(50):
        octet = secrets.randbelow(50) + 200
        cidr = f"10.{octet}.0.0/16"
        if cidr not in used:
            break
    else:
        raise RigError("no free 10.x.0.0/16 range for the node network")
    bridge = f"dmr{secrets.token_hex(3)}"
    node_ip = f"10.{octet}.0.1"
    ip("link", "add", bridge, "type", "bridge")
    ip("addr", "add", f"{node_ip}/16", "dev", bridge)
    ip("link", "set", bridge, "up")
    return bridge, node_ip, 16


def delete_network(bridge: str) -> None:
    """Kills whatever still runs in this rig's pod namespaces, then removes them and the bridge."""
    for line in ip("netns", "list", check=False).splitlines():
        netns = line.split()[0] if line.strip() else ""
        if netns.startswith(f"{bridge}-"):
            for pid in ip("netns", "pids", netns, check=False).split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
            ip("netns", "del", netns, check=False)
    ip("link", "del", bridge, check=False)


class RigError(Exception):
    pass


@dataclass
class Component:
    name: str
    argv: list[str]
    ready: Callable[[], bool]
    env: dict[str, str] = field(default_factory=dict)
    prepare: Callable[[], None] | None = None


@dataclass
class Rig:
    state: Path
    bridge: str
    node_ip: str
    prefix: int
    ports: dict[str, int] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)
    commands: dict[str, list[str]] = field(default_factory=dict)  # for `restart`
    envs: dict[str, dict[str, str]] = field(default_factory=dict)

    def log(self, name: str) -> Path:
        return self.state / "logs" / f"{name}.log"

    def start(self, component: Component) -> None:
        if component.prepare:
            component.prepare()
        self.commands[component.name], self.envs[component.name] = component.argv, component.env
        proc = self.spawn(component.name)
        self.save_pids()
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RigError(f"{component.name} exited with code {proc.returncode} before it was ready")
            try:
                if component.ready():
                    print(f"rig: {component.name} ready", flush=True)
                    return
            except ImportError as exc:
                raise RigError(
                    f"{component.name}'s readiness probe needs {exc.name}, which this Python lacks: "
                    "run the rig with the project's venv (`make rig-up`, "
                    "or `.venv/bin/python tests/rig/rig.py up`)"
                ) from None
            except Exception:  # not up yet: refused, timed out, not answering the protocol
                pass
            time.sleep(0.25)
        raise RigError(f"{component.name} was not ready within {READY_TIMEOUT:.0f}s")

    def spawn(self, name: str) -> subprocess.Popen[bytes]:
        log = self.log(name).open("ab")
        proc = subprocess.Popen(
            self.commands[name],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.state,
            env={**os.environ, **self.envs[name]},
            start_new_session=True,  # its own process group, so `down` can stop it and its children
        )
        self.pids[name] = proc.pid
        return proc

    def save_pids(self) -> None:
        record = {
            "state": str(self.state),
            "bridge": self.bridge,
            "pids": self.pids,
            "commands": self.commands,
            "envs": self.envs,
        }
        PIDS_FILE.write_text(json.dumps(record, indent=2))

    def tail(self, name: str, lines: int = 40) -> str:
        path = self.log(name)
        if not path.exists():
            return "(no log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


# ---------------------------------------------------------------- certificates


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_pki(pki: Path, node_ip: str) -> None:
    pki.mkdir(parents=True)
    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "30",
        "-subj",
        "/CN=datamanager-rig-ca",
        cwd=pki,
    )

    def cert(name: str, subject: str, sans: str | None = None) -> None:
        openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.csr",
            "-subj",
            subject,
            cwd=pki,
        )
        ext = pki / f"{name}.ext"
        usage = "serverAuth,clientAuth" if sans else "clientAuth"
        ext.write_text(f"extendedKeyUsage={usage}\n" + (f"subjectAltName={sans}\n" if sans else ""))
        openssl(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            f"{name}.crt",
            "-days",
            "30",
            "-extfile",
            ext.name,
            cwd=pki,
        )

    cert(
        "apiserver",
        "/CN=kube-apiserver",
        f"IP:127.0.0.1,IP:{node_ip},IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,"
        "DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local",
    )
    cert("admin", "/O=system:masters/CN=rig-admin")
    cert("controller-manager", "/CN=system:kube-controller-manager")
    cert("scheduler", "/CN=system:kube-scheduler")
    # the process node's client identity, and its kubelet API's serving certificate
    cert("procnode", f"/O=system:masters/CN=system:node:{NODE_NAME}", f"IP:{node_ip},DNS:{NODE_NAME}")
    openssl("genrsa", "-out", "sa.key", "2048", cwd=pki)
    openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)


def kubeconfig(path: Path, server: str, pki: Path, user: str) -> None:
    path.write_text(
        textwrap.dedent(f"""\
        apiVersion: v1
        kind: Config
        clusters:
        - name: rig
          cluster:
            server: {server}
            certificate-authority: {pki / "ca.crt"}
        users:
        - name: {user}
          user:
            client-certificate: {pki / (user + ".crt")}
            client-key: {pki / (user + ".key")}
        contexts:
        - name: rig
          context: {{cluster: rig, user: {user}, namespace: default}}
        current-context: rig
        """)
    )


# ---------------------------------------------------------------- readiness probes


def http_ok(url: str, context: ssl.SSLContext | None = None, expect: bytes | None = None) -> bool:
    with urllib.request.urlopen(url, timeout=2, context=context) as resp:
        body: bytes = resp.read()
        return resp.status == 200 and (expect is None or body.strip() == expect)


def mysql_ok(host: str, port: int) -> bool:
    import pymysql

    conn = pymysql.connect(host=host, port=port, user="root", password=MYSQL_ROOT_PASSWORD, connect_timeout=2)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
            return bool(cur.fetchone() == (1,))
    finally:
        conn.close()


def mongo_ok(host: str, port: int) -> bool:
    from pymongo import MongoClient

    client: MongoClient[dict[str, object]] = MongoClient(port=port, host=host, serverSelectionTimeoutMS=2000)
    try:
        return client.admin.command("ping").get("ok") == 1.0
    finally:
        client.close()


# ---------------------------------------------------------------- components

# Metadata (who, verb, object, response code) is what the tests count; request and response bodies are not
# logged. The control plane's own controllers (kube-system ServiceAccounts) are left out, except for Job
# writes, which are logged whoever makes them.
AUDIT_POLICY = textwrap.dedent("""\
    apiVersion: audit.k8s.io/v1
    kind: Policy
    omitStages: ["RequestReceived"]
    rules:
      - level: Metadata
        verbs: ["create", "update", "patch", "delete", "deletecollection"]
        resources: [{group: "batch", resources: ["jobs"]}]
      - level: None
        userGroups: ["system:serviceaccounts:kube-system"]
      - level: Metadata
        userGroups: ["system:serviceaccounts"]
      - level: None
    """)


def services(rig: Rig) -> list[Component]:
    s, p, host = rig.state, rig.ports, rig.node_ip
    for name in ("mysql", "mongodb", "nats", "nats_monitor"):
        p[name] = free_port(host)

    def init_mariadb() -> None:
        (s / "mysql").mkdir()
        subprocess.run(
            [
                "mariadb-install-db",
                f"--datadir={s / 'mysql'}",
                "--user=root",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
            check=True,
            capture_output=True,
        )
        (s / "mysql-init.sql").write_text(
            f"ALTER USER 'root'@'localhost' IDENTIFIED BY '{MYSQL_ROOT_PASSWORD}';\n"
            f"CREATE OR REPLACE USER 'root'@'%' IDENTIFIED BY '{MYSQL_ROOT_PASSWORD}';\n"
            "GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;\n"
        )

    mariadbd = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
    return [
        Component(
            "mariadb",
            [
                mariadbd,
                "--no-defaults",
                f"--datadir={s / 'mysql'}",
                "--user=root",
                f"--bind-address={host}",
                f"--port={p['mysql']}",
                f"--socket={s / 'mysql.sock'}",
                f"--pid-file={s / 'mysql.pid'}",
                f"--init-file={s / 'mysql-init.sql'}",
                "--skip-log-bin",
                "--innodb-buffer-pool-size=2G",  # resident as used; holds the ten-symbol benchmark's table
                "--innodb-flush-log-at-trx-commit=2",
                "--max-connections=500",
                "--skip-name-resolve",
            ],
            lambda: mysql_ok(host, p["mysql"]),
            prepare=init_mariadb,
        ),
        Component(
            "ferretdb",
            [
                str(binary("ferretdb", "FERRETDB_VERSION", "ferretdb")),
                f"-listen-addr={host}:{p['mongodb']}",
                f"-sqlite-url=file:{s / 'ferretdb'}/",
            ],
            lambda: mongo_ok(host, p["mongodb"]),
            prepare=lambda: (s / "ferretdb").mkdir(),
        ),
        Component(
            "nats",
            [
                str(binary("nats-server", "NATS_SERVER_VERSION", "nats-server")),
                "-a",
                host,
                "-p",
                str(p["nats"]),
                "-m",
                str(p["nats_monitor"]),
                "-js",
                "-sd",
                str(s / "nats"),
            ],
            lambda: http_ok(f"http://{host}:{p['nats_monitor']}/healthz"),
        ),
    ]


def control_plane(rig: Rig) -> list[Component]:
    s, p = rig.state, rig.ports
    pki = s / "pki"
    for name in ("etcd", "etcd_peer", "controller_manager", "scheduler"):
        p[name] = free_port()
    p["apiserver"] = free_port(rig.node_ip)
    server = f"https://{rig.node_ip}:{p['apiserver']}"
    make_pki(pki, rig.node_ip)
    for user in ("admin", "controller-manager", "scheduler", "procnode"):
        kubeconfig(s / f"{user}.kubeconfig", server, pki, user)
    tls = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    tls.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE

    def write_audit_policy() -> None:
        (s / "audit-policy.yaml").write_text(AUDIT_POLICY)

    kube = CACHE / f"kubernetes-{versions()['KUBERNETES_VERSION']}" / "bin"
    binary("kubernetes", "KUBERNETES_VERSION", "kube-apiserver")
    delegated = ["--authentication-kubeconfig", "--authorization-kubeconfig", "--kubeconfig"]
    return [
        Component(
            "etcd",
            [
                str(binary("etcd", "ETCD_VERSION", "etcd")),
                "--data-dir",
                str(s / "etcd"),
                "--listen-client-urls",
                f"http://127.0.0.1:{p['etcd']}",
                "--advertise-client-urls",
                f"http://127.0.0.1:{p['etcd']}",
                "--listen-peer-urls",
                f"http://127.0.0.1:{p['etcd_peer']}",
                "--initial-advertise-peer-urls",
                f"http://127.0.0.1:{p['etcd_peer']}",
                "--initial-cluster",
                f"default=http://127.0.0.1:{p['etcd_peer']}",
                "--unsafe-no-fsync",
                "--log-level",
                "warn",
            ],
            lambda: http_ok(f"http://127.0.0.1:{p['etcd']}/health"),
        ),
        Component(
            "kube-apiserver",
            [
                str(kube / "kube-apiserver"),
                f"--etcd-servers=http://127.0.0.1:{p['etcd']}",
                f"--bind-address={rig.node_ip}",
                f"--secure-port={p['apiserver']}",
                f"--advertise-address={rig.node_ip}",
                # `kubectl logs` reaches the process node's kubelet API at its bridge address
                "--kubelet-preferred-address-types=InternalIP",
                f"--tls-cert-file={pki / 'apiserver.crt'}",
                f"--tls-private-key-file={pki / 'apiserver.key'}",
                f"--client-ca-file={pki / 'ca.crt'}",
                f"--service-account-key-file={pki / 'sa.pub'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                "--service-account-issuer=https://kubernetes.default.svc",
                "--authorization-mode=RBAC",
                "--service-cluster-ip-range=10.96.0.0/16",
                "--allow-privileged=true",
                "--profiling=false",
                # ground truth for the tests: every request of a ServiceAccount outside kube-system, and
                # every write to Jobs by anyone (tests/fixtures/audit.py reads it)
                f"--audit-policy-file={s / 'audit-policy.yaml'}",
                f"--audit-log-path={s / 'logs' / 'audit.log'}",
                "--audit-log-format=json",
                "--audit-log-maxsize=0",  # one file, never rotated: a test reads it from an offset
                "--v=0",
            ],
            lambda: http_ok(f"{server}/readyz", tls, b"ok"),
            prepare=write_audit_policy,
        ),
        Component(
            "kube-controller-manager",
            [
                str(kube / "kube-controller-manager"),
                *(f"{flag}={s / 'controller-manager.kubeconfig'}" for flag in delegated),
                "--bind-address=127.0.0.1",
                f"--secure-port={p['controller_manager']}",
                "--controllers=*",
                "--leader-elect=false",
                "--use-service-account-credentials=true",
                f"--service-account-private-key-file={pki / 'sa.key'}",
                f"--root-ca-file={pki / 'ca.crt'}",
                f"--cluster-signing-cert-file={pki / 'ca.crt'}",
                f"--cluster-signing-key-file={pki / 'ca.key'}",
                # a short grace keeps a dead process node from hiding for minutes in tests
                "--node-monitor-grace-period=20s",
                "--profiling=false",
            ],
            lambda: http_ok(f"https://127.0.0.1:{p['controller_manager']}/healthz", insecure, b"ok"),
        ),
        Component(
            "kube-scheduler",
            [
                str(kube / "kube-scheduler"),
                *(f"{flag}={s / 'scheduler.kubeconfig'}" for flag in delegated),
                "--bind-address=127.0.0.1",
                f"--secure-port={p['scheduler']}",
                "--leader-elect=false",
                "--profiling=false",
            ],
            lambda: http_ok(f"https://127.0.0.1:{p['scheduler']}/healthz", insecure, b"ok"),
        ),
    ]


# The image the process node runs pods from in container mode (`make rig-image` builds it into Podman's
# storage), tagged per checkout: rigs of several checkouts on one machine each run their own code
IMAGE = f"localhost/datamanager:rig-{hashlib.sha256(str(REPO).encode()).hexdigest()[:8]}"


def node_runtime() -> tuple[str, str]:
    """("runc", "") when pods can run as containers of the built image, else ("process", why not).
    RIG_NODE_RUNTIME=process|runc forces one (runc then fails at once where it cannot work)."""
    wanted = os.environ.get("RIG_NODE_RUNTIME", "auto")
    if wanted == "process":
        return "process", "RIG_NODE_RUNTIME=process"
    missing = [tool for tool in ("runc", "podman") if shutil.which(tool) is None]
    if missing:
        reason = f"{' and '.join(missing)} not installed (tests/rig/build.sh container_tools installs them)"
    elif subprocess.run(["podman", "image", "exists", IMAGE], capture_output=True).returncode != 0:
        reason = f"no image {IMAGE} in Podman's storage (`make rig-image` builds it)"
    elif not Path("/sys/fs/cgroup").is_dir():
        reason = "no cgroup file system at /sys/fs/cgroup"
    else:
        return "runc", ""
    if wanted == "runc":
        raise RigError(f"RIG_NODE_RUNTIME=runc, but {reason}")
    return "process", reason


def process_node(rig: Rig, runtime: str) -> list[Component]:
    s, p, pki = rig.state, rig.ports, rig.state / "pki"
    p["procnode"] = free_port()
    p["kubelet"] = free_port(rig.node_ip)
    return [
        Component(
            "procnode",
            [
                sys.executable,
                "-m",
                "procnode",
                "--name",
                NODE_NAME,
                "--kubeconfig",
                str(s / "procnode.kubeconfig"),
                "--root",
                str(s / "pods"),
                "--bridge",
                rig.bridge,
                "--cidr",
                f"{rig.node_ip}/{rig.prefix}",
                "--apiserver-port",
                str(p["apiserver"]),
                "--kubelet-port",
                str(p["kubelet"]),
                "--health-port",
                str(p["procnode"]),
                "--tls-cert",
                str(pki / "procnode.crt"),
                "--tls-key",
                str(pki / "procnode.key"),
                "--runtime",
                runtime,
            ],
            lambda: http_ok(f"http://127.0.0.1:{p['procnode']}/healthz"),
            # the project's environment first on PATH, so `datamanager ...` runs in pods
            env={
                "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
                "PYTHONPATH": str(REPO / "tests" / "rig"),
            },
        ),
    ]


# ---------------------------------------------------------------- commands


def running() -> dict[str, object] | None:
    if not PIDS_FILE.exists():
        return None
    recorded: dict[str, object] = json.loads(PIDS_FILE.read_text())
    pids = recorded.get("pids", {})
    assert isinstance(pids, dict)
    return recorded if any(pid_alive(pid) for pid in pids.values()) else None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def write_env(rig: Rig, with_cluster: bool, runtime: tuple[str, str]) -> None:
    p = rig.ports
    lines = {
        "RIG_STATE_DIR": str(rig.state),
        # one address for the host and for pods: the node IP on the rig's bridge
        "RIG_NODE_IP": rig.node_ip,
        "RIG_MYSQL_DSN": f"mysql://root:{MYSQL_ROOT_PASSWORD}@{rig.node_ip}:{p['mysql']}/",
        "RIG_MONGODB_URI": f"mongodb://{rig.node_ip}:{p['mongodb']}/",
        "RIG_NATS_URL": f"nats://{rig.node_ip}:{p['nats']}",
        "RIG_NATS_MONITOR_URL": f"http://{rig.node_ip}:{p['nats_monitor']}",
    }
    path = [
        str(CACHE / f"nats-server-{versions()['NATS_SERVER_VERSION']}" / "bin"),
        str(CACHE / f"helm-{versions()['HELM_VERSION']}" / "bin"),
        str(REPO / ".venv" / "bin"),
    ]
    if with_cluster:
        lines["KUBECONFIG"] = str(rig.state / "admin.kubeconfig")
        lines["RIG_AUDIT_LOG"] = str(rig.log("audit"))
        lines["RIG_NODE_NAME"] = NODE_NAME
        # runc: pods run as containers of RIG_IMAGE; process: as local processes, for the reason given
        lines["RIG_NODE_RUNTIME"] = runtime[0]
        if runtime[0] == "runc":
            lines["RIG_IMAGE"] = IMAGE
        else:
            lines["RIG_NODE_RUNTIME_REASON"] = shlex.quote(runtime[1])
        path.insert(0, str(CACHE / f"kubernetes-{versions()['KUBERNETES_VERSION']}" / "bin"))
    body = "".join(f"export {k}={v}\n" for k, v in lines.items())
    body += f'export PATH={":".join(path)}:"$PATH"\n'
    ENV_FILE.write_text(body)


def up(with_cluster: bool) -> int:
    if current := running():
        print(f"rig: already running (state {current['state']}); `make rig-down` stops it")
        return 0
    RIG_DIR.mkdir(exist_ok=True)
    try:
        bridge, node_ip, prefix = create_bridge()
    except RigError as exc:
        print(
            f"rig: FAILED: cannot create the node network (needs root and iproute2): {exc}", file=sys.stderr
        )
        return 1
    rig = Rig(Path(tempfile.mkdtemp(prefix="datamanager-rig-")), bridge, node_ip, prefix)
    (rig.state / "logs").mkdir()
    rig.save_pids()
    components = services(rig)
    runtime = ("process", "no cluster")
    if with_cluster:
        try:
            runtime = node_runtime()
        except RigError as exc:
            print(f"rig: FAILED: {exc}", file=sys.stderr)
            down()
            return 1
        print(
            "rig: pods run as containers of " + IMAGE
            if runtime[0] == "runc"
            else f"rig: pods run as local processes: {runtime[1]}",
            flush=True,
        )
        components += control_plane(rig) + process_node(rig, runtime[0])
    for component in components:
        try:
            rig.start(component)
        except (RigError, OSError, subprocess.CalledProcessError) as exc:
            print(
                f"rig: FAILED: {exc}\n--- last lines of {rig.log(component.name)} ---\n"
                f"{rig.tail(component.name)}\n---",
                file=sys.stderr,
            )
            down()
            return 1
    write_env(rig, with_cluster, runtime)
    print(f"rig: up; state in {rig.state}; `source {ENV_FILE}` to use it")
    return 0


def down() -> int:
    if not PIDS_FILE.exists():
        print("rig: not running")
        return 0
    recorded = json.loads(PIDS_FILE.read_text())
    pids: dict[str, int] = recorded["pids"]
    # reverse start order: the node stops its pods before the control plane goes away
    for name, pid in reversed(list(pids.items())):
        stop_group(name, pid)
    state = Path(recorded["state"])
    remove_containers(state, recorded.get("bridge", ""))
    if recorded.get("bridge"):
        delete_network(recorded["bridge"])
    if state.name.startswith("datamanager-rig-"):
        shutil.rmtree(state, ignore_errors=True)
    PIDS_FILE.unlink(missing_ok=True)
    ENV_FILE.unlink(missing_ok=True)
    print("rig: down")
    return 0


def restart(name: str) -> int:
    """Stops one component and starts it again with the same command (tests: an API server restart)."""
    if not PIDS_FILE.exists():
        print("rig: not running", file=sys.stderr)
        return 1
    recorded = json.loads(PIDS_FILE.read_text())
    if name not in recorded.get("commands", {}):
        print(
            f"rig: no component {name!r}; there are {', '.join(recorded.get('commands', {}))}",
            file=sys.stderr,
        )
        return 2
    rig = Rig(Path(recorded["state"]), recorded["bridge"], "", 0, pids=recorded["pids"])
    rig.commands, rig.envs = recorded["commands"], recorded["envs"]
    stop_group(name, recorded["pids"][name])
    for _ in range(30):  # the old process may hold its port for a moment after it is gone
        proc = rig.spawn(name)
        time.sleep(3)
        if proc.poll() is None:
            rig.save_pids()
            print(f"rig: {name} restarted (pid {rig.pids[name]})")
            return 0
    print(f"rig: {name} did not start again: see {rig.log(name)}", file=sys.stderr)
    return 1


def remove_containers(state: Path, bridge: str) -> None:
    """What a node in container mode leaves: runc containers (when it died), the root file systems mounted
    under the state directory (removing the state through a mount would reach into the image's layers), and
    its cgroup parent (named after the bridge) in every hierarchy."""
    runc_root = state / "runc"
    if runc_root.is_dir() and shutil.which("runc"):
        listed = subprocess.run(
            ["runc", "--root", str(runc_root), "list", "-q"], capture_output=True, text=True
        ).stdout.split()
        for container in listed:
            subprocess.run(
                ["runc", "--root", str(runc_root), "delete", "--force", container], capture_output=True
            )
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for target in sorted((m for m in mounts if m.startswith(f"{state}/")), key=len, reverse=True):
        subprocess.run(["umount", "--lazy", target], capture_output=True)
    for parent in Path("/sys/fs/cgroup").glob(f"*/{bridge}") if bridge else []:
        with contextlib.suppress(OSError):
            parent.rmdir()


def stop_group(name: str, pid: int, grace: float = 15.0) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.1)
    print(f"rig: {name} (pid {pid}) ignored SIGTERM for {grace:.0f}s; killing", file=sys.stderr)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["up", "down", "status", "restart"])
    parser.add_argument("component", nargs="?", help="restart: the component (e.g. kube-apiserver)")
    parser.add_argument(
        "--services-only", action="store_true", help="start MariaDB, FerretDB and NATS but no control plane"
    )
    args = parser.parse_args()
    if args.command == "up":
        return up(with_cluster=not args.services_only)
    if args.command == "down":
        return down()
    if args.command == "restart":
        return restart(args.component or "")
    current = running()
    print(f"rig: running (state {current['state']})" if current else "rig: not running")
    return 0 if current else 1


if __name__ == "__main__":
    sys.exit(main())
