"""Local launches shared by the benchmarks and the tests: a free loopback port and the torchrun
command prefix (one node, W ranks, rendezvous on 127.0.0.1)."""

from __future__ import annotations

import socket
import sys


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def torchrun_command(world: int, *tail: str) -> list[str]:
    """``python -m torch.distributed.run`` on one node with ``world`` ranks and a free loopback
    port, followed by ``tail`` (``"-m", "implicit_temperature", "sample", ...`` or a script)."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes",
        "1",
        "--nproc_per_node",
        str(world),
        "--master-addr",
        "127.0.0.1",
        "--master-port",
        str(free_port()),
        *tail,
    ]
