"""Train the answers model shipped in implicit_temperature/demos/answers/ (CPU, a few minutes).

A small CALM (the demo CALM's code and training recipe, scripts/train_calm.py: a chunk VAE, then
the backbone and generative head with the energy score) trained on one-digit additions whose
answer law is designed (``implicit_temperature.demos.answers.task``): right 55% of the time, a
known spread of wrong answers, two surface texts per answer. At the end the model's answer law is
estimated per question by sampling and compared (total variation) with the designed law; the
numbers and the training time are stored in the JSON next to the weights.

    .venv/bin/python scripts/train_answers.py        # writes answers_model.{safetensors,json}
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch
import transformers

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_calm import fit_autoencoder, fit_calm  # noqa: E402

from implicit_temperature.demos.answers import task  # noqa: E402
from implicit_temperature.demos.answers.model import MODEL_DIR, MODEL_NAME  # noqa: E402
from implicit_temperature.demos.calm.modeling import CALM, CALMConfig, count_parameters  # noqa: E402


def train_autoencoder(model: CALM, table: torch.Tensor, args: argparse.Namespace, g) -> dict:
    ae = model.ae_model

    def chunks() -> torch.Tensor:
        return table[torch.randint(table.shape[0], (args.ae_batch,), generator=g)]

    ce, _ = fit_autoencoder(ae, chunks, args, g)
    with torch.no_grad():
        ids = table.repeat(50, 1)
        mean, log_std = ae.encoder(ids).squeeze(-2).chunk(2, dim=-1)
        z = mean + log_std.exp() * torch.randn(mean.shape, generator=g)
        acc = (ae.decoder(z[:, None]).argmax(-1) == ids).all(-1).float().mean().item()
    print(f"[ae] chunk accuracy (posterior samples) {acc:.4f}", flush=True)
    return {"ae_chunk_accuracy_sample": acc, "ae_final_ce": ce.item()}


def train_calm(model: CALM, tok, args: argparse.Namespace, g) -> dict:
    return fit_calm(
        model, lambda: task.sample_sequences(args.batch, tok, generator=g), args, g, warmup=100
    )


@torch.no_grad()
def evaluate(model: CALM, tok, num_draws: int, g) -> dict:
    """Per question: the model's answer-value law (``num_draws`` answer chunks) against the
    designed law: TV, the share right, and the share of texts that are no answer form."""
    texts, table = task.chunk_table(tok)
    qs = task.questions()
    prompts = torch.stack([tok.encode(q)[0] for q, _ in qs])  # (Q, K)
    h = model.transformer(inputs_embeds=model.chunk_embeds(prompts), use_cache=False)[0][:, -1]
    lat = model.generative_head.sample(h.repeat_interleave(num_draws, 0), generator=g)
    chunks = model.ae_model.decoder(lat[:, None]).argmax(-1).reshape(len(qs), num_draws, -1)
    tvs, right, other = [], [], []
    for i, (_, r) in enumerate(qs):
        decoded = tok.batch_decode(chunks[i])
        law = task.answer_law(r)
        counts: dict[int | None, int] = {}
        for text in decoded:
            v = None
            for value in law:
                if text in task.surface_forms(value):
                    v = value
            counts[v] = counts.get(v, 0) + 1
        freq = {v: c / num_draws for v, c in counts.items()}
        keys = set(freq) | set(law)
        tvs.append(0.5 * sum(abs(freq.get(v, 0.0) - law.get(v, 0.0)) for v in keys))
        right.append(freq.get(r, 0.0))
        other.append(freq.get(None, 0.0))
    out = {
        "answer_tv_mean": round(sum(tvs) / len(tvs), 4),
        "answer_tv_max": round(max(tvs), 4),
        "right_share_mean": round(sum(right) / len(right), 4),
        "right_share_min": round(min(right), 4),
        "right_share_max": round(max(right), 4),
        "off_law_share_mean": round(sum(other) / len(other), 5),
        "draws_per_question": num_draws,
    }
    print(f"[eval] {out}", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--out", type=Path, default=MODEL_DIR)
    p.add_argument("--name", default=MODEL_NAME)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--ae-steps", type=int, default=1500)
    p.add_argument("--ae-batch", type=int, default=512)
    p.add_argument("--ae-lr", type=float, default=3e-3)
    p.add_argument("--kl-weight", type=float, default=0.01)
    p.add_argument("--ae-noise", type=float, default=0.5)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch", type=int, default=256, help="sequences per step")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--num-model-samples", type=int, default=8)
    p.add_argument("--num-target-samples", type=int, default=16)
    p.add_argument("--eval-draws", type=int, default=2000)
    args = p.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    g = torch.Generator().manual_seed(args.seed)
    tok = task.tokenizer()
    config = CALMConfig(
        vocab_size=tok.vocab_size,
        patch_size=task.PATCH_SIZE,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
    )
    model = CALM(config)
    _, table = task.chunk_table(tok)
    t0 = time.perf_counter()
    ae_stats = train_autoencoder(model, table, args, g)
    t1 = time.perf_counter()
    calm_stats = train_calm(model, tok, args, g)
    t2 = time.perf_counter()
    model.eval()
    ev = evaluate(model, tok, args.eval_draws, g)
    record = {
        "tokenizer_characters": task.CHARACTERS,
        "training": {
            "script": "scripts/train_answers.py",
            "args": {k: v for k, v in vars(args).items() if k != "out"},
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
        "eval_answer_law": ev,
        "designed_offsets": {str(k): v for k, v in task.OFFSETS.items()},
    }
    model.save_pretrained(args.out, name=args.name, extra=record)
    print(f"trained in {t2 - t0:.1f} s; wrote {args.out / args.name}.{{safetensors,json}}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
