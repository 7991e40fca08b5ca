"""Offline training, evaluation and export of the conditional MNIST GAN
(imports ``gan``, never ``app``)."""
