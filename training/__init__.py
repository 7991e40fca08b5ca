"""Offline training, evaluation and export of the conditional MNIST GAN.

What lives here: the command line (``cli``, run as ``python -m training``, its options in
``options``), the run's recipe and its defaults (``config``; ``schedule``: weights that change
over the steps), MNIST reading and download (``data``), the training loop (``train``) and the
pieces it is built from (``distributed``: devices and torchrun ranks; ``checkpoint``: save and
resume; ``ema``: the averaged generator that gets exported; ``export``: staging, evaluating and
publishing a version; ``progress``: the progress bar, JSON lines and phases), the throughput
measurement (``speed``), the judge (``classifier``), the metrics (``evaluate``) and the
application evaluations (``restoration_eval``, ``augmentation_eval``).

Imports: ``gan`` (networks, sampling, the model-store format), never ``app``; the service runs
training only as a separate process through the command line.
"""
