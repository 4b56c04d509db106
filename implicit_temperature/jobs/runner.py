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
    UnitKey,
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


@dataclass(frozen=True)
class _Job:
    """What every rank agreed on before sampling: the problems, the units in job order, what is
    already done, what is pending and this rank's share of it (``shard``)."""

    spec: JobSpec
    ctx: DistContext
    out: Path
    command: str | None
    by_id: dict[str, Problem]
    fingerprint: str
    expect: Expected
    order: list[UnitKey]
    done: dict[UnitKey, str]  # the finished units read from the folder -> their lines
    pending: list[UnitKey]
    shard: list[UnitKey]
    resumed: bool


def _plan_job(
    spec: JobSpec, ctx: DistContext, out: Path, lock: FolderLock, command: str | None
) -> _Job:
    """Preflight (model, plugins, problems; rank 0 prepares the folder), then split the pending
    units: ``pending[rank::world_size]``, or the fixed slice of ``spec.shard``."""

    def manifest(digest: str | None, count: int) -> dict[str, Any]:
        return spec.manifest(digest, count, ctx.device.type)

    def preflight() -> tuple[list[Problem], str | None, bool]:
        resolve_target(spec.model)  # unknown model/adapter/quantizer: an error before the
        check_plugins(spec.adapter, spec.adapter_options)  # output folder is touched
        problems = load_problems(spec.problems)
        digest = file_digest(spec.problems) if isinstance(spec.problems, str) else None
        resumed = False
        if ctx.rank == 0:
            resumed = _prepare(spec, out, lock, manifest(digest, len(problems)))
        return problems, digest, resumed

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
    if ctx.rank == 0:
        logger.info(
            "%d of %d results already in %s; %d to run on %d rank(s)",
            len(done),
            len(order),
            out,
            len(pending),
            ctx.world_size,
        )
    by_id = {p.id: p for p in problems}
    return _Job(
        spec, ctx, out, command, by_id, fingerprint, expect, order, done, pending, shard, resumed
    )


def _setup_runner(job: _Job) -> Any:
    """The model's runner (None for an empty shard), every prompt checked before any sample."""
    if not job.shard:
        return None
    runner = make_runner(load_model(job.spec.model, job.ctx.device), job.spec, job.out)
    for pid in dict.fromkeys(pid for pid, _ in job.shard):
        runner.check(job.by_id[pid])
    return runner


def _unit_failed(job: _Job, problem: Problem, t: float, exc: ImplicitTemperatureError) -> JobError:
    """The job error for a unit whose sampling raised (resumable or not: the message says)."""
    where = f"problem {problem.id!r}" + (f" (line {problem.line})" if problem.line else "")
    if getattr(exc, "resumable", False):  # e.g. an endpoint that went away
        return JobError(
            f"{where} at T={t:g}: {type(exc).__name__}: {exc}. Results "
            f"finished so far are kept in {job.out}; {_resume_hint(job.command)}"
        )
    return JobError(
        f"{where} at T={t:g}: {type(exc).__name__}: {exc}. Results finished "
        f"so far are kept in {job.out}, but with the same arguments (and so the "
        "same seed) this problem fails again: fix the cause (e.g. a larger "
        "--max-draws, another --method) and rerun (a folder that holds no "
        "result yet is taken by the corrected job; else use a fresh --out)"
    )


def _record(
    job: _Job, problem: Problem, t: float, seed: int, result: dict[str, Any]
) -> dict[str, Any]:
    """One results line (key order as in the schema: id, ..., outputs, draws, ..., meta)."""
    record: dict[str, Any] = {
        "id": problem.id,
        "temperature": t,
        "job": job.fingerprint,
        "method": job.spec.method,
        "method_used": result["method_used"],
        "plan": result["plan"],
        "seed": seed,
        "num_outputs": job.spec.num_outputs,
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
    return record


def _run_shard(
    job: _Job,
    runner: Any,
    progress: _Progress,
    on_result: Callable[[dict[str, Any]], None] | None,
) -> tuple[int, int]:
    """Sample this rank's units in order, appending each record to its part file as it
    finishes; returns (units run, base draws spent)."""
    spec, ran, draws = job.spec, 0, 0
    name = part_name(spec.shard) if spec.shard else f"rank-{job.ctx.rank}.jsonl"
    with PartWriter(job.out, name) as writer:
        for pid, t in job.shard:
            problem = job.by_id[pid]
            seed = problem_seed(spec.seed, pid, t)
            try:
                result = runner(problem, t, seed)
            except ImplicitTemperatureError as exc:  # e.g. a draw budget overrun
                raise _unit_failed(job, problem, t, exc) from exc
            record = _record(job, problem, t, seed, result)
            writer.write(record)
            ran += 1
            draws += result["draws"]
            progress.step(1, result["draws"])
            if on_result is not None:
                on_result(record)
    return ran, draws


def _wait_for_ranks(ctx: DistContext, progress: _Progress) -> None:
    """The barrier after sampling, keeping rank 0's bar moving while the others finish."""
    work = ctx.barrier_async()
    while work is not None and not work.is_completed():
        progress.step(0, 0)
        time.sleep(0.2)
    if work is not None:
        work.wait()
        del work  # no handle on the wait group outlives the job
    progress.step(0, 0)


def _interrupted(job: _Job) -> JobInterrupted:
    """Ctrl-C/SIGTERM: how many results are on disk (the part file is closed) and how to resume."""
    saved_now = len(read_done(job.out, job.expect))
    saved = f"{saved_now} of {len(job.order)} results are saved in {job.out}"
    if job.ctx.distributed:
        saved = f"rank {job.ctx.rank} stopped; {saved} so far"
    return JobInterrupted(f"interrupted: {saved}; {_resume_hint(job.command)}")


def _sample(job: _Job, on_result: Callable[[dict[str, Any]], None] | None) -> tuple[int, int]:
    """Load the model, run this rank's shard and wait for every rank; (units run, draws)."""
    # the bar (and its view of the part files) starts before any rank can write a line
    progress = _Progress(
        job.spec.progress and job.ctx.rank == 0,
        len(job.pending),
        0,
        job.out,
        watch=job.ctx.distributed,
    )
    try:
        runner = job.ctx.agree(lambda: _setup_runner(job))
    except BaseException:
        progress.close()
        raise
    ran = draws = 0
    try:
        if job.shard:
            ran, draws = _run_shard(job, runner, progress, on_result)
        _wait_for_ranks(job.ctx, progress)
    except KeyboardInterrupt:
        progress.close()
        raise _interrupted(job) from None
    except OSError as exc:  # disk full, read-only or immutable file: what is on disk is kept
        progress.close()
        raise _write_failed(job.out, exc, job.command) from None
    progress.close()
    return ran, draws


def _merge(job: _Job) -> Path:
    """Rank 0 merges the parts into results.jsonl; every rank waits (and hears of a failure)."""

    def merge_on_rank_0() -> Path:
        if job.ctx.rank != 0:
            return job.out / "results.jsonl"
        try:
            return merge(job.out, job.order, job.expect)
        except OSError as exc:
            raise _write_failed(job.out, exc, job.command) from None

    return job.ctx.agree(merge_on_rank_0)


def _run(
    spec: JobSpec,
    ctx: DistContext,
    out: Path,
    lock: FolderLock,
    start: float,
    command: str | None,
    on_result: Callable[[dict[str, Any]], None] | None,
) -> JobSummary:
    job = _plan_job(spec, ctx, out, lock, command)
    ran, draws = _sample(job, on_result)
    counts = dict(units=len(job.order), already_done=len(job.done), ran=ran, draws=draws)
    if spec.shard is not None:
        logger.info(
            "shard %d of %d done; once every shard is done, run the job once without "
            "shard to merge",
            *spec.shard,
        )
        return JobSummary(
            out=out,
            results=None,
            seconds=time.perf_counter() - start,
            resumed=job.resumed,
            **counts,
        )
    results = _merge(job)
    seconds = time.perf_counter() - start
    if ctx.rank == 0:
        logger.info("wrote %s (%d lines) in %.1f s", results, len(job.order), seconds)
    return JobSummary(
        out=out,
        results=results,
        seconds=seconds,
        rank=ctx.rank,
        world_size=ctx.world_size,
        resumed=job.resumed,
        **counts,
    )


__all__ = ["MANIFEST", "JobError", "JobSummary", "run_job"]
