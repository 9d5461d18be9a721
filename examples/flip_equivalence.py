"""Cross-correlation and true convolution learn the same function, with flipped kernels.

Two identical small CNNs are trained on scikit-learn's bundled 8x8 digits
(no download): one built from ``torch.nn.Conv2d`` (cross-correlation), the
other its ``torchflip.convert`` copy, whose ``torchflip.nn.Conv2d`` layers
(true convolution) start from the spatially flipped weights. Both see the same
batches in the same order with the same optimiser.

Since ``true_conv(x, w) == cross_correlation(x, flip(w))`` and the gradient
with respect to ``w`` of the left side is the flip of the gradient with respect
to ``flip(w)`` of the right side, every SGD step keeps the relation
``w_true == flip(w_cross)``: the two networks compute the same function at
every step, and the learned kernels differ exactly by a flip. A convolutional
network therefore has no reason to prefer one operation over the other, which
is why deep-learning libraries implement the simpler cross-correlation and
still call it convolution.

Run:  python examples/flip_equivalence.py [--epochs 12] [--out DIR]
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from tqdm import tqdm

import torchflip


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.05, help="SGD learning rate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "output",
                        help="folder for the figure")
    return parser.parse_args()


def make_cnn() -> nn.Sequential:
    """A small CNN for 1x8x8 digit images, built from torch.nn.Conv2d."""
    return nn.Sequential(
        nn.Conv2d(1, 8, kernel_size=5, padding=2),  # 8 x 8x8
        nn.ReLU(),
        nn.MaxPool2d(2),  # 8 x 4x4
        nn.Conv2d(8, 16, kernel_size=3, padding=1),  # 16 x 4x4
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(16 * 4 * 4, 10),
    )


def load_data(seed: int, dtype: torch.dtype):
    images, labels = load_digits(return_X_y=True)
    images = images.reshape(-1, 1, 8, 8) / 16.0  # pixel values 0..16 -> 0..1
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=0.25, random_state=seed, stratify=labels)

    def as_tensors(x, y):
        return torch.as_tensor(x, dtype=dtype), torch.as_tensor(y, dtype=torch.long)

    return as_tensors(x_train, y_train), as_tensors(x_test, y_test)


def conv_weights(model: nn.Module) -> list[torch.Tensor]:
    return [m.weight.detach().clone() for m in model.modules()
            if isinstance(m, (nn.Conv2d, torchflip.nn.Conv2d))]


def train(models: dict[str, nn.Module], x: torch.Tensor, y: torch.Tensor, args) -> dict:
    """Trains every model on the same shuffled batches; returns the loss of
    each model at every step."""
    optimisers = {name: torch.optim.SGD(m.parameters(), lr=args.lr, momentum=0.9)
                  for name, m in models.items()}
    losses = {name: [] for name in models}
    order = torch.Generator().manual_seed(args.seed)
    steps_per_epoch = -(-len(x) // args.batch_size)
    with tqdm(total=args.epochs * steps_per_epoch, desc="training both CNNs", unit="step") as bar:
        for _ in range(args.epochs):
            for batch in torch.randperm(len(x), generator=order).split(args.batch_size):
                for name, model in models.items():
                    loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
                    optimisers[name].zero_grad()
                    loss.backward()
                    optimisers[name].step()
                    losses[name].append(loss.item())
                bar.set_postfix(loss=f"{losses['torch.nn'][-1]:.3g}")
                bar.update()
    return {name: np.array(v) for name, v in losses.items()}


def plot(losses: dict, cross_kernels: torch.Tensor, true_kernels: torch.Tensor,
         path: Path) -> None:
    """Left: both loss curves and their difference. Right: first-layer kernels
    of each network, and the true-convolution kernels flipped back."""
    n = cross_kernels.shape[0]
    rows = [
        ("torch.nn.Conv2d\n(cross-correlation)", cross_kernels),
        ("torchflip.nn.Conv2d\n(true convolution)", true_kernels),
        ("torchflip kernels\nflipped back", true_kernels.flip(-2, -1)),
    ]
    limit = float(cross_kernels.abs().max())
    fig = plt.figure(figsize=(13, 5.2), layout="constrained")
    left, right = fig.subfigures(1, 2, width_ratios=[1, 1.35])

    ax_loss, ax_diff = left.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    steps = np.arange(1, len(losses["torch.nn"]) + 1)
    ax_loss.plot(steps, losses["torch.nn"], lw=2.5, color="tab:blue",
                 label="torch.nn.Conv2d (cross-correlation)")
    ax_loss.plot(steps, losses["torchflip"], lw=1.0, ls="--", color="tab:orange",
                 label="torchflip.nn.Conv2d (true convolution)")
    ax_loss.set_ylabel("training loss (cross-entropy)")
    ax_loss.set_yscale("log")
    ax_loss.legend()
    ax_loss.set_title("Same batches, same optimiser: identical loss curves")
    difference = np.abs(losses["torch.nn"] - losses["torchflip"])
    ax_diff.plot(steps, difference, color="tab:red", lw=1)
    ax_diff.set_ylim(0, max(2 * difference.max(), 1e-6))
    ax_diff.set_ylabel("|difference|")
    ax_diff.set_xlabel("SGD step")
    ax_diff.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
    note = " (bitwise identical)" if difference.max() == 0 else ""
    ax_diff.text(0.5, 0.6, f"max |difference| = {difference.max():.1e}{note}",
                 transform=ax_diff.transAxes, ha="center")

    axes = right.subplots(len(rows), n)
    for r, (label, kernels) in enumerate(rows):
        for k in range(n):
            ax = axes[r, k]
            image = ax.imshow(kernels[k, 0], cmap="RdBu_r", vmin=-limit, vmax=limit)
            ax.set_xticks([])
            ax.set_yticks([])
            if k == 0:
                ax.set_ylabel(label, fontsize=9)
    right.colorbar(image, ax=axes, shrink=0.8, label="weight")
    right.suptitle("Learned first-layer 5x5 kernels (after training)")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    args = parse_args()
    plt.switch_backend("Agg")  # files only; no display needed
    # The tensors are tiny: one thread is faster than several fighting over them.
    torch.set_num_threads(1)
    dtype = getattr(torch, args.dtype)
    torch.manual_seed(args.seed)
    (x_train, y_train), (x_test, y_test) = load_data(args.seed, dtype)

    cross_model = make_cnn().to(dtype)
    # The torchflip twin: every nn.Conv2d becomes a torchflip.nn.Conv2d whose
    # weight is the flipped one, so both start as the same function. The
    # direct engine runs torch's own kernels on the flipped weights, so the
    # two trainings can agree bit for bit ('auto' might pick the FFT for the
    # first layer's 5x5 single-channel kernels, equal only to rounding).
    true_model = torchflip.convert(copy.deepcopy(cross_model), method="direct")
    print("torchflip.convert(model, method='direct') =", true_model)

    start = time.perf_counter()
    losses = train({"torch.nn": cross_model, "torchflip": true_model}, x_train, y_train, args)
    seconds = time.perf_counter() - start

    with torch.no_grad():
        logits_cross, logits_true = cross_model(x_test), true_model(x_test)
    accuracy = {name: (logits.argmax(1) == y_test).double().mean().item()
                for name, logits in [("torch.nn", logits_cross), ("torchflip", logits_true)]}

    print(f"\n{len(losses['torch.nn'])} SGD steps on {len(x_train)} digits ({args.dtype}) "
          f"in {seconds:.1f} s")
    print(f"final training loss   torch.nn {losses['torch.nn'][-1]:.4f}   "
          f"torchflip {losses['torchflip'][-1]:.4f}")
    print(f"test accuracy         torch.nn {accuracy['torch.nn']:.3f}    "
          f"torchflip {accuracy['torchflip']:.3f}")
    print(f"max |loss difference| over all steps:  "
          f"{np.abs(losses['torch.nn'] - losses['torchflip']).max():.2e}")
    print(f"max |test logit difference|:           "
          f"{(logits_cross - logits_true).abs().max().item():.2e}")
    print("learned kernels, per conv layer:")
    for i, (w_cross, w_true) in enumerate(zip(conv_weights(cross_model),
                                              conv_weights(true_model))):
        flipped = (w_true - w_cross.flip(-2, -1)).abs().max().item()
        unflipped = (w_true - w_cross).abs().max().item()
        print(f"  conv {i + 1} {tuple(w_true.shape)}:  max |w_true - flip(w_cross)| = "
              f"{flipped:.2e}   (max |w_true - w_cross| = {unflipped:.2f})")

    args.out.mkdir(parents=True, exist_ok=True)
    figure = args.out / "flip_equivalence.png"
    plot(losses, conv_weights(cross_model)[0], conv_weights(true_model)[0], figure)
    print(f"figure: {figure}")


if __name__ == "__main__":
    main()
