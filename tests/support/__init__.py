"""Test helpers: real HTTP backends, a uvicorn runner for ASGI apps, and the Traefik oracle."""
