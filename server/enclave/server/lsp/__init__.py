"""Enclave's language server: the pygls app (``app``) and its feature modules.

``app.create_server`` builds the server; each feature module (settings, status, indexing,
completion, answers, symbols) has a ``setup(server, services)`` that registers its LSP methods.
"""
