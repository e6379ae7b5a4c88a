"""A FastAPI app with routes of its own, plus the walkthrough's TraefikServices.

Requests for the walkthrough's hosts go to app-v1/app-v2 exactly as Traefik would send
them; every other request reaches FastAPI untouched.

    pip install fastapi uvicorn     # FastAPI is not a dependency of traefikservice-asgi
    # two backends, e.g. python -m http.server 9001 / 9002 (or anything answering HTTP)
    uvicorn examples.fastapi_app:app --port 8000 --lifespan on \
        --no-server-header --no-proxy-headers

``--lifespan on``: a bad configuration then stops uvicorn at startup; under the default
``--lifespan auto`` uvicorn takes the failure for "lifespan unsupported" and answers
every request 500. The folder is found from this file (``BLOG``), not from the working
directory, as a relative ``config="examples/blog/"`` would be.
    curl -H 'Host: traefikservice-wrr.kubesre.lc' http://127.0.0.1:8000/   # proxied
    curl http://127.0.0.1:8000/health                                       # FastAPI

``examples/blog/endpoints.yaml`` points the Services at 127.0.0.1:9001 and :9002; set
``APP_V1``/``APP_V2`` to other URLs to override them.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI

from traefikservice_asgi import TraefikServiceMiddleware

BLOG = Path(__file__).with_name("blog")

app = FastAPI()


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


backends = {
    key: os.environ[env]
    for key, env in (("default/app-v1:80", "APP_V1"), ("default/app-v2:80", "APP_V2"))
    if env in os.environ
}
app.add_middleware(TraefikServiceMiddleware, config=BLOG, backends=backends)
