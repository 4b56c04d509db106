"""Built-in quantizers (exact, grid, codebook, classifier) and resolve_quantizer.

Unit tests pin the keys on hand-made inputs; the statistical tests run each quantizer as the key
of the real exact sampler on continuous samples whose cell law is known, and check the cells of
the outputs against P_cell^(1/T) / Z with a chi-square test at level ALPHA (conftest).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import ALPHA, chi_square_pvalue, tempered

import implicit_temperature as it
from implicit_temperature.plugins import get_quantizer, get_quantizers
from implicit_temperature.quantizers import (
    CallableQuantizer,
    ClassifierQuantizer,
    CodebookQuantizer,
    ExactQuantizer,
    GridQuantizer,
    Quantizer,
    QuantizerError,
    kmeans,
    resolve_quantizer,
)

CELL_P = torch.tensor([0.4, 0.25, 0.15, 0.1, 0.06, 0.04], dtype=torch.float64)


# -- registration ------------------------------------------------------------------------------
def test_builtin_quantizers_are_registered_through_the_hook():
    regs = get_quantizers()
    for name, cls in [
        ("exact", ExactQuantizer),
        ("grid", GridQuantizer),
        ("codebook", CodebookQuantizer),
        ("classifier", ClassifierQuantizer),
    ]:
        assert regs[name].obj is cls
        assert regs[name].plugin == "implicit_temperature.quantizers.plugin"
        assert regs[name].distribution == "implicit-temperature"
    assert isinstance(get_quantizer("grid", cell_size=2.0), GridQuantizer)


def test_quantizers_package_imports_no_adapter():
    """Dependencies point one way: quantizers use the plugins layer and the core, never adapters."""
    import ast
    import pathlib

    import implicit_temperature.quantizers as q

    for path in pathlib.Path(q.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                mod = ("." * node.level) + (node.module or "")
                assert "adapters" not in mod, (path.name, mod)
                if node.level >= 2:  # plugin level: may use the plugins layer and the core
                    assert mod.startswith(("..plugins", "..core")), (path.name, mod)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    root = alias.name.split(".")[0]
                    assert root in {"torch", "numpy", "inspect", "__future__"}, (path.name, root)


# -- exact -------------------------------------------------------------------------------------
def test_exact_integer_rows_kept_and_flattened():
    q = ExactQuantizer()
    x = torch.tensor([3, 1, 3], dtype=torch.int32)
    assert q(x).dtype == torch.long and q(x).tolist() == [3, 1, 3]
    img = torch.arange(24).reshape(3, 2, 4)
    keys = q(img)
    assert keys.shape == (3, 8) and torch.equal(keys, img.reshape(3, 8))
    assert q(np.array([[1, 2], [1, 2]])).tolist() == [[1, 2], [1, 2]]
    assert q(torch.tensor([True, False])).tolist() == [1, 0]


def test_exact_floats_compare_bitwise():
    q = ExactQuantizer()
    x = torch.tensor([0.1, 0.1, 0.1 + 1e-8, 0.0, -0.0], dtype=torch.float32)
    k = q(x)
    assert k[0] == k[1] and k[0] != k[2]
    assert k[3] != k[4], "0.0 and -0.0 differ bit-wise"
    x64 = torch.tensor([[0.5, 1.0], [0.5, 1.0]], dtype=torch.float64)
    assert torch.equal(q(x64)[0], q(x64)[1])
    assert torch.equal(q(torch.tensor([1.5], dtype=torch.float16)), torch.tensor([15872]))
    z = torch.tensor([1 + 2j, 1 + 2j, 1 - 2j])
    kz = q(z)
    assert kz.shape == (3, 2) and torch.equal(kz[0], kz[1]) and not torch.equal(kz[0], kz[2])
    with pytest.raises(QuantizerError, match="NaN"):
        q(torch.tensor([1.0, float("nan")]))


def test_exact_batched_and_errors():
    q = ExactQuantizer()
    x = torch.arange(2 * 5 * 3).reshape(2, 5, 3)
    assert torch.equal(q(x, batched=True), x)
    assert q(x[..., 0], batched=True).shape == (2, 5)
    assert ExactQuantizer(batched=True)(x).shape == (2, 5, 3)
    with pytest.raises(QuantizerError, match=r"\(B, n, \.\.\.\)"):
        q(torch.arange(4), batched=True)
    with pytest.raises(QuantizerError, match="scalar"):
        q(torch.tensor(3))
    with pytest.raises(QuantizerError, match="classifier"):
        q(["a", "b"])
    with pytest.raises(QuantizerError, match="True or False"):
        ExactQuantizer(batched="yes")


# -- grid --------------------------------------------------------------------------------------
def test_grid_cells_known_values():
    q = GridQuantizer(0.5)
    x = torch.tensor([-0.75, -0.5, -0.01, 0.0, 0.49, 0.5, 1.24])
    assert q(x).tolist() == [-2, -1, -1, 0, 0, 1, 2]
    shifted = GridQuantizer(cell_size=1.0, origin=0.25)
    assert shifted(torch.tensor([0.2, 0.25, 1.24, 1.25])).tolist() == [-1, 0, 0, 1]
    per_dim = GridQuantizer(cell_size=torch.tensor([1.0, 10.0]))
    assert per_dim(torch.tensor([[1.5, 15.0], [-0.5, 9.9]])).tolist() == [[1, 1], [-1, 0]]
    img = torch.rand(4, 3, 2, 2, generator=torch.Generator().manual_seed(0))
    assert GridQuantizer(0.1)(img).shape == (4, 12)
    batched = GridQuantizer(0.5, batched=True)(torch.stack([x, x + 1]))
    assert batched.shape == (2, 7) and torch.equal(batched[1], q(x + 1))
    assert torch.equal(GridQuantizer(0.5)(x.double()), q(x))


def test_grid_errors_name_the_fix():
    with pytest.raises(QuantizerError, match="cell_size must be > 0"):
        GridQuantizer(0.0)
    with pytest.raises(QuantizerError, match="finite"):
        GridQuantizer(float("inf"))
    with pytest.raises(QuantizerError, match="number or a tensor"):
        GridQuantizer("big")
    with pytest.raises(QuantizerError, match="non-finite"):
        GridQuantizer(1.0)(torch.tensor([1.0, float("inf")]))
    with pytest.raises(QuantizerError, match="too far"):
        GridQuantizer(1e-30)(torch.tensor([1e10], dtype=torch.float64))
    with pytest.raises(QuantizerError, match="shaped like one sample"):
        GridQuantizer(torch.tensor([1.0, 2.0, 3.0]))(torch.zeros(4, 2))
    with pytest.raises(QuantizerError, match="more dimensions than one sample"):
        GridQuantizer(torch.ones(4))(torch.zeros(4))


# -- codebook ----------------------------------------------------------------------------------
CENTERS = torch.tensor(
    [
        [0.0, 0.0, 0.0],
        [6.0, 0.0, 0.0],
        [0.0, 6.0, 0.0],
        [0.0, 0.0, 6.0],
        [6.0, 6.0, 0.0],
        [6.0, 0.0, 6.0],
    ]
)


def blob_draw(p: torch.Tensor, spread: float = 0.5):
    """Continuous 3-D samples: a cluster id ~ p, then its centre plus Gaussian noise."""

    def draw(m: int, generator: torch.Generator | None = None) -> torch.Tensor:
        ids = torch.multinomial(p.float(), m, replacement=True, generator=generator)
        noise = torch.randn(m, 3, generator=generator) * spread
        return CENTERS[ids] + noise

    return draw


def cluster_of(x: torch.Tensor) -> torch.Tensor:
    return torch.cdist(x.reshape(-1, 3), CENTERS).argmin(-1).reshape(x.shape[:-1])


def test_kmeans_recovers_separated_clusters():
    gen = torch.Generator().manual_seed(1)
    x = blob_draw(torch.full((6,), 1 / 6))(3000, generator=gen)
    centroids = kmeans(x, 6, iters=50, generator=torch.Generator().manual_seed(0))
    assert centroids.shape == (6, 3)
    # every true centre has a centroid within 0.1 of it (noise 0.5, 500 points per blob)
    assert torch.cdist(CENTERS, centroids).min(dim=1).values.max() < 0.1
    dup = kmeans(torch.ones(50, 2), 4, generator=torch.Generator().manual_seed(0))
    assert dup.shape == (1, 2), "fewer distinct points than codes: one code per distinct point"


def test_codebook_fit_then_keys_match_clusters():
    gen = torch.Generator().manual_seed(2)
    pilot = blob_draw(CELL_P)(2000, generator=gen)
    q = CodebookQuantizer(num_codes=6, iters=50, seed=0)
    with pytest.raises(QuantizerError, match=r"not fitted; call quantizer.fit\(pilot_samples\)"):
        q(pilot)
    assert q.fit(pilot) is q and q.fitted and q.codebook.shape == (6, 3)
    fresh = blob_draw(CELL_P)(1000, generator=gen)
    keys, truth = q(fresh), cluster_of(fresh)
    assert keys.dtype == torch.long and keys.shape == (1000,)
    # keys and true clusters determine each other (a bijection between codes and clusters)
    pairs = torch.unique(torch.stack([keys, truth], 1), dim=0)
    assert len(pairs) == 6 and len(pairs[:, 0].unique()) == 6
    # a sample's key does not depend on the other samples in the call, and the seed fixes the fit
    assert torch.equal(q(fresh[:7]), keys[:7])
    assert torch.equal(CodebookQuantizer(6, iters=50, seed=0).fit(pilot).codebook, q.codebook)
    batched = q(torch.stack([fresh[:10], fresh[10:20]]), batched=True)
    assert batched.shape == (2, 10) and torch.equal(batched.reshape(-1), keys[:20])


def test_codebook_errors():
    with pytest.raises(QuantizerError, match="num_codes must be an int >= 1"):
        CodebookQuantizer(num_codes=0)
    with pytest.raises(QuantizerError, match="iters"):
        CodebookQuantizer(iters=-1)
    with pytest.raises(QuantizerError, match="at least num_codes samples"):
        CodebookQuantizer(num_codes=10).fit(torch.randn(5, 2))
    q = CodebookQuantizer(num_codes=2).fit(torch.randn(40, 2))
    with pytest.raises(QuantizerError, match=r"fitted on samples of shape \(2,\)"):
        q(torch.randn(3, 4))
    with pytest.raises(QuantizerError, match="NaN"):
        CodebookQuantizer(num_codes=1).fit(torch.tensor([[float("nan")]]))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_codebook_refuses_non_finite_samples_like_grid_and_exact(bad):
    """NaN is at no distance from any code: it used to get code 0 silently."""
    pilot = torch.randn(40, 2, generator=torch.Generator().manual_seed(0))
    q = CodebookQuantizer(num_codes=2).fit(pilot)
    with pytest.raises(QuantizerError, match="NaN or infinite"):
        q(torch.tensor([[0.0, 0.0], [bad, 1.0]]))
    with pytest.raises(QuantizerError, match="NaN or infinite"):
        q(torch.tensor([[[0.0, 0.0], [bad, 1.0]]]), batched=True)


# -- classifier --------------------------------------------------------------------------------
def test_classifier_checks_labels():
    q = ClassifierQuantizer(lambda s: (torch.as_tensor(s) > 0).long())
    assert q(torch.tensor([-1.0, 2.0])).tolist() == [0, 1]
    assert q(torch.tensor([[-1.0], [2.0]])).shape == (2, 1)
    # bool and numpy integer labels are integers; Python lists of objects go to fn unchanged
    positive = ClassifierQuantizer(lambda s: torch.as_tensor(s) > 0)
    assert positive(torch.tensor([1.0])).tolist() == [1]
    words = ClassifierQuantizer(lambda s: np.array([len(w) for w in s]))
    assert words(["a", "bcd"]).tolist() == [1, 3]
    with pytest.raises(QuantizerError, match=r"dtype torch.float32; keys must be integers"):
        ClassifierQuantizer(lambda s: s * 1.0)(torch.ones(3))
    with pytest.raises(QuantizerError, match=r"shape \(2,\) for 3 samples.*\(3,\) or \(3, d\)"):
        ClassifierQuantizer(lambda s: torch.zeros(2, dtype=torch.long))(torch.ones(3))
    with pytest.raises(QuantizerError, match=r"shape \(3, 1, 1\)"):
        ClassifierQuantizer(lambda s: torch.zeros(3, 1, 1, dtype=torch.long))(torch.ones(3))
    with pytest.raises(QuantizerError, match="got list"):
        ClassifierQuantizer(lambda s: [0, 1, 2])(torch.ones(3))
    with pytest.raises(QuantizerError, match="callable"):
        ClassifierQuantizer(3)
    with pytest.raises(QuantizerError, match="batch_size"):
        ClassifierQuantizer(len, batch_size=0)


def test_classifier_batch_size_and_batched():
    calls = []

    def fn(s):
        calls.append(len(s))
        return torch.as_tensor(s).long() % 3

    x = torch.arange(10)
    q = ClassifierQuantizer(fn, batch_size=4)
    assert torch.equal(q(x), x % 3) and calls == [4, 4, 2]
    calls.clear()
    out = ClassifierQuantizer(fn, batched=True)(x.reshape(2, 5))
    assert calls == [10] and torch.equal(out, (x % 3).reshape(2, 5))


# -- resolve_quantizer -------------------------------------------------------------------------
def test_resolve_names_objects_and_callables():
    assert isinstance(resolve_quantizer("exact"), ExactQuantizer)
    assert isinstance(resolve_quantizer(None), ExactQuantizer)
    g = resolve_quantizer("grid", cell_size=0.25, origin=0.1)
    assert isinstance(g, GridQuantizer) and g(torch.tensor([0.1, 0.36])).tolist() == [0, 1]
    assert resolve_quantizer("codebook", num_codes=3).num_codes == 3
    assert isinstance(resolve_quantizer("classifier", fn=len), ClassifierQuantizer)
    assert resolve_quantizer(g) is g
    assert isinstance(resolve_quantizer(GridQuantizer, cell_size=1.0), GridQuantizer)
    fn = resolve_quantizer(lambda s: torch.as_tensor(s).long())
    assert isinstance(fn, CallableQuantizer) and isinstance(fn, Quantizer)
    assert fn(torch.tensor([[1, 2], [3, 4]]), batched=True).shape == (2, 2)

    class Learned:  # a quantizer object from elsewhere, with its own fit
        fitted = False

        def fit(self, samples):
            self.fitted = True
            return self

        def __call__(self, samples):
            return torch.zeros(len(samples), dtype=torch.long)

    wrapped = resolve_quantizer(Learned())
    assert not wrapped.fitted
    wrapped.fit(torch.zeros(3))
    assert wrapped.fitted and wrapped(torch.zeros(3)).tolist() == [0, 0, 0]
    assert not hasattr(resolve_quantizer(len), "fit")


def test_resolve_errors_name_the_fix():
    with pytest.raises(QuantizerError, match=r"unknown quantizer 'nope'.*codebook, exact.*grid"):
        resolve_quantizer("nope")
    with pytest.raises(QuantizerError, match=r"does not accept option\(s\) cellsize.*cell_size"):
        resolve_quantizer("grid", cellsize=1.0)
    with pytest.raises(QuantizerError, match="cannot be applied to an existing"):
        resolve_quantizer(ExactQuantizer(), batched=True)
    with pytest.raises(QuantizerError, match="registered name, a Quantizer object or a callable"):
        resolve_quantizer(3.5)
    with pytest.raises(QuantizerError, match="registered name"):
        resolve_quantizer(dict)
    floats = resolve_quantizer(lambda s: torch.as_tensor(s, dtype=torch.float32))
    with pytest.raises(QuantizerError, match=r"keys must be integers.*\.long\(\)"):
        floats(torch.ones(4))
    short = resolve_quantizer(lambda s: torch.zeros(1, dtype=torch.long))
    with pytest.raises(QuantizerError, match=r"one label per sample: shape \(4,\) or \(4, d\)"):
        short(torch.ones(4))


# -- with the real sampler: temperature acts on the cells --------------------------------------
def jittered_faces(p: torch.Tensor):
    """Continuous 2-D samples whose grid cell (cell_size 1) is (face, 0), face ~ p."""

    def draw(m: int, generator: torch.Generator | None = None) -> torch.Tensor:
        faces = torch.multinomial(p.float(), m, replacement=True, generator=generator)
        return torch.stack(
            [
                faces + 0.9 * torch.rand(m, generator=generator),
                0.9 * torch.rand(m, generator=generator),
            ],
            dim=1,
        )

    return draw


def test_grid_quantizer_gives_exact_cell_temperature():
    t, n = 0.5, 3000
    key = resolve_quantizer("grid", cell_size=1)
    res = it.temperature_sample(jittered_faces(CELL_P), t, key=key, num_outputs=n, generator=0)
    faces = res.samples[:, 0].floor().long()
    pvalue = chi_square_pvalue(faces, tempered(CELL_P, t))
    assert pvalue > ALPHA, pvalue
    assert chi_square_pvalue(faces, CELL_P) < 1e-12, "the test must be able to tell T=0.5 from T=1"
    assert (res.samples.frac() != 0).all(), "outputs are the model's continuous samples"


def test_batched_grid_quantizer_with_batched_sampler():
    t, n = 0.5, 2000
    probs = torch.stack([CELL_P, CELL_P.flip(0)])

    def draw(m: int, generator: torch.Generator | None = None) -> torch.Tensor:
        faces = torch.multinomial(probs.float(), m, replacement=True, generator=generator)
        return (faces + 0.9 * torch.rand(2, m, generator=generator)).unsqueeze(-1)  # (2, m, 1)

    key = resolve_quantizer("grid", cell_size=1.0, batched=True)
    res = it.temperature_sample(draw, t, key=key, batched=True, num_outputs=n, generator=1)
    assert res.samples.shape == (2, n, 1)
    for b in range(2):
        faces = res.samples[b, :, 0].floor().long()
        pvalue = chi_square_pvalue(faces, tempered(probs[b], t))
        assert pvalue > ALPHA, (b, pvalue)


def test_codebook_quantizer_gives_exact_cluster_temperature():
    t, n = 0.5, 3000
    draw = blob_draw(CELL_P)
    q = resolve_quantizer("codebook", num_codes=6, iters=50)
    q.fit(draw(3000, generator=torch.Generator().manual_seed(5)))
    res = it.temperature_sample(draw, t, key=q, num_outputs=n, generator=3)
    clusters = cluster_of(res.samples)
    pvalue = chi_square_pvalue(clusters, tempered(CELL_P, t))
    assert pvalue > ALPHA, pvalue
    assert chi_square_pvalue(clusters, CELL_P) < 1e-12


def test_classifier_quantizer_gives_exact_label_temperature():
    # label = face parity of jittered faces: P(even) = .4 + .15 + .06 = .61
    t, n = 0.5, 3000
    q = resolve_quantizer("classifier", fn=lambda s: s[:, 0].floor().long() % 2)
    res = it.temperature_sample(jittered_faces(CELL_P), t, key=q, num_outputs=n, generator=4)
    parity = res.samples[:, 0].floor().long() % 2
    p_parity = torch.tensor([0.61, 0.39], dtype=torch.float64)
    pvalue = chi_square_pvalue(parity, tempered(p_parity, t))
    assert pvalue > ALPHA, pvalue
    assert chi_square_pvalue(parity, p_parity) < 1e-6
