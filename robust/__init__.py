"""robust: harden image classifiers against adversarial inputs and measure what it costs.

Importing ``robust`` is cheap: it never imports mlflow, codecarbon or pynvml (only
``robust.tracking`` and ``robust.results`` load them, lazily).
"""

from robust.errors import ConfigError, DataError, RobustError

__version__ = "0.1.0"
__all__ = ["ConfigError", "DataError", "RobustError", "__version__"]
