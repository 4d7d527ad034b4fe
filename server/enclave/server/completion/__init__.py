"""Inline completion, as one feature: ``enclave.server.completion.pipeline`` reads top to bottom
(cursor -> sources -> fit -> admit -> prompt -> model stream -> finish); each stage is a module
beside it (``cursor``, ``sources/``, ``fit``, ``prompt``, ``finish``) and ``tuning`` holds its
constants. The language server's handler (``enclave.server.lsp.completion``) and
``enclave context`` call the pipeline; the model client (``enclave.server.model.client``) only
carries the admitted prompt to a model server and back.
"""
