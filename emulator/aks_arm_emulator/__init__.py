"""A local emulator of the AKS runCommand ARM API plus a minimal Entra ID, like Azurite.

Standalone: it imports nothing else from `controller`.
"""

from .app import create_app
from .config import ConfigError, EmulatorConfig, load_config

__all__ = ["ConfigError", "EmulatorConfig", "create_app", "load_config"]
