"""One module per balancing strategy, named as Traefik's packages are."""
