"""Which httpx transport should the gateway forward through? Measured, not guessed.

Runs, on 127.0.0.1 only:

* a uvicorn (httptools, uvloop, 1 worker) backend answering ``Hello app-v1``;
* one gateway process per transport variant (same server settings), each the package's
  ``create_app`` with ``client=httpx.AsyncClient(transport=...)``;
* ``wrk -t2 -c64`` against the backend directly and against every gateway, interleaved
  round by round (direct, a, b, ... then again), so machine noise hits every variant
  alike; the result is each variant's throughput as a ratio of direct, per round.

Variants: ``a`` today's ``default_client()``; ``b`` the same with ``sniffio`` importable;
``c`` httpcore tuned (``AsyncHTTPTransport(http1 only, retries=0, limits=...)`` with
sniffio); ``d`` ``httpx-aiohttp``; ``e`` :class:`GatewayTransport`; ``e-direct`` the same
with ``AsyncClient.send`` replaced by a direct ``transport.handle_async_request`` call
(what proxy/http.py would do if it bypassed the client layer); ``a-direct`` likewise for httpcore.

``sniffio`` and ``httpx-aiohttp`` are not dependencies of the package: they are installed
into private folders (``pip install --target``) given to the variants that use them, so
the shared environment and the other variants stay as users have them.

Before measuring, each gateway is probed for correctness: upstream header duplicates or
additions, response streaming, error statuses (refused, closed without answer), a
response cut short, and cookies leaking between clients through a shared session.

    python bench/transport_compare.py                  # 3 rounds of 10 s
    python bench/transport_compare.py --rounds 5 --duration 15
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

EXTRA = Path(os.environ.get("TRANSPORT_COMPARE_EXTRA", "/tmp/traefikservice-transport-extra"))
VARIANTS = ("a", "b", "c", "d", "e", "e-direct", "a-direct")
DESCRIPTIONS = {
    "a": "default_client() (httpcore)",
    "b": "default_client() + sniffio installed",
    "c": "httpcore tuned: AsyncHTTPTransport(http1, retries=0, limits) + sniffio",
    "d": "httpx-aiohttp AiohttpTransport",
    "e": "GatewayTransport (this package)",
    "e-direct": "GatewayTransport, transport called directly (no client.send)",
    "a-direct": "default httpcore transport called directly (no client.send)",
}
ROUTES = ("bench", "rec", "stream", "refused", "silent", "cut", "cookie")


# -- child processes ----------------------------------------------------------------------


async def backend_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The walkthrough's nginx pod: ``Hello app-v1``, nothing else."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b"Hello app-v1\n"
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _config_yaml() -> str:
    routes = "".join(
        f"  - match: Host(`{name}.local`)\n    kind: Rule\n    services:\n"
        f"    - name: {name}\n      port: 80\n"
        for name in ROUTES
    )
    return (
        "apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\n"
        "metadata:\n  name: bench\n  namespace: default\n"
        f"spec:\n  entryPoints: [web]\n  routes:\n{routes}"
    )


def _client(variant: str) -> Any:
    import httpx

    from traefikservice_asgi.transport import default_client, no_cookie_jar

    common: dict[str, Any] = {
        "timeout": httpx.Timeout(connect=30.0, read=None, write=None, pool=None),
        "follow_redirects": False,
        "trust_env": False,
        "cookies": no_cookie_jar(),
    }
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=200, keepalive_expiry=90)
    base: type[httpx.AsyncClient] = httpx.AsyncClient
    if variant.endswith("-direct"):

        class DirectClient(httpx.AsyncClient):
            """``send`` as a bare transport call: what the client layer costs."""

            async def send(self, request: httpx.Request, **_: Any) -> httpx.Response:  # type: ignore[override]
                if "timeout" not in request.extensions:
                    request.extensions["timeout"] = self.timeout.as_dict()
                return await self._transport.handle_async_request(request)

        base = DirectClient
    if variant in ("a", "b"):
        return default_client()
    if variant == "a-direct":
        return base(limits=limits, **common)
    if variant == "c":
        transport = httpx.AsyncHTTPTransport(http1=True, http2=False, retries=0, limits=limits)
        return base(transport=transport, **common)
    if variant == "d":
        from httpx_aiohttp import AiohttpTransport

        return base(transport=AiohttpTransport(limits=limits, trust_env=False), **common)
    if variant in ("e", "e-direct"):
        from traefikservice_asgi.transport import GatewayTransport

        return base(transport=GatewayTransport(), **common)
    raise SystemExit(f"unknown variant {variant!r}")


def serve(role: str, port: int, variant: str, backends: dict[str, str]) -> None:
    import uvicorn

    if role == "backend":
        app: Any = backend_app
    else:
        from traefikservice_asgi import create_app
        from traefikservice_asgi.config import load_config_text

        mapping = {f"default/{name}:80": url for name, url in backends.items()}
        app = create_app(
            load_config_text(_config_yaml(), backends=mapping), client=_client(variant)
        )
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        workers=1,
        lifespan="on",
        access_log=False,
        log_level="warning",
        server_header=False,
    )


# -- fault servers for the probes (threads in this process) -------------------------------


class RawServer:
    """A plain asyncio TCP server in a thread, running ``handler(reader, writer, self)``."""

    def __init__(self, handler: Any) -> None:
        self.handler = handler
        self.release = threading.Event()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def start() -> None:
            await asyncio.start_server(lambda r, w: self.handler(r, w, self), sock=self.sock.dup())

        self.loop.run_until_complete(start())
        self.loop.run_forever()

    def stop(self) -> None:
        self.release.set()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.sock.close()


async def _read_head(reader: asyncio.StreamReader) -> None:
    await reader.readuntil(b"\r\n\r\n")


async def streaming_handler(reader: Any, writer: Any, server: RawServer) -> None:
    """Send the head and a first chunk, then hold the rest until the probe saw it."""
    with contextlib.suppress(Exception):
        await _read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nfirst")
        await writer.drain()
        await asyncio.get_running_loop().run_in_executor(None, server.release.wait, 10)
        writer.write(b"-last")
        await writer.drain()
        writer.close()


async def silent_close_handler(reader: Any, writer: Any, server: RawServer) -> None:
    """Read the request, answer nothing, close."""
    with contextlib.suppress(Exception):
        await _read_head(reader)
    writer.close()


async def cut_handler(reader: Any, writer: Any, server: RawServer) -> None:
    """Announce 100 bytes, send 10, close."""
    with contextlib.suppress(Exception):
        await _read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
        await writer.drain()
    writer.close()


# -- orchestration ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"process for port {port} exited: {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"nothing listening on {port} after {timeout}s")


def ensure_extras() -> dict[str, str]:
    """Private install folders for sniffio and httpx-aiohttp (pip --target)."""
    EXTRA.mkdir(parents=True, exist_ok=True)
    folders = {"sniffio": EXTRA / "sniffio", "aiohttp": EXTRA / "aiohttp"}
    pip = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    if not (folders["sniffio"] / "sniffio").exists():
        subprocess.run([*pip, "--target", str(folders["sniffio"]), "sniffio"], check=True)
    if not (folders["aiohttp"] / "httpx_aiohttp").exists():
        # httpx itself comes from the environment; only aiohttp's own stack is added.
        subprocess.run(
            [*pip, "--target", str(folders["aiohttp"]), "--no-deps", "httpx-aiohttp", "aiohttp"],
            check=True,
        )
        subprocess.run(
            [
                *pip,
                "--target",
                str(folders["aiohttp"]),
                "--no-deps",
                "aiohappyeyeballs",
                "aiosignal",
                "attrs",
                "frozenlist",
                "multidict",
                "propcache",
                "yarl",
            ],
            check=True,
        )
    return {k: str(v) for k, v in folders.items()}


def variant_path(variant: str, extras: dict[str, str]) -> str:
    paths = [str(ROOT)]
    if variant in ("b", "c", "d"):
        paths.append(extras["sniffio"])  # c: the tuned httpcore includes the sniffio fix
    if variant == "d":
        paths = [str(ROOT), extras["aiohttp"]]  # aiohttp needs no sniffio
    return os.pathsep.join(paths)


@contextlib.contextmanager
def process(
    args: list[str], env: dict[str, str], log: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """A child in its own session; its stderr (the probes' expected tracebacks) goes to
    ``log`` when given."""
    stderr = log.open("wb") if log is not None else None
    proc = subprocess.Popen(args, env=env, start_new_session=True, stderr=stderr)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if stderr is not None:
            stderr.close()


def wrk(port: int, host: str, duration: int, threads: int, connections: int) -> dict[str, float]:
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{duration}s",
            "-H",
            f"Host: {host}",
            f"http://127.0.0.1:{port}/",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=duration + 30,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:(.*)", out)
    return {
        "rps": rps,
        "non2xx": float(non2xx.group(1)) if non2xx else 0.0,
        "socket_errors": float(sum(int(n) for n in re.findall(r"\d+", errors.group(1))))
        if errors
        else 0.0,
    }


def probe(port: int, stream_server: RawServer, rec: Any, cookie_backend: Any) -> dict[str, Any]:
    """Correctness of one gateway, seen from a client and from the backends."""
    import httpx

    base = f"http://127.0.0.1:{port}"
    result: dict[str, Any] = {}
    expected = {
        "host",
        "x-real-ip",
        "x-forwarded-proto",
        "x-forwarded-port",
        "x-forwarded-host",
        "x-forwarded-server",
        "x-forwarded-for",
        "accept-encoding",
        "content-length",
        "transfer-encoding",
        "content-type",
        "x-probe",
        "accept",
        "user-agent",
    }
    sent_headers = {"X-Probe": "1", "User-Agent": "probe-agent/1", "Accept": "x/probe"}
    with httpx.Client(base_url=base, timeout=10, trust_env=False) as client:
        rec.clear()
        client.get("/g", headers={"Host": "rec.local", **sent_headers})

        def body() -> Iterator[bytes]:
            yield b"chunk-1"
            yield b"chunk-2"

        client.post("/c", headers={"Host": "rec.local", **sent_headers}, content=body())
        client.post("/l", headers={"Host": "rec.local", **sent_headers}, content=b"0123456789")
        seen = rec.wait_for_requests(3)
        problems = []
        for r in seen:
            names = [k.lower() for k, _ in r.headers]
            dupes = sorted({n for n in names if names.count(n) > 1})
            extra = sorted(set(names) - expected)
            framing = {"content-length", "transfer-encoding"} & set(names)
            for key, value in sent_headers.items():
                if r.header_values(key) != [value]:
                    problems.append(f"{r.method} {r.path}: {key} {r.header_values(key)}")
            if dupes:
                problems.append(f"{r.method} {r.path}: duplicated {dupes}")
            if extra:
                problems.append(f"{r.method} {r.path}: added {extra}")
            if len(framing) > 1:
                problems.append(f"{r.method} {r.path}: both CL and TE")
            if r.method == "GET" and framing:
                problems.append(f"GET sent with {sorted(framing)}")
            if r.method == "POST" and r.body not in (b"chunk-1chunk-2", b"0123456789"):
                problems.append(f"POST body {r.body!r}")
        result["upstream_headers"] = problems or "ok"

        # Streaming: the first chunk must reach the client while the backend holds the rest.
        stream_server.release.clear()
        try:
            with client.stream(
                "GET", "/", headers={"Host": "stream.local"}, timeout=httpx.Timeout(3.0)
            ) as response:
                chunks = response.iter_raw()
                first = next(chunks)
                result["streams"] = f"yes (first {first!r} before the backend finished)"
                stream_server.release.set()
                for _ in chunks:
                    pass
        except httpx.ReadTimeout:
            result["streams"] = "NO: nothing arrived while the backend held the body"
        finally:
            stream_server.release.set()

        for route, want in (("refused", 502), ("silent", 502)):
            try:
                status: Any = client.get("/", headers={"Host": f"{route}.local"}).status_code
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            result[f"{route}->"] = f"{status}" + ("" if status == want else f" (want {want})")
        try:
            response = client.get("/", headers={"Host": "cut.local"})
            result["cut_body"] = f"INCOMPLETE BODY PASSED AS COMPLETE ({len(response.content)}B)"
        except httpx.HTTPError as exc:
            result["cut_body"] = f"aborted ({type(exc).__name__})"

        # Two different clients (no cookies of their own): the second must not receive
        # the first one's cookie from a jar inside the gateway.
        cookie_backend.clear()
        for _user in range(2):
            client.cookies.clear()
            client.get("/", headers={"Host": "cookie.local"})
        second = cookie_backend.wait_for_requests(2)[1]
        leaked = second.header("cookie")
        result["cookie_leak"] = f"LEAKS {leaked!r}" if leaked else "no"
    return result


def micro_send_overhead(n: int = 20000) -> dict[str, float]:
    """µs per request of ``client.send`` vs ``transport.handle_async_request`` over a
    transport that answers at once: the client layer's own cost, nothing else."""
    import httpx

    from traefikservice_asgi.transport import default_client

    class Instant(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, headers=[(b"content-length", b"2")], stream=_Two())

    class _Two(httpx.AsyncByteStream):
        async def __aiter__(self) -> Any:
            yield b"ok"

    async def run() -> dict[str, float]:
        client = default_client()
        client._transport = Instant()
        transport = client._transport
        headers = [(b"host", b"x"), (b"x-forwarded-for", b"1.2.3.4"), (b"set-cookie", b"a=b")]
        out: dict[str, list[float]] = {"client.send": [], "transport direct": []}
        for _round in range(5):
            for label in out:
                t0 = time.perf_counter()
                for _ in range(n // 5):
                    req = httpx.Request(
                        "GET", "http://x/", headers=headers, stream=httpx.ByteStream(b"")
                    )
                    if label == "client.send":
                        resp = await client.send(req, stream=True, follow_redirects=False)
                    else:
                        req.extensions["timeout"] = client.timeout.as_dict()
                        resp = await transport.handle_async_request(req)
                    async for _chunk in resp.aiter_raw():
                        pass
                    await resp.aclose()
                out[label].append((time.perf_counter() - t0) / (n // 5) * 1e6)
        return {k: statistics.median(v) for k, v in out.items()}

    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--serve", choices=("backend", "gateway"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--variant", default="", help=argparse.SUPPRESS)
    parser.add_argument("--backends", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.variant, json.loads(args.backends))
        return
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install -y wrk")
    variants = [v for v in args.variants.split(",") if v]
    extras = ensure_extras()

    from tests.support.backends import RecordingBackend

    micro = micro_send_overhead()
    print("client layer cost per request (instant transport, µs):", micro, flush=True)

    stream_server = RawServer(streaming_handler)
    silent = RawServer(silent_close_handler)
    cut = RawServer(cut_handler)
    refused_port = free_port()  # nothing listens there
    with (
        RecordingBackend("rec") as rec,
        RecordingBackend("cookie", headers=[("Set-Cookie", "sid=user-1-secret; Path=/")]) as ck,
        contextlib.ExitStack() as stack,
    ):
        backend_port = free_port()
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        me = [sys.executable, str(Path(__file__).resolve())]
        backend = stack.enter_context(
            process([*me, "--serve", "backend", "--port", str(backend_port)], env)
        )
        wait_port(backend_port, backend)
        backends = {
            "bench": f"http://127.0.0.1:{backend_port}",
            "rec": rec.url,
            "stream": stream_server.url,
            "refused": f"http://127.0.0.1:{refused_port}",
            "silent": silent.url,
            "cut": cut.url,
            # a host name, not an IP: cookie jars (aiohttp's) ignore cookies for IPs
            "cookie": f"http://localhost:{ck.port}",
        }
        ports: dict[str, int] = {}
        for variant in variants:
            port = free_port()
            venv = {**os.environ, "PYTHONPATH": variant_path(variant, extras)}
            proc = stack.enter_context(
                process(
                    [
                        *me,
                        "--serve",
                        "gateway",
                        "--variant",
                        variant,
                        "--port",
                        str(port),
                        "--backends",
                        json.dumps(backends),
                    ],
                    venv,
                    EXTRA / f"gateway-{variant}.log",
                )
            )
            wait_port(port, proc)
            ports[variant] = port

        probes = {v: probe(ports[v], stream_server, rec, ck) for v in variants}
        for v in variants:
            print(f"probe {v:9} {probes[v]}", flush=True)

        targets = [("direct", backend_port), *((v, ports[v]) for v in variants)]
        for _name, port in targets:  # warm-up: connections, code paths
            wrk(port, "bench.local", 2, args.threads, args.connections)
        runs: dict[str, list[dict[str, float]]] = {name: [] for name, _ in targets}
        for rnd in range(args.rounds):
            for name, port in targets:
                r = wrk(port, "bench.local", args.duration, args.threads, args.connections)
                runs[name].append(r)
                print(f"round {rnd + 1} {name:9} {r['rps']:9.0f} req/s", flush=True)
    for server in (stream_server, silent, cut):
        server.stop()

    print()
    print(
        f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s, "
        f"{args.rounds} interleaved rounds; ratio = variant / direct of the same round"
    )
    print(
        f"{'target':9} {'median req/s':>12} {'ratio (median)':>14} {'ratios per round':>24}  what"
    )
    direct = [r["rps"] for r in runs["direct"]]
    table = {}
    for name, _ in targets:
        rps = [r["rps"] for r in runs[name]]
        ratios = [x / d for x, d in zip(rps, direct, strict=True)]
        bad = sum(r["non2xx"] + r["socket_errors"] for r in runs[name])
        table[name] = {"rps": statistics.median(rps), "ratio": statistics.median(ratios)}
        print(
            f"{name:9} {statistics.median(rps):12.0f} {statistics.median(ratios):14.3f} "
            f"{' '.join(f'{x:.3f}' for x in ratios):>24}  "
            f"{DESCRIPTIONS.get(name, 'uvicorn backend, no gateway')}"
            + (f"  [{bad:.0f} non-2xx/socket errors]" if bad else "")
        )
    if args.json:
        args.json.write_text(
            json.dumps({"table": table, "runs": runs, "probes": probes, "micro": micro}, indent=2)
        )


if __name__ == "__main__":
    main()
