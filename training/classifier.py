"""Training the store's evaluators, the generators' judges: the project's classifier, and the
independent judge (another architecture, another seed), published into the model store."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gan.networks import EVALUATORS, Evaluator
from gan.sampling import from_uint8
from gan.store import (
    CLASSIFIER_DIR,
    CLASSIFIER_WEIGHTS_FILE,
    EVALUATOR_ARCHITECTURES,
    Manifest,
    ModelStore,
)
from training.data import Split, checksums, load_split


@torch.inference_mode()
def accuracy(model: Evaluator, split: Split, batch_size: int = 1000) -> float:
    model.eval()
    correct = 0
    for start in range(0, len(split), batch_size):
        logits = model(from_uint8(split.images[start : start + batch_size]))
        correct += int((logits.argmax(1) == split.labels[start : start + batch_size]).sum())
    return correct / len(split)


def fit_classifier(
    train: Split,
    epochs: int = 3,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    architecture: str = "Classifier",
) -> Evaluator:
    """Train a fresh evaluator of ``architecture`` (a name in ``gan.networks.EVALUATORS``) on
    ``train``: one-cycle Adam, random shifts of up to 2 pixels."""
    torch.manual_seed(seed)
    model = EVALUATORS[architecture]()
    optimizer = torch.optim.Adam(model.parameters(), lr)
    steps_per_epoch = max(1, len(train) // batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, lr * 3, total_steps=epochs * steps_per_epoch
    )
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(train))
        for step in range(steps_per_epoch):
            index = order[step * batch_size : (step + 1) * batch_size]
            # Random shifts of up to 2 pixels: the judge must not be fooled by off-centre digits.
            images = from_uint8(train.images[index])
            dx, dy = (int(v) for v in torch.randint(-2, 3, (2,)))
            images = torch.roll(images, shifts=(dy, dx), dims=(2, 3))
            loss = F.cross_entropy(model(images), train.labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    return model.eval()


def train_classifier(
    data_dir: str | None,
    store: str,
    epochs: int = 3,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    limit_samples: int | None = None,
    evaluator: str = CLASSIFIER_DIR,
) -> dict[str, float]:
    """Train the store's ``evaluator`` (``classifier`` or ``judge``: its architecture follows)
    and publish it in place of the one there."""
    architecture = EVALUATOR_ARCHITECTURES[evaluator]
    train, test = load_split(data_dir, "train"), load_split(data_dir, "test")
    if limit_samples is not None:
        train = Split(train.images[:limit_samples], train.labels[:limit_samples])
    model = fit_classifier(train, epochs, batch_size, lr, seed, architecture)
    metrics = {"test_accuracy": accuracy(model, test)}
    manifest = Manifest(
        kind="classifier",
        version=evaluator,
        architecture={"name": architecture, "feature_dim": model.feature_dim},
        weights_file=CLASSIFIER_WEIGHTS_FILE,
        weights_sha256="",
        training={"epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed},
        data={"mnist_md5": checksums(data_dir)},
        metrics=metrics,
    )
    ModelStore(store).publish(manifest, model.state_dict())
    return metrics
