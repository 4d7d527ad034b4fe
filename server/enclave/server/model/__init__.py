"""The local model layer: the Ollama client, prompts, budgets and post-processing.

Everything that talks to the model goes through :class:`server.model.client.ModelClient`.
"""
