"""Readers of the Kubernetes kinds a route needs, one module per kind as in Traefik's
CRD provider: each turns one resource's ``spec`` into a frozen model of
:mod:`..models`, reporting every problem through a :class:`.._fields.Reader`."""
