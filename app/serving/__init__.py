"""Serving the model: the inference worker that owns it, the dynamic batching in front of it, the
registry that loads, warms and swaps versions (and follows the store's ACTIVE pointer), the
encoder pool that turns images into PNG/base64, and an image's identity (seed, version pin).

May import ``app.config``, ``app.metrics``, ``app.schemas`` and ``gan``; never ``app.http``,
``app.routes``, ``app.retraining`` or ``training``.
"""
