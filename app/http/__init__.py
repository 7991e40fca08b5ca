"""The HTTP edge shared by every route: middleware (request ids, access log, body limit, Allow
headers), the mapping of domain exceptions to statuses, the OpenAPI response blocks and the
configured limits in the document, content negotiation and client-disconnect handling.

May import the domain packages (``app.serving``, ``app.retraining``, ``app.applications``),
``app.limits``, ``app.schemas`` and ``gan``; never ``app.routes``.
"""
