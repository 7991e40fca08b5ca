"""Shared core of the digit GAN: network definitions (``networks``), sampling (``sampling``),
PNG imaging (``imaging``), device choice (``device``), restoration by GAN inversion
(``restoration``), the model store (``store``; one entry's manifest, weights and checks in
``artifact``, atomic publishing through locked staging directories in ``staging``), and helpers
that publish random generators for the tests' and benchmarks' stores (``testing``).

Imports: only third-party libraries and ``gan`` itself. Both ``training`` (which writes model
versions) and ``app`` (which serves them) import this package; it imports neither of them.
"""
