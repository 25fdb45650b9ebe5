"""Trellis with the candidate fixes of candidate_fixes.py applied (``api_list.py --with-fixes``).

Served by gunicorn as ``patched_app:create_app()`` from the bench folder.
"""

from __future__ import annotations

from candidate_fixes import apply_fixes


def create_app():
    from trellis.app import create_app as create_trellis

    app = create_trellis()
    apply_fixes(app)
    return app
