"""Property tests of the job folder (``implicit_temperature.jobs.store``): whatever way finished
units are spread over part files (any ranks, any order, duplicates from a rerun, a torn last line
in any file), repair + merge give exactly the finished units' lines in job order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from implicit_temperature.jobs import JobCorruptError, JobError
from implicit_temperature.jobs.store import PARTS, merge, read_done, repair_parts


def line(pid: str, t: float) -> str:
    return json.dumps({"id": pid, "temperature": t, "outputs": [pid * 2], "draws": 3}) + "\n"


JOB = [(f"p{i}", t) for i in range(6) for t in (0.5, 2.0)]
KNOWN = {key: i for i, key in enumerate(JOB)}


@st.composite
def folders(draw):
    """Each unit is unfinished or lands in one of up to 4 part files (some twice, as after a
    rerun), files are written in a random order, and any file may end with a torn (newline-less)
    prefix of a line of an unfinished unit (its write was cut)."""
    n_files = draw(st.integers(1, 4))
    complete = draw(st.booleans())  # half the folders hold every unit (then merge succeeds)
    top = n_files - 1 if complete else n_files
    placement = draw(st.lists(st.integers(0, top), min_size=len(JOB), max_size=len(JOB)))
    finished = [u for u, f in enumerate(placement) if f < n_files]
    duplicated = draw(st.sets(st.sampled_from(finished), max_size=3)) if finished else set()
    files: list[list[str]] = [[] for _ in range(n_files)]
    for unit in finished:
        files[placement[unit]].append(line(*JOB[unit]))
    for unit in duplicated:
        files[draw(st.integers(0, n_files - 1))].append(line(*JOB[unit]))
    for lines in files:
        perm = draw(st.permutations(range(len(lines))))
        lines[:] = [lines[i] for i in perm]
    unfinished = [u for u, f in enumerate(placement) if f == n_files] or [0]
    torn = [(draw(st.sampled_from(unfinished)), draw(st.integers(0, 60))) for _ in files]
    return files, torn, {JOB[u] for u in finished}


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(folders())
def test_repair_and_merge_give_the_units_in_job_order(tmp_path_factory, folder):
    files, torn, finished = folder
    out = Path(tmp_path_factory.mktemp("job"))
    (out / PARTS).mkdir()
    cut_lines = 0
    for r, (lines, (unit, cut)) in enumerate(zip(files, torn, strict=True)):
        tail = line(*JOB[unit])[:cut]  # a full line minus at least its newline
        cut_lines += bool(tail)
        (out / PARTS / f"rank-{r}.jsonl").write_text("".join(lines) + tail)
    done = read_done(out, KNOWN)
    assert set(done) == finished, "a torn tail is never counted as done"
    assert all(done[key] == line(*key) for key in finished)
    assert len(repair_parts(out)) == cut_lines
    assert all(
        p.read_bytes().endswith(b"\n") or not p.read_bytes() for p in (out / PARTS).iterdir()
    )
    assert set(read_done(out, KNOWN)) == finished
    if finished != set(JOB):
        with pytest.raises(JobError, match="has no result yet"):
            merge(out, JOB, KNOWN)
        return
    result = merge(out, JOB, KNOWN)
    assert result.read_text() == "".join(line(*key) for key in JOB)
    assert not (out / PARTS).exists()
    assert merge(out, JOB, KNOWN).read_text() == result.read_text(), "merge is idempotent"


def test_a_damaged_complete_line_is_refused_not_repaired(tmp_path):
    (tmp_path / PARTS).mkdir()
    part = tmp_path / PARTS / "rank-0.jsonl"
    part.write_text(line("p0", 0.5) + '{"id": "p1", "temperat\n' + line("p2", 0.5))
    assert repair_parts(tmp_path) == []
    with pytest.raises(JobCorruptError, match="rank-0.jsonl:2 is not a result line"):
        read_done(tmp_path, KNOWN)


FP = "0123456789abcdef"
SEED = 11


def job_line(pid: str, t: float, **changes) -> str:
    from implicit_temperature.jobs import problem_seed

    rec = {"id": pid, "temperature": t, "job": FP, "seed": problem_seed(SEED, pid, t)}
    rec.update(outputs=[pid], draws=3)
    rec.update(changes)
    return json.dumps(rec) + "\n"


MUTATIONS = {
    "job": {"job": "fedcba9876543210"},  # copied from another job
    "seed": {"seed": 1},  # another seed
    "temperature": {"temperature": "0.5"},  # a string
    "outputs": {"outputs": ["edited"]},  # same unit, other content (a conflicting duplicate)
}


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(st.sampled_from(range(len(JOB))), min_size=1, max_size=12, unique=True),
    st.one_of(st.none(), st.sampled_from(sorted(MUTATIONS))),
    st.integers(0, 11),
)
def test_a_line_that_is_not_this_jobs_is_always_refused(tmp_path_factory, units, mutation, at):
    """Any set of finished units reads back; one line copied from another job, with another
    seed, a string temperature, or contradicting a copy of its unit, is refused wherever it is."""
    from implicit_temperature.jobs.store import Expected

    out = Path(tmp_path_factory.mktemp("job"))
    (out / PARTS).mkdir()
    lines = [job_line(*JOB[u]) for u in units]
    if mutation is not None:
        pid, t = JOB[units[at % len(units)]]
        bad = job_line(pid, t, **MUTATIONS[mutation])
        if mutation == "outputs":
            lines.insert(at % (len(lines) + 1), bad)  # beside the original line
        else:
            lines[at % len(lines)] = bad
    (out / PARTS / "rank-0.jsonl").write_text("".join(lines))
    expect = Expected(KNOWN, FP, SEED)
    if mutation is None:
        assert set(read_done(out, expect)) == {JOB[u] for u in units}
    else:
        with pytest.raises(JobCorruptError):
            read_done(out, expect)
