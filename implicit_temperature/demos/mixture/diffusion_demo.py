"""`itemp demo diffusion`: temperature on the shipped DDPM model of a 2-D Gaussian mixture.

Compares component frequencies at T = 1, with the initial noise scaled by T (the usual
workaround), and with the exact and batch methods, against the target w^(1/T)/Z; prints the table
and writes a figure (matplotlib, Agg backend).
"""

from __future__ import annotations

import argparse

from .loading import load_ddpm_pipeline
from .runner import add_common_arguments, run_mixture_demo


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser, default_out="demo-diffusion.png")


def run(args: argparse.Namespace) -> int:
    return run_mixture_demo("DDPM demo (diffusion adapter)", load_ddpm_pipeline, args)
