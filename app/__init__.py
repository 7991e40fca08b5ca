"""The FastAPI service: loads the active model version once and serves generated digits.

Where things live (each folder's own docstring says more):

- ``main.py``      the app factory: builds the services once, installs routes, handlers, middleware
- ``config.py``    the one ``Settings`` object (``GAN_*`` environment variables)
- ``limits.py``    the limits table: every configurable request limit, declared once
- ``deps.py``      the ``Services`` container and the ``Annotated`` dependencies (admin auth too)
- ``logs.py``, ``metrics.py``   logging set-up and the Prometheus metrics
- ``serving/``     inference worker, dynamic batching, model registry, PNG encoding
- ``retraining/``  retraining jobs, their database, the promotion policy
- ``applications/`` synthetic data sets and restoration of damaged digits
- ``http/``        middleware, error mapping, OpenAPI blocks, content negotiation, disconnects
- ``schemas/``     the request and response bodies
- ``routes/``      one leaf module per area of the API: parse, call the domain, encode
- ``static/``      the web page (ES modules, no build step)

The app imports ``gan`` (networks, artifact format) and never ``training``.
"""
