"""The critic's differentiable augmentation (training.augment)."""

from __future__ import annotations

import pytest
import torch

from training.augment import BACKGROUND, augment, cutout, parse_policy, translate


def square_digits(count: int = 32) -> torch.Tensor:
    """(N, 1, 28, 28) background with an 8x8 white square in the middle."""
    images = torch.full((count, 1, 28, 28), BACKGROUND)
    images[:, :, 10:18, 10:18] = 1.0
    return images


def test_translation_moves_each_digit_whole_by_at_most_four_pixels() -> None:
    torch.manual_seed(0)
    images = square_digits()
    moved = translate(images)
    assert moved.shape == images.shape
    # The square stays whole (it is 10 pixels from every edge, more than the shift).
    assert ((moved == 1.0).sum(dim=(1, 2, 3)) == 64).all()
    assert set(moved.unique().tolist()) == {BACKGROUND, 1.0}  # padded with the background
    rows = (moved[:, 0] == 1.0).any(dim=2).float().argmax(dim=1) - 10  # top edge's shift
    cols = (moved[:, 0] == 1.0).any(dim=1).float().argmax(dim=1) - 10
    assert rows.abs().max() <= 4 and cols.abs().max() <= 4
    assert len(set(zip(rows.tolist(), cols.tolist(), strict=True))) > 5  # one draw per image


def test_cutout_blanks_at_most_a_14_pixel_square_with_the_background() -> None:
    torch.manual_seed(0)
    images = torch.ones(64, 1, 28, 28)
    cut = cutout(images)
    blanked = (cut == BACKGROUND).sum(dim=(1, 2, 3))
    assert blanked.max() == 14 * 14 and blanked.min() > 0
    assert ((cut == BACKGROUND) | (cut == 1.0)).all()
    assert len(set(blanked.tolist())) > 1  # squares hanging over the edges are smaller


def test_gradients_flow_through_the_augmentation() -> None:
    images = square_digits(4).requires_grad_(True)
    augment(images, ("translation", "cutout")).sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0


def test_parse_policy() -> None:
    assert parse_policy("translation,cutout") == ("translation", "cutout")
    assert parse_policy(" cutout ") == ("cutout",)
    assert parse_policy("") == parse_policy("none") == ()
    with pytest.raises(ValueError, match="unknown augmentation 'colour'"):
        parse_policy("translation,colour")
    assert torch.equal(augment(square_digits(2), ()), square_digits(2))
