"""Trellis CRM: a plugin platform on Flask-AppBuilder.

Plugins import :data:`hookimpl` to implement the hooks in
:mod:`trellis.hookspecs`, and the value objects in :mod:`trellis.specs`.
"""

import pluggy

__version__ = "0.1.0"

#: Marker for plugin hook implementations: ``@hookimpl def trellis_models(): ...``
hookimpl = pluggy.HookimplMarker("trellis")

__all__ = ["__version__", "hookimpl", "create_app"]


def create_app(*args, **kwargs):
    """Build a Trellis app (see :func:`trellis.app.create_app`)."""
    from trellis.app import create_app as factory

    return factory(*args, **kwargs)
