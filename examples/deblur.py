"""Estimate a blur kernel by gradient descent, then deblur with Richardson-Lucy.

Optics blurs an image by true convolution with the point-spread function
(PSF): a point of light becomes a copy of the PSF, the right way round. Here
scipy.signal simulates that physics on synthetic images, independently of
torchflip, and torchflip undoes it:

1. Calibration. A camera photographs a known chart of random dots. The PSF is
   found by gradient descent: the non-negative kernel of unit sum (a softmax)
   whose true convolution with the chart best matches the photograph
   (``torchflip.nn.functional.conv2d``, differentiated by autograd). Since
   the model is true convolution, the estimate is the PSF itself, not its
   mirror image, and can be compared with, or handed to, any optics code.
2. Deblurring. The same camera photographs an unknown scene. Richardson-Lucy
   deconvolution recovers it with the estimated PSF, using the blur ``A`` (a
   'valid' true convolution) and its adjoint ``A^T``, which is exactly
   ``torchflip.nn.functional.conv_transpose2d`` with the same kernel.
   Running the same iterations with torch.nn.functional.conv2d and the same PSF
   blurs with the mirrored PSF instead, and recovers far less.

The figure shows the chart, the scene, their photographs, the true and
estimated PSFs and both deconvolutions.

Run:  python examples/deblur.py [--iterations 150] [--out DIR]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import scipy.signal
import torch
import torch.nn.functional as F
from tqdm import trange

import torchflip.nn.functional as TF

Blur = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=128, help="photograph height and width")
    parser.add_argument("--psf-size", type=int, default=15)
    parser.add_argument("--noise", type=float, default=0.005, help="noise std (image in [0, 1])")
    parser.add_argument("--fit-steps", type=int, default=300, help="gradient steps for the PSF")
    parser.add_argument("--iterations", type=int, default=150, help="Richardson-Lucy iterations")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "output",
                        help="folder for the figure")
    return parser.parse_args()


# --- The blur and its adjoint ------------------------------------------------
# Images are (H, W) tensors; A maps a scene of size (H + K - 1, W + K - 1) to a
# photograph of size (H, W), so no boundary condition has to be invented.
# These two functions are the only place that convolves: torchflip.signal's
# fftconvolve(scene, psf, mode="valid") and correlate(photo, psf, mode="full")
# compute the same two maps and can replace them for large kernels.

def blur(scene: torch.Tensor, psf: torch.Tensor) -> torch.Tensor:
    """A: ``photo[i, j] = sum_{k, l} scene[i + k, j + l] psf[K-1-k, L-1-l]``,
    scipy.signal.convolve2d(scene, psf, 'valid')."""
    return TF.conv2d(scene[None, None], psf[None, None])[0, 0]


def blur_adjoint(photo: torch.Tensor, psf: torch.Tensor) -> torch.Tensor:
    """A^T, the adjoint of :func:`blur`: scipy.signal.correlate2d(photo, psf, 'full')."""
    return TF.conv_transpose2d(photo[None, None], psf[None, None])[0, 0]


def mirrored_blur(scene: torch.Tensor, psf: torch.Tensor) -> torch.Tensor:
    """What torch.nn.functional.conv2d computes with the same PSF: cross-correlation."""
    return F.conv2d(scene[None, None], psf[None, None])[0, 0]


def mirrored_blur_adjoint(photo: torch.Tensor, psf: torch.Tensor) -> torch.Tensor:
    return F.conv_transpose2d(photo[None, None], psf[None, None])[0, 0]


# --- Synthetic data ----------------------------------------------------------

def make_psf(size: int) -> np.ndarray:
    """A motion-blur PSF with no symmetry: the camera swept along a curve,
    lingering at its start (a bright head with a fading tail), slightly defocused."""
    psf = np.zeros((size, size))
    for t in np.linspace(0, 1, 400):
        row = 2 + (size - 5) * t
        col = 2 + (size - 5) * (0.5 - 0.5 * np.cos(np.pi * t)) ** 2
        psf[round(row), round(col)] += np.exp(-3 * t)
    yy, xx = np.mgrid[-2:3, -2:3]
    defocus = np.exp(-(yy**2 + xx**2) / (2 * 0.7**2))
    psf = scipy.signal.convolve2d(psf, defocus, mode="same")
    return psf / psf.sum()


def make_chart(size: int, rng: np.random.Generator) -> np.ndarray:
    """Calibration chart: random black and white dots (every spatial frequency)."""
    return (rng.random((size, size)) < 0.5).astype(float)


def make_scene(size: int) -> np.ndarray:
    """A test scene: smooth background, disks, a ring, bars of decreasing width
    and a few point sources ('stars') that show the PSF itself once blurred."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    scene = 0.15 + 0.15 * xx
    scene[(yy - 0.30) ** 2 + (xx - 0.28) ** 2 < 0.14**2] = 0.8
    ring = np.hypot(yy - 0.70, xx - 0.30)
    scene[(ring > 0.10) & (ring < 0.15)] = 0.6
    # Bars of decreasing width with equal gaps, shrunk to fit 40% of the width.
    scale = min(1.0, 0.4 * size / 32)
    left = int(0.55 * size)
    for width in [max(1, round(w * scale)) for w in (6, 4, 3, 2, 1)]:
        scene[int(0.12 * size):int(0.45 * size), left:left + width] = 0.9
        left += 2 * width
    for r, c in [(0.62, 0.62), (0.80, 0.78), (0.66, 0.88)]:
        scene[int(r * size), int(c * size)] = 12.0  # bright stars (saturate the display)
    return scene


def photograph(scene: np.ndarray, psf: np.ndarray, noise: float,
               rng: np.random.Generator) -> np.ndarray:
    """The camera, independently of torchflip: scipy.signal's true convolution
    ('valid': the photo sees only pixels the scene fully covers) plus noise."""
    photo = scipy.signal.convolve2d(scene, psf, mode="valid")
    return np.clip(photo + noise * rng.normal(size=photo.shape), 1e-3, None)


# --- The two steps -----------------------------------------------------------

def estimate_psf(chart: torch.Tensor, photo: torch.Tensor, size: int, steps: int):
    """Gradient descent (Adam) on the logits of a softmax PSF, minimising the
    mean squared error between blur(chart, psf) and the photograph."""
    logits = torch.zeros(size * size, dtype=chart.dtype, requires_grad=True)
    optimiser = torch.optim.Adam([logits], lr=0.1)
    losses = []
    for _ in trange(steps, desc="fitting the PSF", unit="step"):
        psf = logits.softmax(0).view(size, size)
        loss = (blur(chart, psf) - photo).square().mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    return logits.detach().softmax(0).view(size, size), losses


def richardson_lucy(photo: torch.Tensor, psf: torch.Tensor, iterations: int,
                    blur: Blur = blur, blur_adjoint: Blur = blur_adjoint) -> torch.Tensor:
    """Maximum-likelihood scene for Poisson noise: the multiplicative update
    ``u <- u * A^T(photo / A u) / A^T 1``, which keeps u non-negative."""
    normaliser = blur_adjoint(torch.ones_like(photo), psf)
    scene = torch.full_like(normaliser, float(photo.mean()))
    for _ in trange(iterations, desc="Richardson-Lucy", unit="it", leave=False):
        scene = scene * blur_adjoint(photo / blur(scene, psf).clamp_min(1e-6), psf) / normaliser
    return scene


def psnr(estimate: torch.Tensor, truth: np.ndarray, margin: int) -> float:
    """Peak signal-to-noise ratio in dB over the interior (RL is poorly
    determined in the margin that only partly reaches the photograph) and with
    both clipped to [0, 1], so the saturated stars do not dominate."""
    a = estimate.numpy()[margin:-margin, margin:-margin].clip(0, 1)
    b = truth[margin:-margin, margin:-margin].clip(0, 1)
    return float(10 * np.log10(1.0 / np.mean((a - b) ** 2)))


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def plot(path: Path, panels: list[tuple[str, np.ndarray, dict]], frame: int) -> None:
    """Images larger than a kernel are drawn in the scene's frame of ``frame``
    pixels, a photograph (smaller by K - 1) centred over the part it sees."""
    fig, axes = plt.subplots(2, 4, figsize=(15, 8), layout="constrained")
    for ax, (title, image, style) in zip(axes.flat, panels):
        if image.shape[0] < frame // 2:  # a kernel: its own frame
            ax.imshow(image, **style)
        else:
            offset = (frame - image.shape[0]) / 2
            ax.imshow(image, **style, extent=(offset - 0.5, offset + image.shape[1] - 0.5,
                                              offset + image.shape[0] - 0.5, offset - 0.5))
            ax.set_xlim(-0.5, frame - 0.5)
            ax.set_ylim(frame - 0.5, -0.5)
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("PSF estimated by gradient descent through torchflip.nn.functional.conv2d; "
                 "Richardson-Lucy with conv2d and its adjoint conv_transpose2d")
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> None:
    args = parse_args()
    plt.switch_backend("Agg")  # files only; no display needed
    torch.set_num_threads(1)  # small single-channel images: threads only add overhead
    rng = np.random.default_rng(args.seed)
    k = args.psf_size
    true_psf = make_psf(k)
    chart = make_chart(args.size + k - 1, rng)
    scene = make_scene(args.size + k - 1)
    chart_photo = photograph(chart, true_psf, args.noise, rng)
    scene_photo = photograph(scene, true_psf, args.noise, rng)
    as_tensor = torch.from_numpy

    # A and A^T are adjoint: <A u, r> == <u, A^T r>.
    u, r = torch.randn(scene.shape, dtype=torch.float64), torch.randn(scene_photo.shape,
                                                                      dtype=torch.float64)
    psf_t = as_tensor(true_psf)
    gap = float((blur(u, psf_t) * r).sum() - (u * blur_adjoint(r, psf_t)).sum())
    print(f"adjoint check: <A u, r> - <u, A^T r> = {gap:.1e}")
    simulated = blur(as_tensor(scene), psf_t).numpy()
    print("torchflip blur vs scipy.signal.convolve2d: max |difference| = "
          f"{np.abs(simulated - scipy.signal.convolve2d(scene, true_psf, 'valid')).max():.1e}")

    start = time.perf_counter()
    psf, losses = estimate_psf(as_tensor(chart), as_tensor(chart_photo), k, args.fit_steps)
    psf_np = psf.numpy()
    print(f"PSF fit: loss {losses[0]:.2e} -> {losses[-1]:.2e} in {args.fit_steps} steps; "
          f"relative error vs the true PSF {relative_error(psf_np, true_psf):.3f}, "
          f"vs the mirrored PSF {relative_error(psf_np, true_psf[::-1, ::-1]):.3f}")

    photo = as_tensor(scene_photo)
    recovered = richardson_lucy(photo, psf, args.iterations)
    mirrored = richardson_lucy(photo, psf, args.iterations, mirrored_blur, mirrored_blur_adjoint)
    seconds = time.perf_counter() - start
    margin = k
    scores = {
        "blurred photo": psnr(photo, scene[k // 2:-(k // 2), k // 2:-(k // 2)], margin - k // 2),
        "RL, torchflip (true convolution)": psnr(recovered, scene, margin),
        "RL, torch.nn.functional (mirrored)": psnr(mirrored, scene, margin),
    }
    for name, value in scores.items():
        print(f"PSNR {name:<36} {value:5.1f} dB")
    print(f"fit and deconvolution took {seconds:.1f} s")

    grey = {"cmap": "gray", "vmin": 0, "vmax": 1}
    kernel = {"cmap": "magma", "vmin": 0, "vmax": float(true_psf.max())}
    fit_title = (f"estimated PSF, {args.fit_steps} gradient steps\n"
                 f"relative error {relative_error(psf_np, true_psf):.3f}")
    rl_title = (f"Richardson-Lucy, {args.iterations} iterations, torchflip\n"
                f"PSNR {scores['RL, torchflip (true convolution)']:.1f} dB")
    mirrored_title = ("same with torch.nn.functional (mirrored PSF)\n"
                      f"PSNR {scores['RL, torch.nn.functional (mirrored)']:.1f} dB")
    panels = [
        ("calibration chart (known)", chart, grey),
        ("chart as photographed", chart_photo, grey),
        ("true PSF (used by the simulation)", true_psf, kernel),
        (fit_title, psf_np, kernel),
        ("scene (unknown)", scene, grey),
        (f"scene as photographed\nPSNR {scores['blurred photo']:.1f} dB", scene_photo, grey),
        (rl_title, recovered.numpy(), grey),
        (mirrored_title, mirrored.numpy(), grey),
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    figure = args.out / "deblur.png"
    plot(figure, panels, frame=scene.shape[0])
    print(f"figure: {figure}")


if __name__ == "__main__":
    main()
