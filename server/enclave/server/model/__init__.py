"""The model layer: the Ollama client (transport only), the answers' prompts and token budgets.

Everything sent to a model goes through :class:`enclave.server.model.client.ModelClient`, as a
:class:`enclave.server.trust.Prompt`; a completion's prompt and finish are
``enclave.server.completion``'s.
"""
