"""Network definitions for 28x28x1 MNIST digits: the conditional generator, its critic, and the
evaluation classifier. Each network is rebuilt from a small JSON config stored in its manifest."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

NUM_CLASSES = 10
IMAGE_SIZE = 28


@dataclass(frozen=True)
class GeneratorConfig:
    latent_dim: int = 64
    embed_dim: int = 32
    channels: int = 128

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GeneratorConfig:
        return cls(**{key: int(data[key]) for key in ("latent_dim", "embed_dim", "channels")})


class Generator(nn.Module):
    """DCGAN-style conditional generator: [z, embed(label)] -> 7x7 -> 14x14 -> 28x28 in [-1, 1]."""

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        self.config = config
        c = config.channels
        self.label_embedding = nn.Embedding(NUM_CLASSES, config.embed_dim)
        self.project = nn.Sequential(
            nn.Linear(config.latent_dim + config.embed_dim, c * 7 * 7, bias=False),
            nn.BatchNorm1d(c * 7 * 7),
            nn.ReLU(inplace=True),
        )
        self.upsample = nn.Sequential(
            nn.ConvTranspose2d(c, c // 2, kernel_size=4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(c // 2),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(c // 2, 1, kernel_size=4, stride=2, padding=1),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        # z: (N, latent_dim) float, labels: (N,) int64 -> (N, 1, 28, 28) in [-1, 1]
        h = torch.cat([z, self.label_embedding(labels)], dim=1)
        h = self.project(h).view(-1, self.config.channels, 7, 7)
        out: torch.Tensor = self.upsample(h)
        return out


@dataclass(frozen=True)
class DiscriminatorConfig:
    channels: int = 64
    classifier_head: bool = False  # the AC-GAN digit classifier; only built when trained

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Discriminator(nn.Module):
    """Projection discriminator (Miyato & Koyama, 2018) with spectral norm on every layer.

    Returns one unbounded score per image: a class-agnostic term plus <embed(label), features>.
    """

    def __init__(self, config: DiscriminatorConfig) -> None:
        super().__init__()
        c = config.channels
        self.features = nn.Sequential(
            spectral_norm(nn.Conv2d(1, c // 2, kernel_size=4, stride=2, padding=1)),  # 14x14
            nn.LeakyReLU(0.2, inplace=True),
            spectral_norm(nn.Conv2d(c // 2, c, kernel_size=4, stride=2, padding=1)),  # 7x7
            nn.LeakyReLU(0.2, inplace=True),
            nn.Flatten(),
        )
        self.score = spectral_norm(nn.Linear(c * 7 * 7, 1))
        self.label_projection = spectral_norm(nn.Embedding(NUM_CLASSES, c * 7 * 7))
        # Only built when used: DistributedDataParallel rejects parameters that get no gradient.
        self.classify = nn.Linear(c * 7 * 7, NUM_CLASSES) if config.classifier_head else None

    def forward(
        self, images: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """-> (realness score (N,), digit logits (N, 10) or None without a classifier head)."""
        h = self.features(images)  # (N, c*49)
        projection = (self.label_projection(labels) * h).sum(dim=1)
        score: torch.Tensor = self.score(h).squeeze(1) + projection
        return score, self.classify(h) if self.classify is not None else None


class Classifier(nn.Module):
    """Small CNN used to evaluate generators: its logits give conditional accuracy, its
    penultimate features (``feature_dim`` wide) give FID and precision/recall."""

    feature_dim = 128

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, kernel_size=5, padding=2),
            nn.BatchNorm2d(32),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),  # 14x14
            nn.Conv2d(32, 64, kernel_size=5, padding=2),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),  # 7x7
            nn.Flatten(),
            nn.Dropout(0.25),
            nn.Linear(64 * 7 * 7, self.feature_dim),
            nn.ReLU(inplace=True),
        )
        self.head = nn.Sequential(nn.Dropout(0.25), nn.Linear(self.feature_dim, NUM_CLASSES))

    def features(self, images: torch.Tensor) -> torch.Tensor:
        # images: (N, 1, 28, 28) in [-1, 1] -> (N, feature_dim)
        out: torch.Tensor = self.body(images)
        return out

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(self.features(images))
        return out
