"""Train the demo CALM model shipped in implicit_temperature/demos/calm/ (CPU, a few minutes).

Two stages, as in the CALM paper (Shao et al. 2025):

1. the chunk autoencoder (K = 4 characters <-> one latent of size D) as a small VAE: cross entropy
   of the decoded tokens plus a weighted KL term, so each chunk owns a whole region of latent space;
2. with the autoencoder frozen, the causal backbone (a ``transformers.LlamaModel`` built from a
   small ``LlamaConfig``, as in the reference) + generative head trained with the energy
   score (a strictly proper scoring rule): loss = 2 E||x - y|| - E||x - x'|| where x, x' are
   generative-head samples and y samples of the target chunk's latent posterior N(mean, std^2).

The corpus is drawn from the synthetic grammar in ``implicit_temperature.demos.calm.grammar``.
At the end, every context's next-chunk law is estimated from the trained model by sampling and
compared (total variation) with the grammar's exact law; these numbers and the training time are
stored in the config JSON next to the weights.

    .venv/bin/python scripts/train_calm.py            # writes demo_model.{safetensors,json}
"""

from __future__ import annotations

import argparse
import math
import platform
import time
from collections.abc import Callable
from pathlib import Path

import torch
import transformers

from implicit_temperature.demos.calm import grammar
from implicit_temperature.demos.calm.modeling import CALM, CALMConfig, count_parameters
from implicit_temperature.demos.calm.pretrained import DEMO_MODEL_DIR, DEMO_MODEL_NAME
from implicit_temperature.demos.calm.tokenizer import CharTokenizer


def streams_to_ids(streams: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Chunk indices (S, C) -> token ids (S, C * K)."""
    return table[streams].reshape(streams.shape[0], -1)


def train_autoencoder(
    model: CALM, table: torch.Tensor, args: argparse.Namespace, g: torch.Generator
) -> dict:
    ae = model.ae_model
    weights = grammar.transition_matrix()[grammar.NUM_CHUNKS].new_ones(grammar.NUM_CHUNKS)

    def chunks() -> torch.Tensor:
        idx = torch.multinomial(weights.float(), args.ae_batch, replacement=True, generator=g)
        return table[idx]  # (n, K)

    ce, kl = fit_autoencoder(ae, chunks, args, g)
    # robustness: reconstruction accuracy of posterior samples
    with torch.no_grad():
        ids = table.repeat(200, 1)
        mean, log_std = ae.encoder(ids).squeeze(-2).chunk(2, dim=-1)
        z = mean + log_std.exp() * torch.randn(mean.shape, generator=g)
        acc = (ae.decoder(z[:, None]).argmax(-1) == ids).all(-1).float().mean().item()
        acc_mean = (ae.decoder(mean[:, None]).argmax(-1) == ids).all(-1).float().mean().item()
    print(f"[ae] chunk accuracy: posterior mean {acc_mean:.4f}, posterior sample {acc:.4f}")
    return {
        "ae_chunk_accuracy_mean": acc_mean,
        "ae_chunk_accuracy_sample": acc,
        "ae_final_ce": ce.item(),
        "ae_final_kl": kl.item(),
    }


def fit_autoencoder(
    ae: torch.nn.Module, next_ids: Callable[[], torch.Tensor], args: argparse.Namespace, g
) -> tuple[torch.Tensor, torch.Tensor]:
    """``args.ae_steps`` AdamW steps of the chunk autoencoder (VAE: cross-entropy + kl_weight *
    KL, latents jittered by ae_noise for robust decoding regions) on batches ``next_ids()``
    (n, K); returns the last (ce, kl). Shared by the answers model (scripts/train_answers.py)."""
    opt = torch.optim.AdamW(ae.parameters(), lr=args.ae_lr)
    for step in range(args.ae_steps):
        ids = next_ids()  # (n, K)
        mean, log_std = ae.encoder(ids).squeeze(-2).chunk(2, dim=-1)  # (n, D) each
        z = mean + log_std.exp() * torch.randn(mean.shape, generator=g)
        z = z + args.ae_noise * torch.randn(z.shape, generator=g)  # robust decoding regions
        logits = ae.decoder(z[:, None, :])  # (n, 1 * K, V)
        ce = torch.nn.functional.cross_entropy(logits.flatten(0, -2), ids.reshape(-1))
        kl = 0.5 * (mean.pow(2) + (2 * log_std).exp() - 1 - 2 * log_std).sum(-1).mean()
        loss = ce + args.kl_weight * kl
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 500 == 0 or step == args.ae_steps - 1:
            print(f"[ae] step {step:5d}  ce {ce.item():.4f}  kl {kl.item():.3f}", flush=True)
    return ce, kl


def energy_loss(
    x: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor, num_targets: int, g: torch.Generator
) -> torch.Tensor:
    """x (M, P, D) model samples; mean/log_std (P, D). Returns the mean over P of
    2 E||x - y|| - E||x - x'|| (the negative energy score, up to the constant E||y - y'||)."""
    m = x.shape[0]
    d_xx = torch.cdist(x.transpose(0, 1), x.transpose(0, 1))  # (P, M, M)
    e_xx = d_xx.sum(dim=(1, 2)) / (m * (m - 1))
    y = mean + log_std.exp() * torch.randn((num_targets, *mean.shape), generator=g)  # (Y, P, D)
    e_xy = torch.cdist(x.transpose(0, 1), y.transpose(0, 1)).mean(dim=(1, 2))  # (P,)
    return (2 * e_xy - e_xx).mean()


def train_calm(
    model: CALM, table: torch.Tensor, args: argparse.Namespace, g: torch.Generator
) -> dict:
    def sequences() -> torch.Tensor:
        streams = grammar.sample_chunk_streams(args.batch, args.chunks, generator=g)
        return streams_to_ids(streams, table)  # (S, C*K)

    return fit_calm(model, sequences, args, g, warmup=200)


def fit_calm(
    model: CALM,
    next_ids: Callable[[], torch.Tensor],
    args: argparse.Namespace,
    g: torch.Generator,
    warmup: int,
) -> dict:
    """``args.steps`` steps of the CALM model (the autoencoder frozen): energy loss of the
    generative head's samples against the encoder's posterior of the next chunk, AdamW with a
    linear warm-up over ``warmup`` steps then cosine decay, gradients clipped at 1, on batches
    ``next_ids()`` (S, C*K). Shared by the answers model (scripts/train_answers.py)."""
    for p in model.ae_model.parameters():
        p.requires_grad_(False)
    params = [p for n, p in model.named_parameters() if not n.startswith("ae_model.")]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * s / args.steps)),
    )
    k = model.patch_size
    for step in range(args.steps):
        ids = next_ids()  # (S, C*K)
        with torch.no_grad():
            mean, log_std = model.ae_model.encoder(ids[:, k:]).chunk(2, dim=-1)  # (S, C-1, D)
        hidden = model.transformer(inputs_embeds=model.chunk_embeds(ids[:, :-k]), use_cache=False)[
            0
        ]
        hidden = hidden.reshape(-1, hidden.shape[-1])  # (P, H)
        x = model.generative_head.sample(
            hidden.unsqueeze(0).expand(args.num_model_samples, -1, -1), generator=g
        )  # (M, P, D)
        loss = energy_loss(
            x,
            mean.reshape(-1, mean.shape[-1]),
            log_std.reshape(-1, mean.shape[-1]),
            args.num_target_samples,
            g,
        )
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        if step % 250 == 0 or step == args.steps - 1:
            print(f"[calm] step {step:5d}  energy loss {loss.item():.4f}", flush=True)
    return {"calm_final_energy_loss": loss.item()}


@torch.no_grad()
def evaluate(
    model: CALM, tok: CharTokenizer, table: torch.Tensor, num_draws: int, g: torch.Generator
) -> dict:
    """TV between the model's next-chunk law (``num_draws`` samples) and the grammar's, for one
    prompt per grammar context (each chunk type, plus the chunk after END)."""
    texts = grammar.chunk_texts()
    prompts = (
        list(grammar.SUBJECTS)
        + ["cat " + v for v in grammar.VERBS]
        + ["cat saw " + o for o in grammar.OBJECTS]
    )
    ids = [tok.encode(p)[0] for p in prompts]
    out = {}
    trans = grammar.transition_matrix()
    contexts = [(p, i, texts.index(p[-4:])) for p, i in zip(prompts, ids, strict=True)]
    end_ctx = torch.cat([table[0], table[4], table[8], table[grammar.END]])
    contexts.append(("cat saw rat.<eos>", end_ctx, grammar.END))
    for name, seq, c in contexts:
        h = model.transformer(inputs_embeds=model.chunk_embeds(seq[None]), use_cache=False)[0][
            :, -1
        ]
        lat = model.generative_head.sample(h.expand(num_draws, -1), generator=g)
        chunks = model.ae_model.decoder(lat[:, None]).argmax(-1)  # (n, K)
        match = (chunks[:, None, :] == table[None]).all(-1)  # (n, 13)
        freq = match.double().mean(0)
        other = 1 - freq.sum().item()
        tv = 0.5 * ((freq - trans[c]).abs().sum().item() + other)
        out[name] = {
            "tv": round(tv, 4),
            "off_grammar": round(other, 5),
            "freq": [round(f, 4) for f in freq.tolist()],
        }
        print(f"[eval] {name!r:22} TV to grammar {tv:.4f}  off-grammar {other:.5f}")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--out", type=Path, default=DEMO_MODEL_DIR)
    p.add_argument("--name", default=DEMO_MODEL_NAME)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (1 is fastest when other jobs share the CPU)",
    )
    p.add_argument("--ae-steps", type=int, default=1500)
    p.add_argument("--ae-batch", type=int, default=512)
    p.add_argument("--ae-lr", type=float, default=3e-3)
    p.add_argument("--kl-weight", type=float, default=0.01)
    p.add_argument(
        "--ae-noise",
        type=float,
        default=0.5,
        help="extra isotropic latent noise while training the autoencoder, so the "
        "decoder maps whole regions (also between chunks) to grammar chunks",
    )
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch", type=int, default=32, help="streams per step")
    p.add_argument("--chunks", type=int, default=16, help="chunks per stream")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--num-model-samples", type=int, default=8)
    p.add_argument("--num-target-samples", type=int, default=16)
    p.add_argument("--eval-draws", type=int, default=20000)
    args = p.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    g = torch.Generator().manual_seed(args.seed)
    tok = CharTokenizer()
    config = CALMConfig(
        vocab_size=tok.vocab_size,
        patch_size=grammar.PATCH_SIZE,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
    )
    model = CALM(config)
    table = grammar.chunk_ids(tok)
    t0 = time.perf_counter()
    ae_stats = train_autoencoder(model, table, args, g)
    t1 = time.perf_counter()
    calm_stats = train_calm(model, table, args, g)
    t2 = time.perf_counter()
    model.eval()
    ev = evaluate(model, tok, table, args.eval_draws, g)
    record = {
        "training": {
            "script": "scripts/train_calm.py",
            "args": {
                k: (str(v) if isinstance(v, Path) else v)
                for k, v in vars(args).items()
                if k not in ("out",)
            },
            "seconds_autoencoder": round(t1 - t0, 1),
            "seconds_calm": round(t2 - t1, 1),
            "cpu_threads": args.threads,
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "python": platform.python_version(),
            "num_parameters": count_parameters(model),
            **ae_stats,
            **calm_stats,
        },
        "eval_next_chunk_tv_to_grammar": ev,
        "chunks": grammar.chunk_texts(),
    }
    model.save_pretrained(args.out, name=args.name, extra=record)
    print(
        f"trained in {t2 - t0:.1f} s ({t1 - t0:.1f} s autoencoder, {t2 - t1:.1f} s CALM); "
        f"{count_parameters(model)} parameters; "
        f"wrote {args.out / args.name}.{{safetensors,json}}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
