"""Retraining jobs: the job manager that runs the training CLI as a subprocess and follows its
progress, the SQLite job database, and the promotion policy (the quality gates).

May import ``app.config``, ``app.serving`` (to activate a version) and ``gan``; never
``training`` (a job talks to it only through its command line), ``app.http`` or ``app.routes``.
"""
