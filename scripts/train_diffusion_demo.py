"""Train the two demo models shipped with implicit-temperature (CPU, a few minutes).

* DDPM: ``MixtureDDPMPipeline`` = ``DDPMScheduler`` (1000 training steps, epsilon prediction)
  + ``MLPDenoiser``, saved to ``implicit_temperature/demos/mixture/weights/ddpm/``.
* Flow matching: ``MixtureFlowMatchingPipeline`` = ``FlowMatchEulerDiscreteScheduler``
  + ``MLPDenoiser`` predicting the velocity, saved to
  ``implicit_temperature/demos/mixture/weights/flow/``.

Both learn the 2-D Gaussian mixture of ``implicit_temperature.demos.mixture.mixture``
(weights 0.5 / 0.3 / 0.15 / 0.05). Deterministic given ``--seed`` and the torch build.

    .venv/bin/python scripts/train_diffusion_demo.py            # both models
    .venv/bin/python scripts/train_diffusion_demo.py --model flow --steps 3000

Needs the package importable (``pip install -e .``, as ``make setup`` does; or ``PYTHONPATH=.``).
Afterwards it reloads each saved pipeline and prints its component frequencies.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch
from diffusers import DDPMScheduler, FlowMatchEulerDiscreteScheduler

from implicit_temperature.demos.laws import frequencies
from implicit_temperature.demos.mixture.ddpm_pipeline import MixtureDDPMPipeline
from implicit_temperature.demos.mixture.flow_pipeline import MixtureFlowMatchingPipeline
from implicit_temperature.demos.mixture.mixture import (
    DEMO_MEANS,
    DEMO_STD,
    DEMO_WEIGHTS,
    NearestComponentQuantizer,
    sample_mixture,
)
from implicit_temperature.demos.mixture.models import MLPDenoiser

PACKAGE = Path(__file__).resolve().parents[1] / "implicit_temperature" / "adapters"
OUT_DIRS = {
    "ddpm": PACKAGE / "diffusion" / "demo_pipeline",
    "flow": PACKAGE / "flow_matching" / "demo_pipeline",
}


def _loss_ddpm(model, scheduler, x0, g):
    noise = torch.randn(x0.shape, generator=g)
    t = torch.randint(0, scheduler.config.num_train_timesteps, (x0.shape[0],), generator=g)
    xt = scheduler.add_noise(x0, noise, t)
    return torch.nn.functional.mse_loss(model(xt, t), noise)


def _loss_flow(model, scheduler, x0, g):
    noise = torch.randn(x0.shape, generator=g)
    sigma = torch.rand(x0.shape[0], generator=g)
    xt = sigma[:, None] * noise + (1.0 - sigma[:, None]) * x0
    t = sigma * scheduler.config.num_train_timesteps
    return torch.nn.functional.mse_loss(model(xt, t), noise - x0)


def train(kind: str, steps: int, batch_size: int, lr: float, seed: int):
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = MLPDenoiser(sample_dim=2, hidden_dim=64, num_layers=3, time_embed_dim=32)
    if kind == "ddpm":
        scheduler = DDPMScheduler(
            num_train_timesteps=1000,
            beta_schedule="linear",
            clip_sample=False,
            prediction_type="epsilon",
            timestep_spacing="trailing",
        )
        loss_fn, pipe_cls = _loss_ddpm, MixtureDDPMPipeline
    else:
        scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=1.0)
        loss_fn, pipe_cls = _loss_flow, MixtureFlowMatchingPipeline
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: 0.5 * (1 + math.cos(math.pi * min(i, steps) / steps))
    )
    means, weights = torch.tensor(DEMO_MEANS), torch.tensor(DEMO_WEIGHTS)
    start = time.perf_counter()
    for i in range(steps):
        x0, _ = sample_mixture(batch_size, means, weights, DEMO_STD, generator=g)
        loss = loss_fn(model, scheduler, x0, g)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if i % 500 == 0 or i == steps - 1:
            elapsed = time.perf_counter() - start
            print(f"[{kind}] step {i:5d} loss {loss.item():.4f} ({elapsed:.0f}s)")
    model.eval()
    return pipe_cls(
        denoiser=model,
        scheduler=scheduler,
        mixture_means=DEMO_MEANS,
        mixture_weights=DEMO_WEIGHTS,
        mixture_std=DEMO_STD,
    )


def evaluate(pipe, n: int = 50_000, seed: int = 1) -> None:
    """Print the model's component frequencies (nearest mean) and its off-component mass."""
    pipe.set_progress_bar_config(disable=True)
    x = pipe(n, generator=torch.Generator().manual_seed(seed)).samples
    labels = NearestComponentQuantizer(pipe.mixture_means)(x)
    freq = frequencies(labels, len(DEMO_WEIGHTS))
    dist = (x - pipe.mixture_means[labels]).norm(dim=1)
    stray = (dist > 4 * DEMO_STD).double().mean().item()
    print(f"  trained weights  {[round(w, 4) for w in DEMO_WEIGHTS]}")
    print(f"  model frequencies {[round(f, 4) for f in freq.tolist()]}  (n={n})")
    print(f"  samples > 4 std from their nearest mean: {stray:.4f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["ddpm", "flow", "both"], default="both")
    parser.add_argument(
        "--steps",
        type=int,
        default=6000,
        help="optimizer steps (default 6000, as for the shipped weights)",
    )
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder (only with a single --model); default: in the package",
    )
    args = parser.parse_args(argv)
    kinds = ["ddpm", "flow"] if args.model == "both" else [args.model]
    for kind in kinds:
        pipe = train(kind, args.steps, args.batch_size, args.lr, args.seed)
        out = args.out if (args.out is not None and len(kinds) == 1) else OUT_DIRS[kind]
        pipe.save_pretrained(out, safe_serialization=True)
        print(f"[{kind}] saved to {out}")
        evaluate(type(pipe).from_pretrained(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
