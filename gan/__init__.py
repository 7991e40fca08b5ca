"""Shared core of the digit GAN: network definitions, sampling, imaging and the model-store format.

Both ``training`` (which writes model versions) and ``app`` (which serves them) import this package;
it imports neither of them.
"""
