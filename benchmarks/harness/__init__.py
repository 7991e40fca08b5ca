"""The serving benchmark's harness, split by concern; ``benchmarks/serving.py`` is its command line.

* ``server``: one ``python -m app`` process -- its settings, start-up, RSS sampling, /metrics
  scraping, graceful stop, and the report of its lifetime;
* ``load``: the load generators (wrk and httpx), what they send and check, and latency
  percentiles;
* ``runner``: one row (a scenario at a concurrency), one mode (a server through every row), the
  whole run with its raw-generator ceiling, and the random-model store;
* ``report``: the Markdown tables and the summary against the targets.

The hostile-input benchmark (``benchmarks/hostile.py``) adds:

* ``probe``: the /healthz prober that runs during each scenario;
* ``raw``: raw-socket clients (a request sent in chunks, a flood of idle connections);
* ``hostile_scenarios``: the scenarios, each a row with RSS and /healthz latency;
* ``goodput``: wrk with a Lua status counter, goodput per concurrency and /metrics deltas;
* ``hostile_report``: its table and the goodput-at-overload summary.

The modules import ``generator_speed`` and each other as top-level modules, because running
``python benchmarks/serving.py`` puts ``benchmarks/`` on ``sys.path``.
"""
