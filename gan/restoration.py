"""Restoring damaged digits by GAN inversion.

Given a damaged 28x28 digit ``x`` and the set ``K`` of its pixels that survived, find a digit ``d``
and latent code ``z`` whose generated image matches ``x`` on ``K``, then fill the damaged pixels in
from that image. The objective is the negative log posterior of a model with Gaussian pixel noise
(standard deviation ``noise_std`` in the networks' [-1, 1] range) and the generator's N(0, I)
prior on ``z``::

    J(z, d) = sum_{p in K} (G(z, d)_p - x_p)^2 / (2 noise_std^2) + |z|^2 / 2

The search runs as one batch: for every candidate digit (the given one, or all ten) draw ``pool``
latents and keep the ``restarts`` best (forward passes only); optimise all of them with Adam for a
quarter of ``steps``; keep the ``keep_digits`` most likely digits and optimise those for the rest.
The best ``(z, d)`` restores the image: generated pixels where damaged, the input's own pixels
everywhere else. ``exp(-J)`` of each digit's best code, normalised over the digits, is its score
(an approximate posterior; it is usually confident).

Pure torch: no web framework, no store. Several images can be restored in one batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import nn

from gan.networks import IMAGE_SIZE, NUM_CLASSES
from gan.sampling import from_uint8, to_uint8

NOISE_STD = 0.2
DEFAULT_STEPS = 100
DEFAULT_RESTARTS = 4
POOL_PER_RESTART = 8
KEEP_DIGITS = 3
LEARNING_RATE = 0.1
MAX_FORWARD_BATCH = 1024


class RestorationError(ValueError):
    """The input cannot be restored (bad shapes, nothing known, a digit out of range)."""


class NothingKnownError(RestorationError):
    """The mask marks every pixel as damaged: there is nothing to match."""


@dataclass(frozen=True)
class Restoration:
    image: torch.Tensor  # (28, 28) uint8 on the CPU: known pixels as input, damaged generated
    generated: torch.Tensor  # (28, 28) uint8 on the CPU: the generator's image for the best code
    digit: int
    score: float  # the digit's share of the posterior over the candidate digits
    scores: dict[int, float]  # every candidate digit's share
    error: float  # RMS difference of generated and input on the known pixels, in [0, 1] units
    steps: int


def restore(
    generator: nn.Module,
    image: torch.Tensor,
    missing: torch.Tensor,
    *,
    digit: int | None = None,
    steps: int = DEFAULT_STEPS,
    restarts: int = DEFAULT_RESTARTS,
    seed: int = 0,
    interrupt: Callable[[], None] | None = None,
) -> Restoration:
    """Restore one (28, 28) uint8 ``image`` whose pixels are damaged where ``missing`` is True."""
    digits = None if digit is None else [digit]
    return restore_batch(
        generator,
        image.unsqueeze(0),
        missing.unsqueeze(0),
        digits=digits,
        steps=steps,
        restarts=restarts,
        seed=seed,
        interrupt=interrupt,
    )[0]


def restore_batch(
    generator: nn.Module,
    images: torch.Tensor,
    missing: torch.Tensor,
    *,
    digits: Sequence[int] | None = None,
    steps: int = DEFAULT_STEPS,
    restarts: int = DEFAULT_RESTARTS,
    seed: int = 0,
    pool: int | None = None,
    keep_digits: int = KEEP_DIGITS,
    lr: float = LEARNING_RATE,
    noise_std: float = NOISE_STD,
    interrupt: Callable[[], None] | None = None,
) -> list[Restoration]:
    """Restore N images at once: ``images`` (N, 28, 28) uint8, ``missing`` (N, 28, 28) bool.

    ``digits``: each image's digit when known, else None (every digit is tried). ``interrupt`` is
    called before every optimisation step; raise from it to abandon the restoration. The result
    depends only on the inputs and ``seed`` (and the batch it ran in).
    """
    _check_inputs(images, missing, digits, steps, restarts)
    objective = _Objective(generator, images, missing, noise_std)
    candidates = _candidates(digits, len(images)).to(objective.device)
    drawn = max(pool if pool is not None else restarts * POOL_PER_RESTART, restarts)
    z, digit_cost = _initial_codes(objective, candidates, drawn, restarts, seed)
    z, labels = _optimise(objective, z, candidates, digit_cost, steps, keep_digits, lr, interrupt)
    with torch.no_grad():
        cost, generated = objective(z.detach(), labels)
        digit_cost.scatter_(1, labels, cost.min(dim=2).values)
        target, known = objective.target, objective.known
        return _results(cost, generated, labels, digit_cost, images, missing, target, known, steps)


class _Objective:
    """J(z, d) for a batch of damaged images: z (N, C, R, D), labels (N, C) -> J (N, C, R) and
    the generated images (N, C, R, 1, 28, 28)."""

    def __init__(
        self, generator: nn.Module, images: torch.Tensor, missing: torch.Tensor, noise_std: float
    ) -> None:
        self.generator = generator
        self.device = next(generator.parameters()).device
        self.latent_dim = int(cast(Any, generator).config.latent_dim)
        self.target = from_uint8(images).to(self.device)  # (N, 1, 28, 28) in [-1, 1]
        self.known = (~missing).to(self.device).unsqueeze(1).float()
        self.weight = 1.0 / (2 * noise_std**2)

    def __call__(self, z: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, c, r, _ = z.shape
        flat_labels = labels.unsqueeze(2).expand(n, c, r).reshape(-1)
        flat_z = z.reshape(-1, self.latent_dim)
        parts = [
            self.generator(
                flat_z[i : i + MAX_FORWARD_BATCH], flat_labels[i : i + MAX_FORWARD_BATCH]
            )
            for i in range(0, len(flat_z), MAX_FORWARD_BATCH)
        ]
        generated = torch.cat(parts).float().view(n, c, r, 1, IMAGE_SIZE, IMAGE_SIZE)
        residual = (generated - self.target[:, None, None]).square() * self.known[:, None, None]
        fit = residual.sum(dim=(3, 4, 5)) * self.weight
        return fit + 0.5 * z.square().sum(dim=3), generated


def _candidates(digits: Sequence[int] | None, count: int) -> torch.Tensor:
    """(N, C) candidate digits per image: the given one (C = 1), or all ten."""
    if digits is None:
        return torch.arange(NUM_CLASSES).expand(count, NUM_CLASSES).clone()
    return torch.tensor(list(digits), dtype=torch.int64).unsqueeze(1)


def _initial_codes(
    objective: _Objective, candidates: torch.Tensor, drawn: int, restarts: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw ``drawn`` latents per candidate digit and keep the ``restarts`` best (forward passes
    only); returns them (N, C, R, D) and each digit's best cost so far (N, 10; inf if no
    candidate)."""
    count, device = len(candidates), objective.device
    rng = torch.Generator().manual_seed(seed)
    shape = (count, candidates.shape[1], drawn, objective.latent_dim)
    z_pool = torch.randn(*shape, generator=rng).to(device)
    with torch.no_grad():
        pool_cost, _ = objective(z_pool, candidates)
    best = pool_cost.topk(restarts, dim=2, largest=False).indices
    # Each candidate digit's best cost so far: a digit dropped early keeps its last value.
    digit_cost = torch.full((count, NUM_CLASSES), float("inf"), device=device)
    digit_cost.scatter_(1, candidates, pool_cost.min(dim=2).values)
    return _take(z_pool, best).requires_grad_(True), digit_cost


def _optimise(
    objective: _Objective,
    z: torch.Tensor,
    labels: torch.Tensor,
    digit_cost: torch.Tensor,
    steps: int,
    keep_digits: int,
    lr: float,
    interrupt: Callable[[], None] | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Adam on every code for ``steps`` steps, keeping only the ``keep_digits`` cheapest digits
    after a quarter of them; updates ``digit_cost`` and returns the codes and their digits."""
    optimizer = torch.optim.Adam([z], lr=lr)
    prune_at = steps // 4
    for step in range(steps):
        if step == prune_at and labels.shape[1] > keep_digits:
            z, labels = _prune(z, labels, digit_cost, keep_digits)
            optimizer = torch.optim.Adam([z], lr=lr)
        if interrupt is not None:
            interrupt()
        cost, _ = objective(z, labels)
        digit_cost.scatter_(1, labels, cost.detach().min(dim=2).values)
        (gradient,) = torch.autograd.grad(cost.sum(), z)
        z.grad = gradient
        optimizer.step()
    return z, labels


def _check_inputs(
    images: torch.Tensor,
    missing: torch.Tensor,
    digits: Sequence[int] | None,
    steps: int,
    restarts: int,
) -> None:
    expected = (len(images), IMAGE_SIZE, IMAGE_SIZE)
    if images.dtype != torch.uint8 or tuple(images.shape) != expected:
        raise RestorationError(f"images must be uint8 of shape (N, 28, 28), not {images.shape}")
    if missing.dtype != torch.bool or tuple(missing.shape) != expected:
        raise RestorationError(f"missing must be bool of shape {expected}, not {missing.shape}")
    if bool((missing.flatten(1).all(dim=1)).any()):
        raise NothingKnownError("the mask marks every pixel as damaged: nothing to match")
    if digits is not None:
        if len(digits) != len(images):
            raise RestorationError("give one digit per image, or none")
        if any(not 0 <= d < NUM_CLASSES for d in digits):
            raise RestorationError(f"digits must be 0-{NUM_CLASSES - 1}")
    if steps < 0 or restarts < 1:
        raise RestorationError("steps must be >= 0 and restarts >= 1")


def _take(z: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """z (N, C, P, D), index (N, C, R) -> (N, C, R, D)."""
    return z.gather(2, index.unsqueeze(3).expand(*index.shape, z.shape[3])).detach().clone()


def _prune(
    z: torch.Tensor, labels: torch.Tensor, digit_cost: torch.Tensor, keep: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep each image's ``keep`` candidate digits of lowest cost (with all their restarts)."""
    cost = digit_cost.gather(1, labels)  # (N, C)
    order = cost.topk(keep, dim=1, largest=False).indices  # (N, keep)
    kept = z.detach().gather(1, order[:, :, None, None].expand(-1, -1, *z.shape[2:]))
    return kept.clone().requires_grad_(True), labels.gather(1, order)


def _results(
    cost: torch.Tensor,
    generated: torch.Tensor,
    labels: torch.Tensor,
    digit_cost: torch.Tensor,
    images: torch.Tensor,
    missing: torch.Tensor,
    target: torch.Tensor,
    known: torch.Tensor,
    steps: int,
) -> list[Restoration]:
    n, c, r = cost.shape
    flat = cost.reshape(n, c * r).argmin(dim=1)
    best_images = generated.reshape(n, c * r, 1, IMAGE_SIZE, IMAGE_SIZE)[torch.arange(n), flat]
    best_digits = labels.gather(1, (flat // r).unsqueeze(1)).squeeze(1)
    # RMS error on the known pixels, in [0, 1] intensity units (the [-1, 1] range halved).
    squared = ((best_images - target) / 2).square() * known
    rms = (squared.sum(dim=(1, 2, 3)) / known.sum(dim=(1, 2, 3))).sqrt()
    candidates = torch.isfinite(digit_cost)
    shares = torch.softmax(-digit_cost.double(), dim=1)
    generated_u8 = to_uint8(best_images)  # on the CPU, like the results
    restored = torch.where(missing.cpu(), generated_u8, images.cpu())
    results = []
    for i in range(n):
        scores = {
            int(d): float(shares[i, d]) for d in torch.nonzero(candidates[i]).flatten().tolist()
        }
        digit = int(best_digits[i])
        results.append(
            Restoration(
                image=restored[i],
                generated=generated_u8[i],
                digit=digit,
                score=scores[digit],
                scores=scores,
                error=float(rms[i]),
                steps=steps,
            )
        )
    return results
