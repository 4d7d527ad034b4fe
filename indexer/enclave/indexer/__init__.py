"""The indexer: discover -> redact -> chunk -> embed -> store -> search (``enclave.indexer.api``).

Importing it defers LanceDB's REST catalog client, which Enclave never uses, so a CLI command that
opens the index does not pay for it (``enclave.indexer.lazy_rest_client``).
"""

from enclave.indexer import lazy_rest_client

lazy_rest_client.defer()
