"""The GAN training loop: D and G alternate on one batch per step, an EMA of G is exported."""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from gan.device import pick_device
from gan.imaging import encode_png, tile
from gan.networks import (
    NUM_CLASSES,
    Discriminator,
    DiscriminatorConfig,
    Generator,
)
from gan.sampling import from_uint8, to_uint8
from gan.store import SAMPLES_FILE, WEIGHTS_FILE, Manifest, ModelStore, new_version_name
from training.config import Loss, TrainConfig
from training.data import checksums, load_split
from training.progress import ProgressMode, ProgressReporter

CHECKPOINT_FILE = "checkpoint.pt"


class CheckpointMismatch(Exception):
    """--resume was asked to continue a checkpoint of different networks."""


def discriminator_loss(loss: Loss, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    if loss == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    # -log D(x) - log(1 - D(G(z))) with D = sigmoid(score)
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def generator_loss(loss: Loss, fake: torch.Tensor) -> torch.Tensor:
    # Non-saturating form: maximise log D(G(z)) rather than minimise log(1 - D(G(z))).
    return -fake.mean() if loss == "hinge" else F.softplus(-fake).mean()


def mode_seeking_penalty(fake: torch.Tensor, z: torch.Tensor, half: int) -> torch.Tensor:
    """1 / (|G(z1) - G(z2)| / |z1 - z2|) over pairs of the same digit: small when G spreads out."""
    image_gap = (fake[:half] - fake[half : 2 * half]).abs().mean()
    latent_gap = (z[:half] - z[half : 2 * half]).abs().mean()
    return 1.0 / (image_gap / latent_gap + 1e-5)


def sample_grid(generator: nn.Module, latent_dim: int, device: torch.device) -> bytes:
    """10x10 PNG grid: row d holds ten samples of digit d from fixed latents."""
    rng = torch.Generator().manual_seed(1234)
    z = torch.randn(10 * NUM_CLASSES, latent_dim, generator=rng).to(device)
    labels = torch.arange(NUM_CLASSES).repeat_interleave(10).to(device)
    was_training = generator.training
    generator.eval()
    with torch.inference_mode():
        images = to_uint8(generator(z, labels)).numpy()
    generator.train(was_training)
    return encode_png(tile(images, columns=10), {"Description": "sample grid, rows are digits 0-9"})


@dataclass
class Distributed:
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> Distributed:
    """Join the process group when launched by torchrun (WORLD_SIZE set), else run alone."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return Distributed()
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Distributed(rank=dist.get_rank(), world_size=world_size)


def train(config: TrainConfig, progress_mode: ProgressMode = "none") -> str | None:
    """Train, checkpoint, and publish the EMA generator; returns the version (rank 0) or None."""
    device = pick_device(config.device)
    ddp = init_distributed(device)
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    torch.manual_seed(config.seed + ddp.rank)
    run_dir = Path(config.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)

    data = load_split(config.data_dir, "train")
    images, labels = data.images, data.labels
    if config.limit_samples is not None:
        images, labels = images[: config.limit_samples], labels[: config.limit_samples]
    images, labels = images.to(device), labels.to(device)  # whole set stays resident as uint8

    memory_format = torch.channels_last if device.type == "cuda" else torch.contiguous_format
    generator = Generator(config.generator).to(device)
    discriminator = Discriminator(discriminator_config(config)).to(device)
    # torch's stubs lack the memory_format overload of Module.to.
    generator.to(memory_format=memory_format)  # type: ignore[call-overload]
    discriminator.to(memory_format=memory_format)  # type: ignore[call-overload]
    ema = AveragedModel(
        generator, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay), use_buffers=True
    )
    opt_g = torch.optim.Adam(generator.parameters(), config.lr_g, (config.beta1, config.beta2))
    opt_d = torch.optim.Adam(discriminator.parameters(), config.lr_d, (config.beta1, config.beta2))
    g_train: nn.Module = generator
    d_train: nn.Module = discriminator
    if ddp.world_size > 1:
        g_train, d_train = (
            DistributedDataParallel(generator),
            DistributedDataParallel(discriminator),
        )

    start_step = 0
    checkpoint_path = run_dir / CHECKPOINT_FILE
    if config.resume and checkpoint_path.exists():
        state = torch.load(checkpoint_path, map_location=device, weights_only=True)
        check_architectures(state, checkpoint_path, architectures(config))
        generator.load_state_dict(state["generator"])
        discriminator.load_state_dict(state["discriminator"])
        ema.load_state_dict(state["ema"])
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        # The command line wins over the checkpoint: a resumed run may cool the learning rates.
        for optimizer, lr in ((opt_g, config.lr_g), (opt_d, config.lr_d)):
            for group in optimizer.param_groups:
                group["lr"], group["betas"] = lr, (config.beta1, config.beta2)
        torch.set_rng_state(state["rng"])
        start_step = int(state["step"])

    global_batch = config.batch_size * ddp.world_size
    steps_per_epoch = max(1, len(labels) // global_batch)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    reporter = ProgressReporter(
        progress_mode if ddp.is_main else "none", config.steps, initial_step=start_step
    )
    permutation, permutation_epoch = torch.empty(0), -1
    window_start, window_steps = time.perf_counter(), 0
    loss_d = loss_g = torch.zeros(())
    for step in range(start_step, config.steps):
        epoch, offset = divmod(step, steps_per_epoch)
        if epoch != permutation_epoch:
            # A per-epoch seed makes the data order a pure function of (seed, epoch): resumable.
            order = torch.Generator().manual_seed(config.seed * 100_003 + epoch)
            permutation, permutation_epoch = torch.randperm(len(labels), generator=order), epoch
        start = offset * global_batch + ddp.rank * config.batch_size
        index = permutation[start : start + config.batch_size].to(device)
        real = from_uint8(images[index]).contiguous(memory_format=memory_format)
        real_labels = labels[index]
        z = torch.randn(len(index), config.generator.latent_dim).to(device)
        # Labels come in two identical halves, so fake[i] and fake[i + half] share a digit.
        half = len(index) // 2
        fake_labels = torch.randint(NUM_CLASSES, (len(index) - half,)).repeat(2)[: len(index)]
        fake_labels = fake_labels.to(device)

        with autocast:
            fake = g_train(z, fake_labels)
            real_score, real_logits = d_train(real, real_labels)
            fake_score, _ = d_train(fake.detach(), fake_labels)
            loss_d = discriminator_loss(config.loss, real_score, fake_score)
            if real_logits is not None:
                loss_d = loss_d + config.aux_classifier * F.cross_entropy(real_logits, real_labels)
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()

        with autocast:
            fake_score, fake_logits = d_train(fake, fake_labels)
            loss_g = generator_loss(config.loss, fake_score)
            if fake_logits is not None:
                loss_g = loss_g + config.aux_classifier * F.cross_entropy(fake_logits, fake_labels)
            if config.mode_seeking > 0 and half > 0:
                loss_g = loss_g + config.mode_seeking * mode_seeking_penalty(fake, z, half)
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        ema.update_parameters(generator)

        done = step + 1
        window_steps += 1
        if ddp.is_main and (done % config.sample_every == 0 or done == config.steps):
            (run_dir / SAMPLES_FILE).write_bytes(
                sample_grid(ema.module, config.generator.latent_dim, device)
            )
        if ddp.is_main and (done % config.checkpoint_every == 0 or done == config.steps):
            save_checkpoint(
                checkpoint_path,
                done,
                architectures(config),
                generator,
                discriminator,
                ema,
                opt_g,
                opt_d,
            )
        if done % config.log_every == 0 or done == config.steps:
            elapsed = time.perf_counter() - window_start
            rate = window_steps * global_batch / max(elapsed, 1e-9)
            reporter.update(
                {
                    "event": "progress",
                    "step": done,
                    "total_steps": config.steps,
                    "epoch": epoch,
                    "loss_d": round(float(loss_d.detach()), 4),
                    "loss_g": round(float(loss_g.detach()), 4),
                    "images_per_s": round(rate, 1),
                    "eta_s": round((config.steps - done) * global_batch / max(rate, 1e-9), 1),
                    "sample_grid": str(run_dir / SAMPLES_FILE),
                }
            )
            window_start, window_steps = time.perf_counter(), 0
    reporter.close()

    version = None
    if ddp.is_main:
        version = export(config, ema.module, resumed_at_step=start_step)
        reporter.update({"event": "exported", "step": config.steps, "version": version})
    if ddp.world_size > 1:
        dist.destroy_process_group()
    return version


def discriminator_config(config: TrainConfig) -> DiscriminatorConfig:
    # The AC-GAN head exists only when its loss is on: DDP rejects parameters without gradients.
    return replace(config.discriminator, classifier_head=config.aux_classifier > 0)


def architectures(config: TrainConfig) -> dict[str, dict[str, Any]]:
    """What a checkpoint records of its networks, so that it describes itself."""
    return {
        "generator": config.generator.to_dict(),
        "discriminator": discriminator_config(config).to_dict(),
    }


def check_architectures(
    state: dict[str, Any], path: Path, expected: dict[str, dict[str, Any]]
) -> None:
    recorded = state.get("architectures")
    if recorded is not None and recorded != expected:
        raise CheckpointMismatch(
            f"{path} holds networks {recorded}, this run asks for {expected}: "
            "give the same architecture options, or a new --run-dir"
        )


def save_checkpoint(
    path: Path,
    step: int,
    networks: dict[str, dict[str, Any]],
    generator: nn.Module,
    discriminator: nn.Module,
    ema: nn.Module,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
) -> None:
    state = {
        "step": step,
        "architectures": networks,
        "generator": generator.state_dict(),
        "discriminator": discriminator.state_dict(),
        "ema": ema.state_dict(),
        "opt_g": opt_g.state_dict(),
        "opt_d": opt_d.state_dict(),
        "rng": torch.get_rng_state(),
    }
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def export(config: TrainConfig, ema_generator: nn.Module, resumed_at_step: int = 0) -> str:
    """Publish the EMA generator as a new version in the model store. A resumed run records the
    step it resumed at: the configuration before it may have differed."""
    version = config.version or new_version_name()
    device = next(ema_generator.parameters()).device
    grid = sample_grid(ema_generator, config.generator.latent_dim, device)
    training: dict[str, Any] = asdict(config)
    training.pop("generator")
    training.pop("discriminator")
    training["discriminator_architecture"] = architectures(config)["discriminator"]
    training["resumed_at_step"] = resumed_at_step
    manifest = Manifest(
        kind="generator",
        version=version,
        architecture=config.generator.to_dict(),
        weights_file=WEIGHTS_FILE,
        weights_sha256="",  # filled in by publish() from the bytes it writes
        training=training,
        data={"mnist_md5": checksums(config.data_dir)},
        parent=config.parent,
    )
    ModelStore(config.store).publish(
        manifest,
        ema_generator.state_dict(),
        extra_files=lambda directory: _write(directory / SAMPLES_FILE, grid),
    )
    return version


def _write(path: Path, data: bytes) -> None:
    path.write_bytes(data)
