"""Providers: where configurations come from while the gateway runs (the Kubernetes API).

The config layer turns what a provider gathers into a :class:`~..config.Config` without
I/O; a provider owns the I/O (its API client, watches, retries) and hands each new
configuration to a callback.
"""
