"""gunicorn settings shared by both benchmarked servers (passed with ``-c``)."""

import os


def post_worker_init(worker):
    """Tell api_list.py that this worker has imported and built its app."""
    ready = os.environ.get("BENCH_READY_DIR")
    if ready:
        with open(os.path.join(ready, str(worker.pid)), "w"):
            pass
