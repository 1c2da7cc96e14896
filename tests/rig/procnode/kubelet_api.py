"""The slice of the kubelet's HTTPS API the API server calls: container logs, so `kubectl logs` works."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

from aiohttp import web


def _log_file(root: Path, namespace: str, pod: str, container: str, previous: bool) -> Path | None:
    candidates = sorted(root.glob(f"{namespace}_{pod}_*"), key=lambda p: p.stat().st_mtime)
    if not candidates:
        return None
    name = f"{container}.previous.log" if previous else f"{container}.log"
    path = candidates[-1] / "logs" / name
    return path if path.exists() else None


def app(root: Path) -> web.Application:
    async def container_logs(request: web.Request) -> web.StreamResponse:
        m = request.match_info
        previous = request.query.get("previous") == "true"
        path = _log_file(root, m["namespace"], m["pod"], m["container"], previous)
        if path is None:
            raise web.HTTPNotFound(
                text=f"no logs for container {m['container']} of pod {m['namespace']}/{m['pod']}"
            )
        data = path.read_bytes()
        if "tailLines" in request.query:
            lines = data.splitlines(keepends=True)
            data = (
                b"".join(lines[-int(request.query["tailLines"]) :])
                if int(request.query["tailLines"])
                else b""
            )
        if "limitBytes" in request.query:
            data = data[: int(request.query["limitBytes"])]
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        await response.write(data)
        if request.query.get("follow") == "true":
            offset = path.stat().st_size
            while not request.transport or not request.transport.is_closing():
                size = path.stat().st_size
                if size > offset:
                    with path.open("rb") as f:
                        f.seek(offset)
                        await response.write(f.read())
                    offset = size
                await asyncio.sleep(0.5)
        await response.write_eof()
        return response

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    application = web.Application()
    application.router.add_get("/containerLogs/{namespace}/{pod}/{container}", container_logs)
    application.router.add_get("/healthz", healthz)
    return application


async def serve(root: Path, host: str, port: int, cert: Path, key: Path, health_port: int) -> web.AppRunner:
    """HTTPS on the node IP for the API server, plain HTTP on loopback for the rig's readiness check."""
    runner = web.AppRunner(app(root), access_log=None)
    await runner.setup()
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(str(cert), str(key))
    await web.TCPSite(runner, host, port, ssl_context=tls).start()
    await web.TCPSite(runner, "127.0.0.1", health_port).start()
    return runner
