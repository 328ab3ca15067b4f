"""Logging set-up."""

from __future__ import annotations

import logging


def enable_logging(level: int = logging.INFO, name: str = "a2c_jax") -> logging.Logger:
    """Sends a2c_jax's log lines (e.g. ``TrainMonitor``'s one line per episode) to stderr."""
    logger = logging.getLogger(name)
    logger.setLevel(level)
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("[%(name)s|%(levelname)s] %(message)s"))
        logger.addHandler(handler)
    return logger
