"""Network definitions for 28x28x1 MNIST digits: the conditional generator, its critic, and the
evaluation classifiers. Each network is rebuilt from a small JSON config stored in its manifest."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal, NamedTuple, get_args

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

NUM_CLASSES = 10
IMAGE_SIZE = 28


Upsampling = Literal["transpose", "nearest"]


@dataclass(frozen=True)
class GeneratorConfig:
    latent_dim: int = 64
    embed_dim: int = 32
    channels: int = 128
    # "transpose": 4x4 stride-2 transposed convolutions; "nearest": nearest-neighbour upsampling
    # then a 3x3 convolution (no checkerboard pattern, but about 3x slower on a CPU).
    upsampling: Upsampling = "transpose"
    # The digit also scales and shifts every batch-normalised layer (conditional batch norm),
    # not only the input vector.
    conditional_norm: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GeneratorConfig:
        # A manifest written before a field existed describes the network of that time:
        # transposed convolutions and plain batch norm.
        upsampling = data.get("upsampling", "transpose")
        if upsampling not in get_args(Upsampling):
            raise ValueError(f"unknown upsampling {upsampling!r}")
        conditional_norm = data.get("conditional_norm", False)
        if not isinstance(conditional_norm, bool):
            raise ValueError(f"conditional_norm must be true or false, not {conditional_norm!r}")
        return cls(
            latent_dim=int(data["latent_dim"]),
            embed_dim=int(data["embed_dim"]),
            channels=int(data["channels"]),
            upsampling=upsampling,
            conditional_norm=conditional_norm,
        )


class ConditionalBatchNorm2d(nn.Module):
    """Batch norm whose scale and shift are looked up per digit (de Vries et al., 2017)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.scale = nn.Embedding(NUM_CLASSES, channels)
        self.shift = nn.Embedding(NUM_CLASSES, channels)
        nn.init.ones_(self.scale.weight)
        nn.init.zeros_(self.shift.weight)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        # x: (N, C, H, W), labels: (N,) -> (N, C, H, W)
        scale = self.scale(labels)[:, :, None, None]
        shift = self.shift(labels)[:, :, None, None]
        out: torch.Tensor = self.norm(x) * scale + shift
        return out


# Below this many images a CPU runs a transposed convolution faster on ATen's own kernel than on
# oneDNN's, which torch picks: at batch 1 the shipped generator's whole pass took 0.6-1.0 ms
# against 0.9-1.5 ms, its last layer (64 channels to 1) 20 us against 160 us; at 4 they are even
# (benchmarks/README.md, "Small batches without oneDNN").
ATEN_MAX_BATCH = 3


class ConvTranspose2d(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` (the same parameters and state-dict keys) that runs a small CPU
    batch on ATen's kernel. Chosen here, per call, and not by switching oneDNN off: that switch
    is process-wide, and would also move the passes of other threads."""

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if x.device.type != "cpu" or x.shape[0] > ATEN_MAX_BATCH or output_size is not None:
            return super().forward(x, output_size)
        out: torch.Tensor = torch.ops.aten.slow_conv_transpose2d(
            x,
            self.weight,
            self.kernel_size,
            self.bias,
            self.stride,
            self.padding,
            self.output_padding,
            self.dilation,
        )
        return out


def _upsample(in_channels: int, out_channels: int, mode: Upsampling, bias: bool) -> list[nn.Module]:
    """Layers that double height and width: (N, in, H, W) -> (N, out, 2H, 2W)."""
    if mode == "transpose":
        return [ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1, bias=bias)]
    return [
        nn.Upsample(scale_factor=2, mode="nearest"),
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=bias),
    ]


class Generator(nn.Module):
    """DCGAN-style conditional generator: [z, embed(label)] -> 7x7 -> 14x14 -> 28x28 in [-1, 1]."""

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        self.config = config
        c = config.channels
        self.label_embedding = nn.Embedding(NUM_CLASSES, config.embed_dim)
        linear = nn.Linear(config.latent_dim + config.embed_dim, c * 7 * 7, bias=False)
        to_maps = nn.Unflatten(1, (c, 7, 7))
        layers: list[nn.Module]
        if config.conditional_norm:
            layers = [linear, to_maps, ConditionalBatchNorm2d(c), nn.ReLU(inplace=True)]
            middle_norm: nn.Module = ConditionalBatchNorm2d(c // 2)
        else:
            # The first shipped model's layout: its state-dict keys must keep loading.
            layers = [linear, nn.BatchNorm1d(c * 7 * 7), nn.ReLU(inplace=True), to_maps]
            middle_norm = nn.BatchNorm2d(c // 2)
        self.project = nn.Sequential(*layers)
        self.upsample = nn.Sequential(
            *_upsample(c, c // 2, config.upsampling, bias=False),
            middle_norm,
            nn.ReLU(inplace=True),
            *_upsample(c // 2, 1, config.upsampling, bias=True),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        # z: (N, latent_dim) float, labels: (N,) int64 -> (N, 1, 28, 28) in [-1, 1]
        h = torch.cat([z, self.label_embedding(labels)], dim=1)  # (N, latent + embed)
        for layer in (*self.project, *self.upsample):
            h = layer(h, labels) if isinstance(layer, ConditionalBatchNorm2d) else layer(h)
        return h


@dataclass(frozen=True)
class DiscriminatorConfig:
    channels: int = 128
    classifier_head: bool = False  # the AC-GAN digit classifier; only built when trained
    # TAC-GAN's twin classifier (Gong et al., 2019): a second digit head, trained on fakes only;
    # only built beside the AC-GAN head.
    twin_head: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DiscriminatorConfig:
        # A record written before a field existed describes the critic of that time: no twin.
        return cls(
            channels=int(data["channels"]),
            classifier_head=bool(data.get("classifier_head", False)),
            twin_head=bool(data.get("twin_head", False)),
        )


class Critique(NamedTuple):
    """What the critic says of a batch of N images."""

    score: torch.Tensor  # (N,) realness, unbounded
    logits: torch.Tensor | None  # (N, 10) the AC-GAN head's digit logits, if it has one
    twin_logits: torch.Tensor | None  # (N, 10) the twin head's, if it has one


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
        twin = config.classifier_head and config.twin_head
        self.classify_twin = twin_head(c * 7 * 7) if twin else None

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> Critique:
        h = self.features(images)  # (N, c*49)
        projection = (self.label_projection(labels) * h).sum(dim=1)
        score: torch.Tensor = self.score(h).squeeze(1) + projection
        logits = self.classify(h) if self.classify is not None else None
        twin_logits = self.classify_twin(h) if self.classify_twin is not None else None
        return Critique(score, logits, twin_logits)


# The twin's weights come from a seed of their own, outside the caller's random stream: a critic
# with a twin has the other weights of the same critic without one, and leaves the stream where
# that one would, so a run whose twin starts late (training's twin_classifier_from) is, until
# that step, the run without a twin.
TWIN_HEAD_SEED = 0


def twin_head(features: int) -> nn.Linear:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TWIN_HEAD_SEED)
        return nn.Linear(features, NUM_CLASSES)


class Evaluator(nn.Module):
    """A digit classifier that judges generators: its logits give conditional accuracy, its
    penultimate features (``feature_dim`` wide) give FID and precision/recall. Subclasses build
    ``body`` (images -> features) and ``head`` (features -> logits)."""

    feature_dim: int
    body: nn.Module
    head: nn.Module

    def features(self, images: torch.Tensor) -> torch.Tensor:
        # images: (N, 1, 28, 28) in [-1, 1] -> (N, feature_dim)
        out: torch.Tensor = self.body(images)
        return out

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(self.features(images))
        return out


class Classifier(Evaluator):
    """The project's evaluation classifier: two 5x5 convolutions and a 128-wide dense layer."""

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


def _conv3x3(in_channels: int, out_channels: int) -> list[nn.Module]:
    return [
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]


class Judge(Evaluator):
    """The independent judge: another architecture than Classifier's (3x3 convolutions, no dense
    layer, features pooled over the whole image), trained from another seed, so that a generator
    tuned against the project's classifier cannot also have been tuned against it."""

    feature_dim = 192

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *_conv3x3(1, 48),
            *_conv3x3(48, 48),
            nn.MaxPool2d(2),  # 14x14
            *_conv3x3(48, 96),
            nn.MaxPool2d(2),  # 7x7
            *_conv3x3(96, self.feature_dim),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),  # (N, 192)
        )
        self.head = nn.Linear(self.feature_dim, NUM_CLASSES)


# The architecture names an evaluator's manifest records, and the classes they rebuild.
EVALUATORS: dict[str, type[Evaluator]] = {"Classifier": Classifier, "Judge": Judge}
