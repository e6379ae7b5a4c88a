"""What happens to a request before routing: Traefik's entry point.

* :mod:`.context`: every key the package puts in an ASGI scope or message, each with
  its accessor, in one place;
* :mod:`.forwarding`: the request as a backend will see it (``X-Forwarded-*``,
  hop-by-hop headers, the normalised target), computed once per matched request;
* :mod:`.lifecycle`: watching the client, and stopping the work done for it when it
  goes.
"""
