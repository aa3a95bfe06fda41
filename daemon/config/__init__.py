"""The configuration: one model (`model`, `redis`, `sidecar`) declares every key; the
loader, `check-config`, the docs' key table and the chart's schema derive from it."""

from daemon.config.fields import HostPort
from daemon.config.load import CONFIG_ENV, ConfigError, Problem, hint, load_config
from daemon.config.model import Config
from daemon.config.redis import RedisSettings
from daemon.config.render import REDACTED, effective_settings, redact_url

__all__ = [
    "CONFIG_ENV",
    "REDACTED",
    "Config",
    "ConfigError",
    "HostPort",
    "Problem",
    "RedisSettings",
    "effective_settings",
    "hint",
    "load_config",
    "redact_url",
]
