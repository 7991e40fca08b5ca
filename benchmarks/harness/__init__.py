"""The serving benchmark's harness, split by concern; ``benchmarks/serving.py`` is its command line.

* ``server``: one ``python -m app`` process -- its settings, start-up, RSS sampling, /metrics
  scraping, graceful stop, and the report of its lifetime;
* ``load``: the load generators (wrk and httpx), what they send and check, and latency
  percentiles;
* ``runner``: one row (a scenario at a concurrency), one mode (a server through every row), the
  whole run with its raw-generator ceiling, and the random-model store;
* ``report``: the Markdown tables and the summary against the targets.

The modules import ``generator_speed`` and each other as top-level modules, because running
``python benchmarks/serving.py`` puts ``benchmarks/`` on ``sys.path``.
"""
