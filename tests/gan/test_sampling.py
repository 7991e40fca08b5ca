"""Seeds -> latents, the uint8 conversions, and PNG encoding/tiling."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from gan.imaging import (
    GENERATOR_NAME,
    IDAT_BYTES,
    SYNTHETIC_NOTICE,
    encode_png,
    text_chunk,
    tile,
    upscale,
)
from gan.sampling import MAX_SEED, from_uint8, latents_for_seeds, to_uint8

LATENT_DIM = 16


def test_latents_are_deterministic_per_seed() -> None:
    seeds = [0, 1, 42, 2**31, MAX_SEED]
    z1, labels1 = latents_for_seeds(seeds, LATENT_DIM, [3] * len(seeds))
    z2, labels2 = latents_for_seeds(seeds, LATENT_DIM, [3] * len(seeds))
    assert z1.shape == (len(seeds), LATENT_DIM) and z1.dtype == torch.float32
    assert labels1.shape == (len(seeds),) and labels1.dtype == torch.int64
    assert torch.equal(z1, z2) and torch.equal(labels1, labels2)
    assert labels1.tolist() == [3] * len(seeds)
    # Different seeds give different latents, and they look standard normal.
    assert len({tuple(row.tolist()) for row in z1}) == len(seeds)
    many, _ = latents_for_seeds(list(range(500)), LATENT_DIM, [0] * 500)
    assert abs(float(many.mean())) < 0.05
    assert abs(float(many.std()) - 1.0) < 0.05


def test_latents_do_not_depend_on_batch_position() -> None:
    seeds = [7, 123, 0, MAX_SEED, 7]
    digits: list[int | None] = [1, None, 9, None, 4]
    z, labels = latents_for_seeds(seeds, LATENT_DIM, digits)
    for i, (seed, digit) in enumerate(zip(seeds, digits, strict=True)):
        z_alone, label_alone = latents_for_seeds([seed], LATENT_DIM, [digit])
        assert torch.equal(z[i], z_alone[0]), i
        assert int(labels[i]) == int(label_alone[0]), i
    # Reversing the batch just reverses the rows.
    z_rev, labels_rev = latents_for_seeds(seeds[::-1], LATENT_DIM, digits[::-1])
    assert torch.equal(z_rev, z.flip(0)) and torch.equal(labels_rev, labels.flip(0))
    # The same seed gives the same latent whichever digit is asked for.
    assert torch.equal(z[0], z[4])


def test_random_digits_are_in_range_and_deterministic() -> None:
    seeds = list(range(300))
    _, labels = latents_for_seeds(seeds, LATENT_DIM, [None] * len(seeds))
    _, again = latents_for_seeds(seeds, LATENT_DIM, [None] * len(seeds))
    assert torch.equal(labels, again)
    assert int(labels.min()) >= 0 and int(labels.max()) <= 9
    counts = torch.bincount(labels, minlength=10)
    assert len(counts) == 10 and int(counts.min()) > 10  # every digit turns up
    # Asking for a digit overrides the random draw but keeps the latent.
    z_random, _ = latents_for_seeds([5], LATENT_DIM, [None])
    z_fixed, fixed = latents_for_seeds([5], LATENT_DIM, [2])
    assert torch.equal(z_random, z_fixed) and fixed.tolist() == [2]


def test_latents_reject_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="same length"):
        latents_for_seeds([1, 2], LATENT_DIM, [None])


def test_empty_batch() -> None:
    z, labels = latents_for_seeds([], LATENT_DIM, [])
    assert z.shape == (0, LATENT_DIM) and labels.shape == (0,)


def test_uint8_round_trip() -> None:
    every_value = torch.arange(256, dtype=torch.uint8).reshape(4, 8, 8)
    as_float = from_uint8(every_value)
    assert as_float.shape == (4, 1, 8, 8) and as_float.dtype == torch.float32
    assert float(as_float.min()) == -1.0 and float(as_float.max()) == 1.0
    back = to_uint8(as_float)
    assert back.dtype == torch.uint8 and back.shape == (4, 8, 8)
    assert torch.equal(back, every_value)


def test_to_uint8_scales_clamps_and_rounds() -> None:
    values = torch.tensor([-5.0, -1.0, 0.0, 1.0, 7.0, -0.999]).reshape(1, 1, 1, 6)
    assert to_uint8(values).tolist() == [[[0, 0, 128, 255, 255, 0]]]
    assert to_uint8(values.to(torch.bfloat16)).tolist() == [[[0, 0, 128, 255, 255, 0]]]


def test_png_carries_provenance() -> None:
    image = np.arange(28 * 28, dtype=np.uint32).reshape(28, 28).astype(np.uint8)
    provenance = {"model_version": "tiny", "seed": "42", "digit": "7"}
    data = encode_png(image, provenance)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(io.BytesIO(data)) as png:
        assert png.format == "PNG" and png.mode == "L" and png.size == (28, 28)
        text = dict(png.text)  # type: ignore[attr-defined]
        pixels = np.asarray(png)
    assert text["Software"] == GENERATOR_NAME
    assert "synthetic" in text["Comment"].lower()
    for key, value in provenance.items():
        assert text[key] == value
    assert set(text) == {"Software", "Comment", *provenance}
    assert np.array_equal(pixels, image)


def pillow_save_with_text(image: np.ndarray, provenance: dict[str, str], level: int) -> bytes:
    """The reference: Pillow's own ``save``, the text chunks spliced in after IHDR (8-byte
    signature + 25-byte IHDR chunk)."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", compress_level=level)
    png = buffer.getvalue()
    text = b"".join(text_chunk(k, v) for k, v in {**SYNTHETIC_NOTICE, **provenance}.items())
    return png[:33] + text + png[33:]


@pytest.mark.parametrize(
    ("shape", "level"),
    [((28, 28), 1), ((56, 56), 1), ((1, 1), 1), ((3, 500), 6), ((302, 302), 9), ((700, 700), 1)],
)
def test_png_bytes_are_pillow_saves(shape: tuple[int, int], level: int) -> None:
    # Digit-like images (mostly black) and noise; 700x700 noise needs several IDAT chunks.
    rng = np.random.default_rng(shape[0] * shape[1] + level)
    digit = np.where(rng.random(shape) > 0.8, rng.integers(0, 256, shape), 0).astype(np.uint8)
    noise = rng.integers(0, 256, shape, dtype=np.uint8)
    provenance = {"model_version": "tiny", "seed": "42", "digit": "7"}
    for image in (digit, noise):
        assert encode_png(image, provenance, level) == pillow_save_with_text(
            image, provenance, level
        )
    assert len(encode_png(rng.integers(0, 256, (700, 700), dtype=np.uint8), {})) > 2 * IDAT_BYTES


def test_png_provenance_cannot_replace_the_notice() -> None:
    with pytest.raises(ValueError, match="Comment"):
        encode_png(np.zeros((2, 2), np.uint8), {"Comment": "a real digit"})


def test_tile_layout() -> None:
    images = np.stack([np.full((28, 28), i + 1, np.uint8) for i in range(7)])
    grid = tile(images, columns=3)
    assert grid.shape == (3 * 30 + 2, 3 * 30 + 2) and grid.dtype == np.uint8
    for i in range(7):
        row, col = divmod(i, 3)
        top, left = 2 + row * 30, 2 + col * 30
        assert (grid[top : top + 28, left : left + 28] == i + 1).all()
    # Gutters and the two empty cells stay black: 7 images' worth of non-zero pixels.
    assert int((grid != 0).sum()) == 7 * 28 * 28
    assert tile(images, columns=10, padding=0).shape == (28, 10 * 28)  # width is fixed
    assert tile(images[:1], columns=1, padding=1).shape == (30, 30)


def test_upscale() -> None:
    image = np.array([[0, 255], [10, 20]], np.uint8)
    assert upscale(image, 1) is image
    big = upscale(image, 3)
    assert big.shape == (6, 6)
    assert (big[:3, :3] == 0).all() and (big[:3, 3:] == 255).all() and (big[3:, 3:] == 20).all()


def test_one_truncation_per_seed_scales_each_row_as_alone() -> None:
    seeds, scales = [3, 4, 5], [1.0, 0.5, 0.25]
    mixed, _ = latents_for_seeds(seeds, LATENT_DIM, [1] * 3, scales)
    for row, (seed, scale) in enumerate(zip(seeds, scales, strict=True)):
        alone, _ = latents_for_seeds([seed], LATENT_DIM, [1], scale)
        assert torch.equal(mixed[row], alone[0])
    with pytest.raises(ValueError, match="same length"):
        latents_for_seeds(seeds, LATENT_DIM, [1] * 3, [0.5])
    with pytest.raises(ValueError, match=r"in \(0, 1\]"):
        latents_for_seeds(seeds, LATENT_DIM, [1] * 3, [0.5, 0.0, 1.0])
