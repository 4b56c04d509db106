"""``run_job``: the per-shard entry point behind ``itemp sample`` (and torchrun, Ray, Slurm).

Flow on every rank: read the problems; rank 0 checks the output folder (writable, manifest,
torn last lines) while the others wait; every rank reads which units are finished; rank R runs
the pending units ``pending[R::W]`` (each with its own generator, so results do not depend on R
or W) and appends each result to ``parts/rank-R.jsonl`` as it finishes; after a barrier rank 0
merges the parts into ``results.jsonl`` in problem order.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import ImplicitTemperatureError, InvalidArgumentTypeError
from .distributed import DistContext
from .errors import JobError, JobInterrupted
from .models import check_plugins, load_model, resolve_target
from .problems import Problem, file_digest, load_problems
from .sampling import make_runner
from .seeding import problem_seed
from .spec import JobSpec
from .store import (
    MANIFEST,
    Expected,
    FolderLock,
    PartWatcher,
    PartWriter,
    check_manifest_unchanged,
    job_fingerprint,
    merge,
    part_name,
    prepare_folder,
    read_done,
    repair_parts,
)

logger = logging.getLogger(__name__)


@dataclass
class JobSummary:
    """What a finished (or interrupted) job reports. ``results`` is None until merged."""

    out: Path
    results: Path | None
    units: int  # (problem, temperature) pairs in the job
    already_done: int  # finished before this run started
    ran: int  # finished by this rank in this run
    draws: int  # base draws spent by this rank in this run
    seconds: float
    rank: int = 0
    world_size: int = 1
    resumed: bool = False


class _Progress:
    """Rank 0's tqdm bar over every rank's units, with draws/s (falls back to log lines)."""

    def __init__(
        self, enabled: bool, total: int, initial_draws: int, out: Path, watch: bool
    ) -> None:
        self.watcher = PartWatcher(out) if watch else None
        if self.watcher is not None:
            self.watcher.skip_existing()
        self.draws = initial_draws
        self.start = time.perf_counter()
        self.bar = None
        if enabled:
            try:
                from tqdm.auto import tqdm
            except ImportError:  # pragma: no cover - tqdm comes with the diffusion extra
                logger.info("install tqdm for a progress bar")
            else:
                self.bar = tqdm(
                    total=total,
                    unit="problem",
                    desc="itemp sample",
                    dynamic_ncols=True,
                    smoothing=0.1,
                )

    def step(self, units: int, draws: int) -> None:
        if self.watcher is not None:  # count every rank's lines, ours included
            units, draws = self.watcher.poll()
        self.draws += draws
        if self.bar is not None and units:
            rate = self.draws / max(time.perf_counter() - self.start, 1e-9)
            self.bar.set_postfix_str(f"{rate:,.0f} draws/s", refresh=False)
            self.bar.update(units)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _prepare(spec: JobSpec, out: Path, lock: FolderLock, manifest: dict[str, Any]) -> bool:
    """Rank 0: take the folder lock (exclusive to check and set up the folder, then shared for
    the run), prepare the folder and repair torn lines; returns True when resuming."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise JobError(
            f"output folder {out} is not writable: it cannot be created ({exc.strerror or exc}); "
            "choose another --out or fix its permissions"
        ) from None
    exclusive = lock.acquire() == "exclusive"
    resumed = prepare_folder(out, manifest, exclusive=exclusive)
    own = None if spec.shard is None else part_name(spec.shard)
    for note in repair_parts(out, only=own):
        logger.warning(note)
    lock.share()
    check_manifest_unchanged(out, manifest)
    return resumed


def _write_failed(out: Path, exc: OSError, command: str | None) -> JobError:
    where = f" ({exc.filename})" if exc.filename else ""
    return JobError(
        f"writing to {out} failed: {exc.strerror or exc}{where}. Every result finished before "
        f"is kept; free space or fix the folder's permissions, then {_resume_hint(command)}"
    )


def _resume_hint(command: str | None) -> str:
    how = f"rerun `{command}`" if command else "rerun the job with the same arguments and out"
    return f"{how} to resume (finished problems are kept)"


def run_job(
    spec: JobSpec | None = None,
    *,
    command: str | None = None,
    on_result: Callable[[dict[str, Any]], None] | None = None,
    **kwargs: Any,
) -> JobSummary:
    """Run (or resume) a sampling job; returns a :class:`JobSummary`.

    Args:
        spec: a :class:`JobSpec`, or None and its fields as keyword arguments
            (``run_job(model="calm", problems="prompts.jsonl", out="runs/a", temperatures=[0.5])``).
        command: the command line to show in the "how to resume" message.
        on_result: called with each record this rank writes (after it is on disk).

    Under torchrun every rank calls this with the same arguments. Raises :class:`JobError` (bad
    arguments, model, problems file, output folder), :class:`JobMismatchError` (``out`` holds
    another job), :class:`JobCorruptError`, and :class:`JobInterrupted` on Ctrl-C/SIGTERM (what
    finished is on disk; the message says how to resume).
    """
    if spec is None:
        spec = JobSpec(**kwargs)
    elif kwargs:
        raise InvalidArgumentTypeError("give a JobSpec or keyword arguments, not both")
    start = time.perf_counter()
    out = Path(spec.out)
    ctx = DistContext.setup(spec.device)
    if spec.shard is not None and ctx.distributed:
        ctx.close()
        raise JobError(
            "shard= is for launchers without torch.distributed (Slurm arrays, Ray); "
            f"under torchrun the {ctx.world_size} ranks already split the job"
        )
    lock = FolderLock(out)
    try:
        return _run(spec, ctx, out, lock, start, command, on_result)
    finally:
        lock.release()
        ctx.close()


def _run(
    spec: JobSpec,
    ctx: DistContext,
    out: Path,
    lock: FolderLock,
    start: float,
    command: str | None,
    on_result: Callable[[dict[str, Any]], None] | None,
) -> JobSummary:
    def preflight() -> tuple[list[Problem], str | None, bool]:
        resolve_target(spec.model)  # unknown model/adapter/quantizer: an error before the
        check_plugins(spec.adapter, spec.adapter_options)  # output folder is touched
        problems = load_problems(spec.problems)
        digest = file_digest(spec.problems) if isinstance(spec.problems, str) else None
        resumed = False
        if ctx.rank == 0:
            resumed = _prepare(spec, out, lock, manifest(digest, len(problems)))
        return problems, digest, resumed

    def manifest(digest: str | None, count: int) -> dict[str, Any]:
        return spec.manifest(digest, count, ctx.device.type)

    problems, digest, resumed = ctx.agree(preflight)
    ctx.same((digest, len(problems)), "the problems file (sha256, number of problems)")
    fingerprint = job_fingerprint(manifest(digest, len(problems)))
    known = {
        (p.id, t): i * len(spec.temperatures) + j
        for i, p in enumerate(problems)
        for j, t in enumerate(spec.temperatures)
    }
    expect = Expected(known, fingerprint, spec.seed)
    order = sorted(known, key=known.__getitem__)
    done = ctx.agree(lambda: read_done(out, expect))
    if spec.shard is None:
        pending = [key for key in order if key not in done]
        shard = pending[ctx.rank :: ctx.world_size]
    else:  # a fixed slice of the job, so concurrent shards never overlap
        index, count = spec.shard
        pending = [key for key in order[index::count] if key not in done]
        shard = pending
    by_id = {p.id: p for p in problems}
    if ctx.rank == 0:
        logger.info(
            "%d of %d results already in %s; %d to run on %d rank(s)",
            len(done),
            len(order),
            out,
            len(pending),
            ctx.world_size,
        )

    def setup_runner() -> Any:
        if not shard:
            return None
        runner = make_runner(load_model(spec.model, ctx.device), spec, out)
        for pid in dict.fromkeys(pid for pid, _ in shard):
            runner.check(by_id[pid])  # every prompt checked before the first sample
        return runner

    # the bar (and its view of the part files) starts before any rank can write a line
    progress = _Progress(
        spec.progress and ctx.rank == 0, len(pending), 0, out, watch=ctx.distributed
    )
    try:
        runner = ctx.agree(setup_runner)
    except BaseException:
        progress.close()
        raise
    done_draws = 0
    ran = 0
    try:
        if shard:
            name = part_name(spec.shard) if spec.shard else f"rank-{ctx.rank}.jsonl"
            with PartWriter(out, name) as writer:
                for pid, t in shard:
                    problem = by_id[pid]
                    seed = problem_seed(spec.seed, pid, t)
                    try:
                        result = runner(problem, t, seed)
                    except ImplicitTemperatureError as exc:  # e.g. a draw budget overrun
                        where = f"problem {pid!r}" + (
                            f" (line {problem.line})" if problem.line else ""
                        )
                        if getattr(exc, "resumable", False):  # e.g. an endpoint that went away
                            raise JobError(
                                f"{where} at T={t:g}: {type(exc).__name__}: {exc}. Results "
                                f"finished so far are kept in {out}; {_resume_hint(command)}"
                            ) from exc
                        raise JobError(
                            f"{where} at T={t:g}: {type(exc).__name__}: {exc}. Results finished "
                            f"so far are kept in {out}, but with the same arguments (and so the "
                            "same seed) this problem fails again: fix the cause (e.g. a larger "
                            "--max-draws, another --method) and rerun (a folder that holds no "
                            "result yet is taken by the corrected job; else use a fresh --out)"
                        ) from exc
                    record = {
                        "id": pid,
                        "temperature": t,
                        "job": fingerprint,
                        "method": spec.method,
                        "method_used": result["method_used"],
                        "plan": result["plan"],
                        "seed": seed,
                        "num_outputs": spec.num_outputs,
                    }
                    if problem.prompt is not None:
                        record["prompt"] = problem.prompt
                    record["outputs"] = result["outputs"]
                    record.update(
                        draws=result["draws"],
                        diagnostics=result["diagnostics"],
                        stats=result["stats"],
                    )
                    if problem.meta:
                        record["meta"] = problem.meta
                    writer.write(record)
                    ran += 1
                    done_draws += result["draws"]
                    progress.step(1, result["draws"])
                    if on_result is not None:
                        on_result(record)
        work = ctx.barrier_async()
        while work is not None and not work.is_completed():
            progress.step(0, 0)
            time.sleep(0.2)
        if work is not None:
            work.wait()
            del work  # no handle on the wait group outlives the job
        progress.step(0, 0)
    except KeyboardInterrupt:
        progress.close()
        saved_now = len(read_done(out, expect))  # the part file is closed: count what is on disk
        saved = f"{saved_now} of {len(order)} results are saved in {out}"
        if ctx.distributed:
            saved = f"rank {ctx.rank} stopped; {saved} so far"
        raise JobInterrupted(f"interrupted: {saved}; {_resume_hint(command)}") from None
    except OSError as exc:  # disk full, read-only or immutable file: what is on disk is kept
        progress.close()
        raise _write_failed(out, exc, command) from None
    progress.close()
    if spec.shard is not None:
        logger.info(
            "shard %d of %d done; once every shard is done, run the job once without "
            "shard to merge",
            *spec.shard,
        )
        return JobSummary(
            out=out,
            results=None,
            units=len(order),
            already_done=len(done),
            ran=ran,
            draws=done_draws,
            seconds=time.perf_counter() - start,
            resumed=resumed,
        )

    # every rank waits for rank 0's merge (and hears of its failure)
    def merge_on_rank_0() -> Path:
        if ctx.rank != 0:
            return out / "results.jsonl"
        try:
            return merge(out, order, expect)
        except OSError as exc:
            raise _write_failed(out, exc, command) from None

    results = ctx.agree(merge_on_rank_0)
    seconds = time.perf_counter() - start
    if ctx.rank == 0:
        logger.info("wrote %s (%d lines) in %.1f s", results, len(order), seconds)
    return JobSummary(
        out=out,
        results=results,
        units=len(order),
        already_done=len(done),
        ran=ran,
        draws=done_draws,
        seconds=seconds,
        rank=ctx.rank,
        world_size=ctx.world_size,
        resumed=resumed,
    )


__all__ = ["MANIFEST", "JobError", "JobSummary", "run_job"]
