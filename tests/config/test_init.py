"""``traefikservice_asgi.config``'s public surface: sorted, every name importable."""

from __future__ import annotations

import traefikservice_asgi.config as config


def test_all_is_sorted_and_every_name_exists() -> None:
    assert config.__all__ == sorted(config.__all__)
    for name in config.__all__:
        assert hasattr(config, name), name


def test_the_defaults_are_traefiks() -> None:
    assert (config.DEFAULT_DIAL_TIMEOUT, config.DEFAULT_IDLE_CONN_TIMEOUT) == (30.0, 90.0)
    assert config.DEFAULT_MAX_IDLE_CONNS_PER_HOST == 200
    assert (config.DEFAULT_HEALTH_CHECK_INTERVAL, config.DEFAULT_HEALTH_CHECK_TIMEOUT) == (
        30.0,
        5.0,
    )
    assert (config.DEFAULT_MAX_BODY_SIZE, config.DEFAULT_MAX_REQUEST_BODY_BYTES) == (-1, -1)
    assert config.CookieOptions("c").path == config.DEFAULT_COOKIE_PATH == "/"
