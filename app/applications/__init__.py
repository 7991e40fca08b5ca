"""Applications built on the generator: streamed synthetic data sets, restoration of damaged
digits by GAN inversion (its own worker thread), and the reading of restoration uploads.

May import ``app.config``, ``app.limits``, ``app.metrics``, ``app.schemas``, ``app.serving`` and
``gan``; never ``app.http`` or ``app.routes``.
"""
