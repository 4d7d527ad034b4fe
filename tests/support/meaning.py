"""A small corpus whose queries match their functions by meaning only (no docstrings, no shared
words): for the embedding tests."""

from __future__ import annotations

# Docstring-free code: only meaning, not shared words, connects these queries to their functions.
MEANING = {
    "net/backoff.py": (
        "import random\nimport time\n\n\n"
        "def call_with_backoff(operation, attempts=5):\n"
        "    for attempt in range(attempts):\n"
        "        try:\n"
        "            return operation()\n"
        "        except ConnectionError:\n"
        "            time.sleep(2 ** attempt + random.random())\n"
        "    raise RuntimeError('gave up')\n"
    ),
    "text/slug.py": (
        "import re\n\n\n"
        "def slugify(title):\n"
        "    lowered = title.strip().lower()\n"
        "    return re.sub(r'[^a-z0-9]+', '-', lowered).strip('-')\n"
    ),
    "db/pool.py": (
        "class ConnectionPool:\n"
        "    def __init__(self, size):\n"
        "        self.free = [object() for _ in range(size)]\n\n"
        "    def acquire(self):\n"
        "        return self.free.pop()\n\n"
        "    def release(self, conn):\n"
        "        self.free.append(conn)\n"
    ),
}
