"""The GAN training loop: D and G alternate on one batch per step, an EMA of G is exported.

``train`` reads top to bottom: place the process (device, torchrun rank), load the data, build the
networks and optimisers, resume from the checkpoint if asked, then per step one batch, one update
of D, one of G and one of the EMA (with the step's AC-GAN weight from its schedule), with the
sample grid, the checkpoint and a progress line when they are due; at the end rank 0 stages the
EMA generator, evaluates it if asked, and publishes it (``training.export``). The functions below
it are those steps, in that order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel

from gan.artifact import write_atomic
from gan.networks import NUM_CLASSES, Discriminator, Generator
from gan.sampling import from_uint8
from gan.store import SAMPLES_FILE
from training.augment import Policy, augment, parse_policy
from training.checkpoint import (
    CHECKPOINT_FILE,
    Stateful,
    architectures,
    load_checkpoint,
    save_checkpoint,
)
from training.config import (
    Loss,
    TrainConfig,
    discriminator_config,
    twin_trains_at,
    uses_bfloat16,
)
from training.data import load_split
from training.distributed import Distributed, place
from training.ema import ema_of
from training.export import check_publishable, export, sample_grid
from training.progress import ProgressMode, ProgressReporter, TrainingProgress
from training.provenance import Piece, new_piece


def train(
    config: TrainConfig, progress_mode: ProgressMode = "none", evaluate_per_digit: int | None = None
) -> str | None:
    """Train, checkpoint, and publish the EMA generator (evaluated first with
    ``evaluate_per_digit`` samples of each digit, if given); returns the version (rank 0) or
    None. Rank 0 announces the phases: training, then evaluating (if asked), then publishing."""
    check_publishable(config, evaluate_per_digit is not None)
    ddp, device = place(config.device)
    reporter = ProgressReporter(progress_mode if ddp.is_main else "none")
    reporter.phase("training")
    torch.manual_seed(config.seed + ddp.rank)
    run_dir = Path(config.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    images, labels = load_images(config, device)
    nets = build_networks(config, device, ddp)
    checkpoint = run_dir / CHECKPOINT_FILE
    start_step, pieces = 0, list[Piece]()
    if config.resume and checkpoint.exists():
        start_step, pieces = resume(checkpoint, config, nets, device)
    pieces.append(new_piece(config, start_step, device, ddp.world_size))

    batches = Batches(images, labels, config, ddp, memory_format(device))
    progress = TrainingProgress(
        reporter,
        config.steps,
        start_step,
        config.log_every,
        batches.global_batch,
        sample_grid=str(run_dir / SAMPLES_FILE),
    )
    for step in range(start_step, config.steps):
        real, real_labels = batches.at(step)
        set_learning_rates(config, nets, step)
        loss_d, loss_g = train_step(config, nets, real, real_labels, step)
        done = step + 1
        if ddp.is_main and due(done, config.sample_every, config.steps):
            grid = sample_grid(nets.ema.module, config.generator.latent_dim, device)
            write_atomic(run_dir / SAMPLES_FILE, grid)  # the jobs API serves it meanwhile
        if ddp.is_main and due(done, config.checkpoint_every, config.steps):
            pieces[-1]["to_step"] = done
            save_checkpoint(checkpoint, done, architectures(config), nets.parts(), pieces)
        progress.after_step(done, batches.epoch(step), loss_d, loss_g)
    progress.close()
    ddp.close()  # the other ranks are done; rank 0 alone evaluates and publishes
    if not ddp.is_main:
        return None
    # A resume may have nothing left to train (a checkpoint at or past --steps): it exports.
    pieces[-1]["to_step"] = max(start_step, config.steps)
    version = export(config, nets.ema.module, pieces, evaluate_per_digit, reporter.phase)
    progress.exported(version)
    return version


def due(done: int, every: int, total: int) -> bool:
    """Every ``every`` steps, and always after the last one."""
    return done % every == 0 or done == total


def memory_format(device: torch.device) -> torch.memory_format:
    """Channels-last on CUDA, where its convolutions are faster."""
    return torch.channels_last if device.type == "cuda" else torch.contiguous_format


# ----- data, networks, resuming ------------------------------------------------------------------


def load_images(config: TrainConfig, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The training digits and labels; the whole set stays resident on the device as uint8."""
    data = load_split(config.data_dir, "train")
    images, labels = data.images, data.labels
    if config.limit_samples is not None:
        images, labels = images[: config.limit_samples], labels[: config.limit_samples]
    return images.to(device), labels.to(device)


@dataclass
class Networks:
    """What a run trains (and checkpoints), and the views of it that a training step uses."""

    generator: Generator
    discriminator: Discriminator
    ema: AveragedModel  # of the generator, with a warm-up (training.ema): what gets exported
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    g_train: nn.Module  # the generator, wrapped in DDP when there are several processes
    d_train: nn.Module
    autocast: torch.autocast  # bf16 where uses_bfloat16, else off

    def parts(self) -> dict[str, Stateful]:
        """The checkpointed state, by its name in the checkpoint."""
        return {
            "generator": self.generator,
            "discriminator": self.discriminator,
            "ema": self.ema,
            "opt_g": self.opt_g,
            "opt_d": self.opt_d,
        }


def build_networks(config: TrainConfig, device: torch.device, ddp: Distributed) -> Networks:
    generator = Generator(config.generator).to(device)
    discriminator = Discriminator(discriminator_config(config)).to(device)
    # torch's stubs lack the memory_format overload of Module.to.
    generator.to(memory_format=memory_format(device))  # type: ignore[call-overload]
    discriminator.to(memory_format=memory_format(device))  # type: ignore[call-overload]
    ema = ema_of(generator, config.ema_decay)
    betas = (config.beta1, config.beta2)
    opt_g = torch.optim.Adam(generator.parameters(), config.lr_g, betas)
    opt_d = torch.optim.Adam(discriminator.parameters(), config.lr_d, betas)
    g_train: nn.Module = generator
    d_train: nn.Module = discriminator
    if ddp.world_size > 1:  # each process trains a replica; DDP averages the gradients
        g_train = DistributedDataParallel(generator)
        # A twin that starts late gets no gradient until then, which DDP must be told to expect.
        late_twin = discriminator.classify_twin is not None and not twin_trains_at(config, 0)
        d_train = DistributedDataParallel(discriminator, find_unused_parameters=late_twin)
    bfloat16 = uses_bfloat16(config, device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bfloat16)
    return Networks(generator, discriminator, ema, opt_g, opt_d, g_train, d_train, autocast)


def resume(
    path: Path, config: TrainConfig, nets: Networks, device: torch.device
) -> tuple[int, list[Piece]]:
    """Continue from a checkpoint; returns its step and the run's pieces so far. The command
    line wins over the checkpoint: a resumed run may cool the learning rates."""
    twin_from = config.twin_classifier_from
    step, pieces = load_checkpoint(path, architectures(config), nets.parts(), device, twin_from)
    for optimizer, lr in ((nets.opt_g, config.lr_g), (nets.opt_d, config.lr_d)):
        for group in optimizer.param_groups:
            group["lr"], group["betas"] = lr, (config.beta1, config.beta2)
    return step, pieces


class Batches:
    """This process's share of each step's global batch, indexed from the resident set. The data
    order is a pure function of (seed, epoch), so a resumed run sees the batches it would have."""

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        config: TrainConfig,
        ddp: Distributed,
        layout: torch.memory_format,
    ) -> None:
        self.images, self.labels, self.layout = images, labels, layout
        self.seed, self.batch_size, self.rank = config.seed, config.batch_size, ddp.rank
        self.global_batch = config.batch_size * ddp.world_size
        self.steps_per_epoch = max(1, len(labels) // self.global_batch)
        self._permutation, self._permutation_epoch = torch.empty(0), -1

    def epoch(self, step: int) -> int:
        return step // self.steps_per_epoch

    def at(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Real images in [-1, 1] and their labels."""
        epoch, offset = divmod(step, self.steps_per_epoch)
        if epoch != self._permutation_epoch:
            order = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
            self._permutation = torch.randperm(len(self.labels), generator=order)
            self._permutation_epoch = epoch
        start = offset * self.global_batch + self.rank * self.batch_size
        index = self._permutation[start : start + self.batch_size].to(self.images.device)
        real = from_uint8(self.images[index]).contiguous(memory_format=self.layout)
        return real, self.labels[index]


def learning_rate_scale(config: TrainConfig, step: int) -> float:
    """1 until ``lr_decay_start``, then falling linearly to 0 at the first restart, back to 1
    there and falling to 0 at the next one, and so on to the run's last step. Restarts at or
    after the last step do not happen, so a shorter run still ends its decay at 0."""
    start = config.lr_decay_start
    if start is None or step < start:
        return 1.0
    ends = [restart for restart in config.lr_restarts if start < restart < config.steps]
    for end in (*ends, config.steps):
        if step < end:
            return (end - step) / max(1, end - start)
        start = end
    return 0.0


def set_learning_rates(config: TrainConfig, nets: Networks, step: int) -> None:
    scale = learning_rate_scale(config, step)
    for optimizer, lr in ((nets.opt_g, config.lr_g), (nets.opt_d, config.lr_d)):
        for group in optimizer.param_groups:
            group["lr"] = lr * scale


# ----- one training step -------------------------------------------------------------------------


def train_step(
    config: TrainConfig,
    nets: Networks,
    real: torch.Tensor,
    real_labels: torch.Tensor,
    step_index: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One update of D, then of G on the same fakes, then of the EMA, with step ``step_index``'s
    AC-GAN weight and (lazy) R1 penalty; returns D's and G's loss."""
    count = len(real_labels)
    z = torch.randn(count, config.generator.latent_dim).to(real.device)
    fake_labels = paired_labels(count).to(real.device)
    r1_due = config.r1_gamma > 0 and step_index % config.r1_every == 0
    step = Step(
        z,
        fake_labels,
        aux_weight=config.aux_classifier_schedule.at(step_index),
        twin_on=twin_trains_at(config, step_index),
        r1_weight=config.r1_gamma * config.r1_every if r1_due else 0.0,
        policy=parse_policy(config.augment),
    )
    loss_d, fake = discriminator_step(config, nets, real, real_labels, step)
    loss_g = generator_step(config, nets, fake, step)
    nets.ema.update_parameters(nets.generator)
    return loss_d, loss_g


def paired_labels(count: int) -> torch.Tensor:
    """Labels in two identical halves, so that fake[i] and fake[i + count // 2] share a digit."""
    return torch.randint(NUM_CLASSES, (count - count // 2,)).repeat(2)[:count]


@dataclass(frozen=True)
class Step:
    """What one step draws for G (latents and the digits asked for) and its terms' weights."""

    z: torch.Tensor
    fake_labels: torch.Tensor
    aux_weight: float
    # The twin's terms, with aux_weight; before its start they are left out, not weighted 0, so
    # that its head gets no gradient and Adam starts its state at the twin's first step.
    twin_on: bool
    r1_weight: float  # gamma times the interval on the steps that pay the penalty, else 0
    policy: tuple[Policy, ...]  # the critic's augmentation


def discriminator_step(
    config: TrainConfig,
    nets: Networks,
    real: torch.Tensor,
    real_labels: torch.Tensor,
    step: Step,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generate the fakes and update D on them and the real batch; returns D's loss and the fakes
    (still attached to G's graph, for G's update)."""
    with nets.autocast:
        fake = nets.g_train(step.z, step.fake_labels)
        seen_real = augment(real, step.policy).requires_grad_(step.r1_weight > 0)
        on_real = nets.d_train(seen_real, real_labels)
        on_fake = nets.d_train(augment(fake.detach(), step.policy), step.fake_labels)
        loss_d = discriminator_loss(config.loss, on_real.score, on_fake.score)
        if on_real.logits is not None:
            loss_d = loss_d + step.aux_weight * F.cross_entropy(on_real.logits, real_labels)
        if on_fake.twin_logits is not None and step.twin_on:  # it learns the digits G draws
            loss_d = loss_d + step.aux_weight * F.cross_entropy(
                on_fake.twin_logits, step.fake_labels
            )
        if step.r1_weight > 0:
            loss_d = loss_d + step.r1_weight / 2 * r1_penalty(on_real.score, seen_real)
    nets.opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    nets.opt_d.step()
    return loss_d, fake


def generator_step(
    config: TrainConfig, nets: Networks, fake: torch.Tensor, step: Step
) -> torch.Tensor:
    """Update G against the updated D, with the AC-GAN, twin and mode-seeking terms when they are
    on. The AC-GAN term alone rewards G for the digits easiest to classify (its loss of recall,
    training/README.md); subtracting the twin's, which reads G's own digits, cancels that bias
    (TAC-GAN: G then matches the class-conditional distribution, not its easy part)."""
    half = len(step.fake_labels) // 2
    with nets.autocast:
        on_fake = nets.d_train(augment(fake, step.policy), step.fake_labels)
        loss_g = generator_loss(config.loss, on_fake.score)
        if on_fake.logits is not None:
            loss_g = loss_g + step.aux_weight * F.cross_entropy(on_fake.logits, step.fake_labels)
        if on_fake.twin_logits is not None and step.twin_on:
            loss_g = loss_g - step.aux_weight * F.cross_entropy(
                on_fake.twin_logits, step.fake_labels
            )
        if config.mode_seeking > 0 and half > 0:
            loss_g = loss_g + config.mode_seeking * mode_seeking_penalty(fake, step.z, half)
    nets.opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    nets.opt_g.step()
    return loss_g


def discriminator_loss(loss: Loss, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    if loss == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    # -log D(x) - log(1 - D(G(z))) with D = sigmoid(score)
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def generator_loss(loss: Loss, fake: torch.Tensor) -> torch.Tensor:
    # Non-saturating form: maximise log D(G(z)) rather than minimise log(1 - D(G(z))).
    return -fake.mean() if loss == "hinge" else F.softplus(-fake).mean()


def r1_penalty(real_score: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """E |grad_x D(x)|^2 over the real batch, kept in the graph so that D is trained on it."""
    (gradient,) = torch.autograd.grad(real_score.float().sum(), real, create_graph=True)
    return gradient.float().square().sum(dim=(1, 2, 3)).mean()


def mode_seeking_penalty(fake: torch.Tensor, z: torch.Tensor, half: int) -> torch.Tensor:
    """1 / (|G(z1) - G(z2)| / |z1 - z2|) over pairs of the same digit: small when G spreads out."""
    image_gap = (fake[:half] - fake[half : 2 * half]).abs().mean()
    latent_gap = (z[:half] - z[half : 2 * half]).abs().mean()
    return 1.0 / (image_gap / latent_gap + 1e-5)
