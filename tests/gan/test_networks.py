"""Network shapes and the paths by which the digit reaches the generator's image."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from gan.networks import (
    EVALUATORS,
    ConditionalBatchNorm2d,
    Discriminator,
    DiscriminatorConfig,
    Generator,
    GeneratorConfig,
    Upsampling,
)
from support.models import TINY_GENERATOR


@pytest.mark.parametrize("upsampling", ["transpose", "nearest"])
@pytest.mark.parametrize("conditional_norm", [False, True])
def test_every_variant_draws_28x28_in_range(upsampling: Upsampling, conditional_norm: bool) -> None:
    torch.manual_seed(0)
    config = replace(TINY_GENERATOR, upsampling=upsampling, conditional_norm=conditional_norm)
    generator = Generator(config)
    images = generator(torch.randn(6, config.latent_dim), torch.arange(6))
    assert images.shape == (6, 1, 28, 28)
    assert images.abs().max() <= 1
    images.mean().backward()  # every parameter is on the path from input to image
    assert all(p.grad is not None for p in generator.parameters())


def test_conditional_norm_carries_the_digit() -> None:
    torch.manual_seed(0)
    generator = Generator(replace(TINY_GENERATOR, conditional_norm=True)).eval()
    norms = [m for m in generator.modules() if isinstance(m, ConditionalBatchNorm2d)]
    assert len(norms) == 2
    z = torch.randn(4, TINY_GENERATOR.latent_dim).repeat(2, 1)
    digits = torch.tensor([3] * 4 + [7] * 4)
    with torch.no_grad():
        generator.label_embedding.weight.zero_()  # the input vector no longer knows the digit
        before = generator(z, digits)
        for norm in norms:
            norm.shift.weight.normal_()
        after = generator(z, digits)
    # At initialisation every digit's scale is 1 and shift 0, so the 3s and 7s coincide ...
    assert torch.equal(before[:4], before[4:])
    # ... and once the per-digit shifts differ, only the normalised layers tell them apart.
    assert not torch.allclose(after[:4], after[4:])


def test_config_round_trips_through_its_dict() -> None:
    config = GeneratorConfig(upsampling="nearest", conditional_norm=True)
    assert GeneratorConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize("name", sorted(EVALUATORS))
def test_each_evaluator_gives_features_and_digit_logits(name: str) -> None:
    torch.manual_seed(0)
    evaluator = EVALUATORS[name]().eval()
    images = torch.rand(3, 1, 28, 28) * 2 - 1
    with torch.no_grad():
        features, logits = evaluator.features(images), evaluator(images)
    assert features.shape == (3, evaluator.feature_dim) and logits.shape == (3, 10)
    assert torch.equal(logits, evaluator.head(features))


def test_the_judge_is_another_network_than_the_classifier() -> None:
    shapes = {
        name: sorted(tuple(p.shape) for p in network().parameters())
        for name, network in EVALUATORS.items()
    }
    assert shapes["Judge"] != shapes["Classifier"]
    assert EVALUATORS["Judge"].feature_dim != EVALUATORS["Classifier"].feature_dim


def test_a_twin_leaves_the_critic_and_the_random_stream_as_they_were() -> None:
    """The twin head is initialised from its own seed: the rest of a critic with a twin is the
    critic without one, and the caller's random numbers after it are the same."""
    plain_config = DiscriminatorConfig(channels=8, classifier_head=True)
    torch.manual_seed(3)
    plain = Discriminator(plain_config).state_dict()
    after_plain = torch.rand(4)
    torch.manual_seed(3)
    with_twin = Discriminator(replace(plain_config, twin_head=True)).state_dict()
    after_twin = torch.rand(4)
    assert torch.equal(after_plain, after_twin)
    assert set(with_twin) - set(plain) == {"classify_twin.weight", "classify_twin.bias"}
    for name, tensor in plain.items():
        assert torch.equal(tensor, with_twin[name]), name
    torch.manual_seed(4)  # another run's seed: the same twin, every time
    again = Discriminator(replace(plain_config, twin_head=True)).state_dict()
    assert torch.equal(again["classify_twin.weight"], with_twin["classify_twin.weight"])
