"""Train the shipped "digits" demo: a tiny DDPM on 8x8 handwritten digits, and a digit classifier.

Data: the 1797 8x8 digits that ship inside scikit-learn (``sklearn.datasets.load_digits``, no
download), split once into train (75 %) and held-out test (25 %), stratified, seed 0.

* **DDPM** — a ``diffusers.UNet2DModel`` (1 channel, 8x8, channels 16/32, no attention) trained with
  the DDPM epsilon loss (1000 training steps, cosine betas) on the train split *resampled to an
  imbalanced class mix* (``DIGIT_MIX``: 0: 35 %, 1: 25 %, 2: 15 %, 3: 10 %, 4..9: 2.5 % each), so
  that temperature visibly changes which digits appear. Saved as a standard ``DDPMPipeline``
  folder whose scheduler is a ``DDIMScheduler`` (same betas; deterministic steps, 10-20 inference
  steps suffice) to ``implicit_temperature/demos/digits/pipeline/``;
  ``DiffusionPipeline.from_pretrained(folder)`` loads it offline.
* **Classifier** — a small CNN
  (:class:`implicit_temperature.demos.digits.classifier.DigitClassifier`) trained on the train
  split (as it is, light shift/contrast augmentation); its held-out accuracy is printed and stored
  next to the weights in ``classifier.json``; saved as
  ``implicit_temperature/demos/digits/classifier.safetensors``.

Seeded (``--seed``): every random choice comes from seeded generators, so a rerun on the same
torch build and thread count should reproduce the weights (not checked bit for bit). Needs
scikit-learn (the ``dev`` extra).

    OMP_NUM_THREADS=2 .venv/bin/python scripts/train_digits.py  # both: ~9 min on a busy 2-core box
    .venv/bin/python scripts/train_digits.py --what classifier
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from implicit_temperature.demos.digits.classifier import (
    CLASSIFIER_CONFIG_PATH,
    CLASSIFIER_PATH,
    DigitClassifier,
)
from implicit_temperature.demos.digits.model import (
    DIGIT_MIX,
    PIPELINE_PATH,
    build_scheduler,
    build_unet,
)
from implicit_temperature.demos.laws import frequencies

#: Decay of the exponential moving average of the UNet weights; the average is what is saved.
EMA_DECAY = 0.995


def load_data(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x_train, y_train, x_test, y_test); images float32 (n, 1, 8, 8) in [0, 1]."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(data.target, dtype=torch.long)
    idx = torch.arange(len(y)).numpy()
    tr, te = train_test_split(idx, test_size=0.25, stratify=y.numpy(), random_state=seed)
    tr, te = torch.as_tensor(tr), torch.as_tensor(te)
    return x[tr], y[tr], x[te], y[te]


def imbalanced_indices(y: torch.Tensor, n: int, g: torch.Generator) -> torch.Tensor:
    """n indices into y: class c with probability DIGIT_MIX[c], uniform within the class."""
    mix = torch.tensor(DIGIT_MIX, dtype=torch.float64)
    classes = torch.multinomial(mix, n, replacement=True, generator=g)
    # for every class, a random member: rank-select among that class's indices
    order = torch.argsort(y, stable=True)
    counts = torch.bincount(y, minlength=10)
    starts = torch.cumsum(counts, 0) - counts
    offset = (torch.rand(n, generator=g) * counts[classes]).long()
    return order[starts[classes] + offset]


def train_ddpm(x: torch.Tensor, y: torch.Tensor, steps: int, batch_size: int, lr: float, seed: int):
    from diffusers import DDPMPipeline, DDPMScheduler

    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    unet = build_unet()
    train_sched = DDPMScheduler(
        num_train_timesteps=1000,
        beta_schedule="squaredcos_cap_v2",
        prediction_type="epsilon",
        clip_sample=True,
    )
    opt = torch.optim.AdamW(unet.parameters(), lr=lr, weight_decay=0.0)
    warm = 200
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda i: min(1.0, (i + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(i, steps) / steps)),
    )
    data = x * 2.0 - 1.0  # [-1, 1]
    print(f"[ddpm] UNet2DModel with {sum(p.numel() for p in unet.parameters())} parameters")
    ema_unet = build_unet()
    ema_unet.load_state_dict(unet.state_dict())
    ema_params = list(ema_unet.parameters())
    start = time.perf_counter()
    ema = None
    for i in range(steps):
        idx = imbalanced_indices(y, batch_size, g)
        x0 = data[idx]
        noise = torch.randn(x0.shape, generator=g)
        t = torch.randint(0, 1000, (batch_size,), generator=g)
        xt = train_sched.add_noise(x0, noise, t)
        loss = F.mse_loss(unet(xt, t).sample, noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        with torch.no_grad():  # exponential moving average of the weights (what is saved)
            decay = min(EMA_DECAY, (1 + i) / (10 + i))
            torch._foreach_lerp_(ema_params, list(unet.parameters()), 1 - decay)
        ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        if i % 500 == 0 or i == steps - 1:
            print(
                f"[ddpm] step {i:5d} loss {ema:.4f} ({time.perf_counter() - start:.0f}s)",
                flush=True,
            )
    ema_unet.eval()
    pipe = DDPMPipeline(unet=ema_unet, scheduler=build_scheduler())
    return pipe, time.perf_counter() - start


def train_classifier(
    x: torch.Tensor,
    y: torch.Tensor,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    steps: int,
    seed: int,
) -> tuple[DigitClassifier, float]:
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed + 1)
    model = DigitClassifier()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    start = time.perf_counter()
    for _ in range(steps):
        idx = torch.randint(0, len(y), (128,), generator=g)
        xb = x[idx]
        # light augmentation: random shift by up to one pixel, random contrast
        shift = torch.randint(-1, 2, (2,), generator=g).tolist()
        xb = torch.roll(xb, shifts=shift, dims=(2, 3))
        xb = xb * (0.8 + 0.4 * torch.rand(len(idx), 1, 1, 1, generator=g))
        loss = F.cross_entropy(model(xb), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    model.eval()
    with torch.no_grad():
        acc = (model(x_test).argmax(-1) == y_test).double().mean().item()
    print(
        f"[classifier] {steps} steps in {time.perf_counter() - start:.0f}s; held-out accuracy "
        f"{acc:.4f} on {len(y_test)} test digits"
    )
    return model, acc


@torch.no_grad()
def evaluate(pipe, classify, n: int = 2000, steps: int = 20, seed: int = 1) -> None:
    """The saved pipeline's class law (classifier labels) against the training mix."""
    pipe.set_progress_bar_config(disable=True)
    g = torch.Generator().manual_seed(seed)
    images = pipe(batch_size=n, num_inference_steps=steps, generator=g, output_type="np").images
    x = torch.from_numpy(images).permute(0, 3, 1, 2)
    probs = classify.probabilities(x)
    labels = probs.argmax(-1)
    law = frequencies(labels, 10)
    print(f"  training mix     {[round(v, 3) for v in DIGIT_MIX]}")
    print(f"  model class law  {[round(v, 3) for v in law.tolist()]}  (n={n}, {steps} steps)")
    print(
        f"  mean top-class probability {probs.max(-1).values.mean():.3f}; share below 0.9: "
        f"{(probs.max(-1).values < 0.9).double().mean():.3f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--what", choices=["ddpm", "classifier", "both"], default="both")
    parser.add_argument("--steps", type=int, default=2500, help="DDPM optimizer steps")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--classifier-steps", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=PIPELINE_PATH, help="pipeline folder")
    args = parser.parse_args(argv)
    x, y, x_test, y_test = load_data(args.seed)
    if args.what in ("classifier", "both"):
        model, acc = train_classifier(x, y, x_test, y_test, args.classifier_steps, args.seed)
        model.save(CLASSIFIER_PATH)
        CLASSIFIER_CONFIG_PATH.write_text(
            json.dumps(
                {
                    "held_out_accuracy": round(acc, 4),
                    "held_out_digits": len(y_test),
                    "train_digits": len(y),
                    "steps": args.classifier_steps,
                    "seed": args.seed,
                },
                indent=2,
            )
            + "\n"
        )
        print(f"[classifier] saved to {CLASSIFIER_PATH}")
    if args.what in ("ddpm", "both"):
        pipe, seconds = train_ddpm(x, y, args.steps, args.batch_size, args.lr, args.seed)
        pipe.save_pretrained(args.out, safe_serialization=True)
        print(f"[ddpm] trained in {seconds:.0f}s; saved to {args.out}")
        from diffusers import DiffusionPipeline

        from implicit_temperature.demos.digits.classifier import load_classifier

        evaluate(
            DiffusionPipeline.from_pretrained(str(args.out), local_files_only=True),
            load_classifier(),
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
