"""The options of ``itemp sample`` (argparse only: importing this module does not import torch)."""

from __future__ import annotations

import argparse
import math
from typing import Any

from ..cli_options import add_adapter_option, positive_int_arg

DESCRIPTION = """\
Sample many problems at one or several temperatures, resumably, on one process or many.

Writes OUT/results.jsonl: one JSON line per (problem, temperature) in problem order, with id,
temperature, method, plan, seed, outputs (text and finish reason for CALM, key and PNG path
for images, key and sample otherwise), draws and diagnostics; the schema is
implicit_temperature/jobs/results.schema.json.
OUT is also the checkpoint: rerun the same command to resume
after a crash or Ctrl-C (finished problems are skipped; a resume with other arguments is refused).
Each (problem, temperature) has its own generator seeded from (--seed, id, T), so results never
depend on batching, sharding or the number of processes.

A malformed line in the problems file stops the job before any sampling, with its line number
(nothing is skipped silently): fix the line and rerun."""

EPILOG = """\
models:
  calm                       the shipped demo CALM (needs --problems; prompts of 4-character chunks)
  ddpm, flow                 the shipped 2-D mixture pipelines (unconditional: --num-problems N)
  digits                     the digits image demo, where installed
  answers                    the shipped answers CALM (prompts "3+4=")
  endpoint:URL               an OpenAI-compatible endpoint, e.g. endpoint:http://127.0.0.1:8000/v1
                             (-o model_name=NAME, --quantizer final_number; docs/endpoints.md)
  PATH                       a diffusers pipeline folder (model_index.json)
  package.module:factory     a function returning a model or (model, tokenizer)

examples:
  itemp sample calm --problems implicit_temperature/demos/calm/prompts.jsonl \\
      --temperature 0.5 1.0 --num-outputs 2 --out runs/calm
  itemp sample ddpm --num-problems 100 --temperature 0.5 --method batch --out runs/ddpm
  itemp sample endpoint:http://127.0.0.1:8000/v1 -o model_name=answers --quantizer \
      final_number --problems questions.jsonl -t 1 0.5 0.25 --out runs/answers
  torchrun --nproc_per_node 8 -m implicit_temperature sample calm --problems prompts.jsonl \\
      --temperature 0.5 --out runs/calm8      # 8 ranks, one results.jsonl

See docs/scaling.md for torchrun on one node, multi-node, Ray and Slurm arrays."""


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


def _positive_int_or_auto(text: str) -> int | str:
    """--num-samples: an integer >= 1 or the word auto (N chosen from a pilot)."""
    if text == "auto":
        return "auto"
    try:
        return positive_int_arg(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected an integer >= 1 or auto, got {text!r}"
        ) from None


def _shard(text: str) -> tuple[int, int]:
    index, sep, count = text.partition("/")
    try:
        i, n = int(index), int(count)
    except ValueError:
        i, n, sep = -1, 0, ""
    if not sep or not 0 <= i < n:
        raise argparse.ArgumentTypeError(f"expected I/N with 0 <= I < N, e.g. 0/8, got {text!r}")
    return i, n


#: what the job layer adds to a sampling option's help (from SampleOptions), and the flags whose
#: CLI default differs from the option's (None: the core's default, recorded as null)
_CLI_NOTES = {
    "max_draws": "per call, per decoding step for CALM",
}
_CLI_DEFAULTS: dict[str, Any] = {"plan": None}


def _tolerance(text: str) -> float:
    """--tolerance: a number in (0, 1], or a clear argparse error."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text!r}") from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text!r}")
    return value


def _add_sample_options(parser: argparse.ArgumentParser) -> None:
    """The sampling flags, derived from SampleOptions (name, default, check, help)."""
    from ..core.options import cli_options  # torch-free

    for opt in cli_options():
        default = _CLI_DEFAULTS.get(opt.name, opt.default)
        if default is not None:
            shown = "%(default)s"
        else:
            shown = "the core's" + ("" if opt.default is None else f", {opt.default!r}")
        note = f"; {_CLI_NOTES[opt.name]}" if opt.name in _CLI_NOTES else ""
        kwargs: dict[str, Any] = {"default": default, "metavar": opt.metavar}
        if opt.choices is not None:
            kwargs = {"default": default, "choices": opt.choices}
        elif opt.or_auto:
            kwargs["type"] = _positive_int_or_auto
        elif opt.integer:
            kwargs["type"] = positive_int_arg
        elif opt.real:
            kwargs["type"] = _tolerance
        else:
            kwargs["type"] = str  # e.g. --plan 4 is the tree "4", never the integer 4
        help_text = f"{opt.help}{note} (default: {shown})"
        parser.add_argument(opt.flag, help=help_text, **kwargs)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``itemp sample``, each with its default in its help line."""
    _add_inputs(parser)
    _add_temperatures(parser)
    _add_sample_options(parser)
    _add_model_options(parser)
    _add_run_options(parser)


def _add_inputs(parser: argparse.ArgumentParser) -> None:
    """MODEL, the problems (``--problems`` or ``--num-problems``, one required) and ``--out``."""
    parser.add_argument(
        "model",
        help="a shipped demo name, a diffusers pipeline folder, or "
        "package.module:factory (see 'models' below)",
    )
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--problems",
        metavar="FILE",
        help='JSONL file ({"id": ..., "prompt": ...} per line) or text file '
        "(one prompt per line) (required: this or --num-problems)",
    )
    src.add_argument(
        "--num-problems",
        type=positive_int_arg,
        metavar="N",
        help="N unconditional problems, ids '0' .. 'N-1' (required: this or --problems)",
    )
    parser.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="output folder and checkpoint, created if missing (required)",
    )


def _add_temperatures(parser: argparse.ArgumentParser) -> None:
    """``-t/--temperature``: one or several temperatures > 0 (``args.temperatures``)."""
    parser.add_argument(
        "-t",
        "--temperature",
        dest="temperatures",
        type=_positive_float,
        nargs="+",
        default=[0.5],
        metavar="T",
        help="one or several temperatures > 0 (default: 0.5)",
    )


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    """How the model is loaded and seeded: ``--max-new-tokens``, ``--seed``, ``--adapter``,
    ``--quantizer``, ``-o/--adapter-option`` and ``--device``."""
    parser.add_argument(
        "--max-new-tokens",
        type=positive_int_arg,
        default=32,
        metavar="L",
        help="CALM models: tokens to generate per output (default: %(default)s)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="job seed; each problem's generator comes from (seed, id, T) (default: %(default)s)",
    )
    parser.add_argument(
        "--adapter",
        default=None,
        metavar="NAME",
        help="adapter name, see 'itemp plugins' (default: the one whose handles(model) is true)",
    )
    parser.add_argument(
        "--quantizer",
        default=None,
        metavar="NAME",
        help="quantizer name, passed to the adapter as quantizer=NAME (default: the adapter's)",
    )
    add_adapter_option(
        parser,
        help="adapter option, VALUE parsed as JSON when it is JSON, else text; "
        "repeatable, e.g. -o num_inference_steps=25 (default: none)",
    )
    parser.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="'auto': each rank's own GPU when CUDA is available, else CPU (default: %(default)s)",
    )


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    """How the job runs: ``--shard``, ``--no-progress`` and ``-v/--verbose``."""
    parser.add_argument(
        "--shard",
        type=_shard,
        default=None,
        metavar="I/N",
        help="run only shard I of N (0-based) and do not merge: for Slurm arrays "
        "or Ray tasks; afterwards run once without --shard to merge "
        "(default: the whole job, split over the torchrun ranks)",
    )
    parser.add_argument(
        "--no-progress",
        dest="progress",
        action="store_false",
        help="no progress bar (default: a bar on rank 0)",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="log what the job does (resume counts, repairs) (default: off)",
    )


def spec_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The :class:`~implicit_temperature.jobs.JobSpec` fields of parsed ``itemp sample`` args
    (every sampling flag is a JobSpec field of the same name)."""
    from ..core.options import cli_options

    options = dict(args.adapter_options)
    if args.quantizer is not None:
        options["quantizer"] = args.quantizer
    return dict(
        model=args.model,
        problems=args.problems if args.problems is not None else args.num_problems,
        out=args.out,
        temperatures=tuple(args.temperatures),
        **{opt.name: getattr(args, opt.name) for opt in cli_options()},
        max_new_tokens=args.max_new_tokens,
        seed=args.seed,
        adapter=args.adapter,
        adapter_options=options,
        device=args.device,
        progress=args.progress,
        shard=args.shard,
    )
