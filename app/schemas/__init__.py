"""Request and response bodies of the public API, one module per area of the API.

Bounds here are the static ones (a digit is 0-9); configurable limits (``GAN_MAX_N`` and the
like) live in ``app.limits``, which the routes check and the OpenAPI document states. May import
``app.limits`` and ``gan``; nothing else of the app.
"""
