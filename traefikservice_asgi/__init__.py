"""Traefik's TraefikService (weighted round robin, sticky cookies, mirroring) as a pure
ASGI middleware for Starlette and FastAPI, configured with the same Kubernetes YAML.

    app.add_middleware(TraefikServiceMiddleware, config="routes/", backends={...})
"""

from .app import create_app
from .config import Config, load_config, load_config_text
from .exceptions import ConfigError, ConfigIssue, ConfigWarning, RuleError, TraefikServiceError
from .loadbalancer.mirror_pool import MirrorLimits
from .middleware import TraefikServiceMiddleware
from .middlewares.plugin import register_plugin

__version__ = "0.1.0"

__all__ = [
    "Config",
    "ConfigError",
    "ConfigIssue",
    "ConfigWarning",
    "MirrorLimits",
    "RuleError",
    "TraefikServiceError",
    "TraefikServiceMiddleware",
    "__version__",
    "create_app",
    "load_config",
    "load_config_text",
    "register_plugin",
]
