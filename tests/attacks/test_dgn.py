"""DGN generators (robust.attacks.dgn): architectures, losses, clipping, training, generation."""

from __future__ import annotations

import hypothesis.strategies as st
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings

from robust.attacks import dgn
from robust.attacks.dgn._losses import LossContext, pre_activations
from robust.errors import ConfigError, DataError


def _latent(arch: str, shape: tuple[int, int, int]) -> tuple[int, ...]:
    net = dgn.build(arch, shape).eval()
    with torch.no_grad():
        return tuple(net.encoder(torch.zeros(1, *shape)).shape[1:])


@pytest.mark.parametrize(
    ("arch", "shape", "latent"),
    [
        ("mnist", (1, 28, 28), (128, 3, 3)),  # notes §2: 28 → 14 → 7 → 5 → 3 (SAME pool)
        ("cifar", (3, 32, 32), (128, 5, 5)),  # 32 → 30 → 14 → 12 → 5
        ("digits", (1, 8, 8), (64, 2, 2)),
    ],
)
def test_seed_architectures_have_the_seed_shapes(arch, shape, latent):
    assert _latent(arch, shape) == latent
    net = dgn.build(arch, shape)
    out = net(torch.rand(4, *shape))
    assert out.shape == (4, *shape) and out.min() >= 0 and out.max() <= 1


def test_cifar_decoder_swaps_kernel_and_stride_as_the_seed_code():
    deconvs = [m for m in dgn.build("cifar", (3, 32, 32)).decoder.modules()]
    deconvs = [m for m in deconvs if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [(m.kernel_size[0], m.stride[0]) for m in deconvs] == [(3, 2), (4, 1), (4, 2), (3, 1)]
    bns = [
        m for m in dgn.build("cifar", (3, 32, 32)).modules() if isinstance(m, torch.nn.BatchNorm2d)
    ]
    assert len(bns) == 3 and all(b.momentum == 0.01 and b.eps == 1e-3 for b in bns)


@settings(max_examples=15, deadline=None)
@given(c=st.sampled_from([1, 3]), h=st.integers(3, 70), w=st.integers(3, 70))
def test_fitting_architecture_reproduces_any_input_size(c, h, w):
    net = dgn.build("fitting", (c, h, w))
    assert net(torch.rand(2, c, h, w)).shape == (2, c, h, w)


def test_auto_architecture_and_size_errors():
    assert dgn.auto_architecture((1, 28, 28)) == "mnist"
    assert dgn.auto_architecture((3, 32, 32)) == "cifar"
    assert dgn.auto_architecture((1, 8, 8)) == "digits"
    assert dgn.auto_architecture((3, 48, 48)) == "fitting"
    with pytest.raises(ConfigError, match="needs 28x28 inputs"):
        dgn.build("mnist", (1, 32, 32))
    with pytest.raises(ConfigError, match="architecture must be one of"):
        dgn.build("resnet", (1, 8, 8))


@settings(max_examples=40, deadline=None)
@given(
    eps=st.floats(0.001, 1.0),
    seed=st.integers(0, 2**16),
)
def test_eps_clip_is_within_budget_in_range_and_keeps_the_sign(eps, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(3, 1, 5, 5, generator=g)
    x_gen = torch.rand(3, 1, 5, 5, generator=g)
    out = dgn.eps_clip(x, x_gen, eps)
    assert (out - x).abs().max() <= eps + 1e-6
    assert out.min() >= 0 and out.max() <= 1
    # Eq. 4.8: the perturbation keeps its sign; inside the budget it is untouched
    assert torch.all(torch.sign(out - x) * torch.sign(x_gen - x) >= 0)
    inside = (x_gen - x).abs() <= eps
    assert torch.allclose(out[inside], x_gen[inside])


# ---- losses -------------------------------------------------------------------------------


def test_lrp_loss_is_eq_4_1(trained):
    x = torch.rand(5, 1, 8, 8)
    x_gen = torch.rand(5, 1, 8, 8)
    relevant = torch.tensor([3, 10, 63])
    ctx = LossContext(trained, 2, 0.3, {"relevant": relevant})
    got = dgn.LOSSES["lrp"].fn(x, x_gen, ctx, alpha=0.25)
    flat, gen = x.flatten(1), x_gen.flatten(1)
    rest = torch.tensor([i for i in range(64) if i not in (3, 10, 63)])
    want = (
        0.25 * ((flat[:, relevant] - 0.3 - gen[:, relevant]) ** 2).mean()
        + 0.75 * ((flat[:, rest] + 0.3 - gen[:, rest]) ** 2).mean()
    )
    assert got.item() == pytest.approx(want.item(), rel=1e-6)


def test_nce_loss_is_eq_4_2(trained):
    x, x_gen = torch.rand(6, 1, 8, 8), torch.rand(6, 1, 8, 8)
    ctx = LossContext(trained, 4, 0.3)
    got = dgn.LOSSES["nce"].fn(x, x_gen, ctx, alpha=2.0, beta=0.5, p_min=0.0)  # the seed's
    ce = F.cross_entropy(trained(x_gen), torch.full((6,), 4))
    assert got.item() == pytest.approx((2.0 * ((x - x_gen) ** 2).mean() - 0.5 * ce).item(), 1e-6)


def test_susp_loss_is_eq_4_6_with_dense_and_conv_terms(trained):
    x, x_gen = torch.rand(4, 1, 8, 8), torch.rand(4, 1, 8, 8)
    sets = {"conv1": torch.tensor([0, 5]), "conv2": torch.tensor([1]), "fc1": torch.tensor([7])}
    ctx = LossContext(trained, 1, 0.3, {"suspicious": sets})
    got = dgn.LOSSES["susp"].fn(x, x_gen, ctx, alpha=0.6, lam=0.3, gamma=0.2)
    with torch.no_grad():
        za, zb = pre_activations(trained, x, sets), pre_activations(trained, x_gen, sets)

    def term(d, s):
        n = torch.tensor([i for i in range(d.shape[1]) if i not in s.tolist()])
        return 0.3 * d[:, s].mean() + 0.2 * d[:, n].abs().mean()

    want = sum(term((za[k] - zb[k]).mean((2, 3)), sets[k]) for k in ("conv1", "conv2"))
    want = want + term(za["fc1"] - zb["fc1"], sets["fc1"])
    want = 0.6 * want + 0.4 * ((x - x_gen) ** 2).mean()
    assert got.item() == pytest.approx(want.item(), rel=1e-5)
    assert za["conv1"].shape == (4, 16, 8, 8) and za["fc1"].shape == (4, 64)


def test_a_custom_loss_registers_in_a_few_lines_and_trains(trained, digits):
    @dgn.register_loss("brighten_test")
    def brighten(x, x_gen, ctx, *, alpha=1.0):
        return alpha * F.mse_loss(x_gen, (x + ctx.eps).clamp(0, 1))

    try:
        spec = dgn.LOSSES["brighten_test"]
        assert spec.weights == {"alpha": 1.0} and spec.needs == ()
        x, y = digits.train.x[:60], digits.train.y[:60]
        gens = dgn.train(trained, x, y, "brighten_test", eps=0.2, epochs=1, progress=False)
        assert gens.spec["loss"] == "brighten_test" and gens.spec["weights"] == {"alpha": 1.0}
        with pytest.raises(ConfigError, match="takes the weights alpha, but got beta"):
            dgn.train(trained, x, y, "brighten_test", eps=0.2, beta=2.0, progress=False)
    finally:
        del dgn.LOSSES["brighten_test"]


def test_register_loss_rejects_bad_signatures_and_needs():
    with pytest.raises(ConfigError, match="fn\\(x, x_gen, ctx, \\*, weight=default"):
        dgn.register_loss("bad")(lambda x, x_gen: x)
    with pytest.raises(ConfigError, match="needs must name properties"):
        dgn.register_loss("bad", needs=("gradients",))
    assert "bad" not in dgn.LOSSES


# ---- training and generation --------------------------------------------------------------


@pytest.fixture(scope="module")
def small(digits):
    """60 training inputs of classes 0..9 (6 each at least) for quick training."""
    keep = torch.cat([torch.nonzero(digits.train.y == c)[:8, 0] for c in range(10)])
    return digits.train.x[keep], digits.train.y[keep]


@pytest.fixture(scope="module")
def gens(trained, small):
    return dgn.train(trained, *small, "nce", eps=0.3, epochs=2, batch_size=16, progress=False)


def test_training_leaves_the_target_untouched_and_is_seeded(trained, small, gens):
    before = {k: v.clone() for k, v in trained.state_dict().items()}
    grads = [None if p.grad is None else p.grad.clone() for p in trained.parameters()]
    trained.train()
    try:
        again = dgn.train(trained, *small, "nce", eps=0.3, epochs=2, batch_size=16, progress=False)
        assert trained.training
    finally:
        trained.eval()
    for p, g in zip(trained.parameters(), grads, strict=True):  # no gradient leaks in
        assert (p.grad is None and g is None) or torch.equal(p.grad, g)
    assert all(torch.equal(before[k], v) for k, v in trained.state_dict().items())
    for a, b in zip(gens.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert gens.classes == tuple(range(10))
    assert all(len(h) == 2 for h in gens.history.values())


def test_generate_routes_by_label_through_each_class_generator(gens, digits):
    x, y = digits.test.x[:50], digits.test.y[:50]
    x_before = x.clone()
    out = gens.generate(x, y, batch_size=7)
    assert torch.equal(x, x_before)
    with torch.no_grad():
        for i in (0, 13, 49):
            want = dgn.eps_clip(x[i : i + 1], gens(x[i : i + 1], int(y[i])), 0.3)
            assert torch.allclose(out[i : i + 1], want, atol=1e-6)
    assert (out - x).abs().max() <= 0.3 + 1e-6 and out.min() >= 0 and out.max() <= 1
    assert torch.allclose(out, gens.generate(x, y, batch_size=1024), atol=1e-6)


def test_generate_by_prediction_needs_the_model_and_no_labels(gens, trained, digits):
    x = digits.test.x[:40]
    pred = trained(x).argmax(1)
    assert torch.allclose(
        gens.generate(x, model=trained, route="prediction"), gens.generate(x, pred), atol=1e-6
    )
    with pytest.raises(ConfigError, match='route="prediction" needs the target model'):
        gens.generate(x, route="prediction")
    with pytest.raises(ConfigError, match="y \\(the true labels\\) is required"):
        gens.generate(x)
    with pytest.raises(ConfigError, match="route must be one of label, prediction"):
        gens.generate(x, pred, route="random")


def test_inputs_routed_to_a_class_without_generator_are_refused(trained, small, digits):
    x, y = small
    keep = y < 3
    three = dgn.train(trained, x[keep], y[keep], "nce", eps=0.3, epochs=1, progress=False)
    assert three.classes == (0, 1, 2)
    with pytest.raises(ConfigError, match="every input must route to a class with a generator"):
        three.generate(digits.test.x[:30], digits.test.y[:30])


def test_training_refuses_classes_without_inputs(trained, small):
    x, y = small
    with pytest.raises(DataError, match="classes \\[5\\] have none"):
        dgn.train(trained, x[y != 5], y[y != 5], "nce", eps=0.3, classes=range(10))


def test_save_and_load_round_trip_without_pickle(gens, digits, tmp_path, monkeypatch):
    dgn.save(gens, tmp_path)

    def forbidden(*_a, **_k):
        raise AssertionError("pickle must not be used")

    monkeypatch.setattr(torch, "load", forbidden)
    loaded = dgn.load(tmp_path)
    x, y = digits.test.x[:64], digits.test.y[:64]
    assert torch.equal(loaded.generate(x, y), gens.generate(x, y))
    assert loaded.spec == gens.spec and loaded.history == gens.history
    with pytest.raises(DataError, match="must hold saved DGN generators"):
        dgn.load(tmp_path / "missing")


@pytest.mark.parametrize("loss", ["lrp", "susp"])
def test_each_class_gets_its_own_properties(trained, small, loss):
    x, y = small
    gens = dgn.train(trained, x, y, loss, eps=0.3, epochs=1, progress=False, k=8)
    key = "relevant" if loss == "lrp" else "suspicious"
    props = [gens.properties[c][key] for c in range(10)]
    flat = [p if loss == "lrp" else torch.cat(list(p.values())) for p in props]
    assert len({tuple(f.tolist()) for f in flat}) > 1  # the seed gave all ten class 9's set
    if loss == "lrp":
        assert all(len(f) == 8 for f in flat)
    else:  # k dense neurons in total, k maps per conv layer (capped at its maps)
        assert all(len(p["fc1"]) == 8 and len(p["conv1"]) == 8 for p in props)


def test_grouped_training_equals_training_each_class_alone(trained, small):
    """All classes at once (grouped convolutions) = one class at a time (equal class sizes)."""
    from robust.attacks.dgn._generators import _train_all
    from robust.attacks.dgn._losses import get_loss

    x, y = small
    spec = get_loss("nce")
    ctxs = [LossContext(trained, c, 0.3) for c in range(10)]
    common = {"epochs": 2, "lr": 1e-3, "batch_size": 5, "seed": 3, "on_epoch": None}
    bar = type("Bar", (), {"update": lambda *a: None, "set_postfix": lambda *a, **k: None})()
    nets, hist = _train_all(
        "digits", x, y, ctxs, spec.fn, {}, torch.device("cpu"), bar=bar, **common
    )
    for c in (0, 7):
        alone, alone_hist = _train_all(
            "digits", x, y, [ctxs[c]], spec.fn, {}, torch.device("cpu"), bar=bar, **common
        )
        assert hist[c] == pytest.approx(alone_hist[c], rel=1e-4)
        for a, b in zip(
            nets[c].state_dict().values(), alone[c].state_dict().values(), strict=True
        ):
            assert torch.allclose(a.float(), b.float(), atol=1e-5)


def test_spectra_of_a_net_equal_a_direct_count(trained, digits):
    """Hit spectra through hooks, in chunks, equal counting each input's activations by hand."""
    from robust.attacks.dgn._properties import _spectra, hidden_layers
    from robust.models import activations

    x, y = digits.val.x[:45], digits.val.y[:45]
    layers = hidden_layers(trained)
    assert layers == {"conv1": "conv", "conv2": "conv", "fc1": "dense"}
    got = _spectra(trained, x, y, list(layers), threshold=0.0, batch_size=16)
    correct = (trained(x).argmax(1) == y).tolist()
    for name in layers:
        acts = activations(trained, x, name).tolist()  # N lists of units, flattened
        expect = {k: [0] * len(acts[0]) for k in ("ncs", "nus", "ncf", "nuf")}
        for row, ok in zip(acts, correct, strict=True):
            for u, value in enumerate(row):
                expect[("nc" if value > 0 else "nu") + ("s" if ok else "f")][u] += 1
        for key, want in expect.items():
            assert getattr(got[name], key).flatten().tolist() == want


def test_a_class_generator_depends_on_that_class_s_inputs_only(trained, small):
    """Each class's generator sees only its own class's inputs: replacing every other class's
    inputs by noise leaves it as it was, while the generators of those classes change; each
    epoch's mean loss reaches ``on_epoch`` as it is recorded in the history."""
    x, y = small
    calls = []
    common = {"eps": 0.3, "epochs": 2, "batch_size": 8, "progress": False}
    gens = dgn.train(trained, x, y, "nce", **common, on_epoch=lambda *a: calls.append(a))
    noisy = torch.where((y == 3).view(-1, 1, 1, 1), x, torch.rand_like(x))
    other = dgn.train(trained, noisy, y, "nce", **common)
    for name, value in gens.nets["3"].state_dict().items():
        torch.testing.assert_close(other.nets["3"].state_dict()[name], value, rtol=0, atol=1e-6)
    for c in (0, 9):
        a, b = gens.nets[str(c)].state_dict(), other.nets[str(c)].state_dict()
        assert not all(torch.allclose(a[k].float(), b[k].float(), atol=1e-4) for k in a)
    assert sorted(calls) == sorted(
        (c, epoch, loss) for c, h in gens.history.items() for epoch, loss in enumerate(h, 1)
    )
    assert len(calls) == 10 * 2


def test_init_continues_from_given_generators(trained, small, gens):
    """With ``init`` training starts from those weights (a tiny learning rate keeps them), not
    from the seed's fresh ones; generators of another architecture or lacking a class are
    refused."""
    x, y = small
    common = {"eps": 0.3, "epochs": 1, "lr": 1e-9, "seed": 1, "progress": False}
    cont = dgn.train(trained, x, y, "nce", **common, classes=[0, 6], init=gens)
    fresh = dgn.train(trained, x, y, "nce", **common, classes=[0, 6])
    for c in ("0", "6"):
        given = dict(gens.nets[c].named_parameters())
        for name, p in cont.nets[c].named_parameters():
            torch.testing.assert_close(p, given[name], rtol=0, atol=1e-6, msg=name)
        assert not all(
            torch.allclose(p, given[name], atol=1e-2)
            for name, p in fresh.nets[c].named_parameters()
        )
    with pytest.raises(ConfigError, match=r"^init must hold fitting generators for inputs"):
        dgn.train(trained, x, y, "nce", **common, architecture="fitting", init=gens)
    one = dgn.train(trained, x, y, "nce", **common, classes=[0])
    with pytest.raises(ConfigError, match=r"holds digits generators .* without classes \[6\]$"):
        dgn.train(trained, x, y, "nce", **common, classes=[0, 6], init=one)


def test_a_loss_that_turns_non_finite_stops_training(trained, small):
    @dgn.register_loss("nan_test")
    def nan_loss(x, x_gen, ctx, *, alpha=1.0):
        return alpha * (x_gen.mean() * 0 + float("nan"))

    try:
        with pytest.raises(DataError, match=r"^the DGN loss must stay finite, but class 0's"):
            dgn.train(trained, *small, "nan_test", eps=0.3, epochs=1, progress=False)
    finally:
        del dgn.LOSSES["nan_test"]


def test_save_and_load_keep_every_class_s_properties(tmp_path):
    """Relevant inputs and per-layer suspicious units survive save/load, class by class, with
    the budget, the classes and each class's loss history (as Python numbers again)."""
    nets = {c: dgn.build("digits", (1, 8, 8)) for c in (0, 3)}
    properties = {
        0: {"relevant": torch.tensor([5, 1, 63])},
        3: {
            "relevant": torch.tensor([7]),
            "suspicious": {"conv1": torch.tensor([2, 0]), "fc1": torch.tensor([9, 4, 11])},
        },
    }
    spec = {"architecture": "digits", "input_shape": [1, 8, 8], "loss": "susp", "k": 3}
    history = {0: [1.5, 0.25], 3: [2.0, 1.0]}
    gens = dgn.Generators(nets, eps=0.2, spec=spec, properties=properties, history=history)
    gens.eval()  # load returns them in eval mode (batch-norm statistics, not the batch's)
    loaded = dgn.load(dgn.save(gens, tmp_path / "gens"))
    assert loaded.classes == (0, 3) and loaded.eps == 0.2
    assert loaded.spec == spec and loaded.history == history
    assert loaded.properties.keys() == {0, 3}
    assert loaded.properties[0].keys() == {"relevant"}
    assert torch.equal(loaded.properties[0]["relevant"], properties[0]["relevant"])
    assert torch.equal(loaded.properties[3]["relevant"], properties[3]["relevant"])
    susp = loaded.properties[3]["suspicious"]
    assert susp.keys() == {"conv1", "fc1"}
    assert all(torch.equal(susp[k], properties[3]["suspicious"][k]) for k in susp)
    x = torch.rand(6, 1, 8, 8)
    for c in (0, 3):
        assert torch.equal(loaded(x, c), gens(x, c))


def test_load_refuses_another_format_version(gens, tmp_path):
    import json

    path = dgn.save(gens, tmp_path)
    spec = json.loads((path / "generators.json").read_text())
    assert spec["format_version"] == 1
    (path / "generators.json").write_text(json.dumps(spec | {"format_version": 2}))
    with pytest.raises(DataError, match=r"^generators must have format_version 1, but got 2 in"):
        dgn.load(path)


@pytest.fixture(scope="module")
def mislabelled(digits):
    """120 digits, every third one relabelled: each class has failing inputs (wrong labels)."""
    x, y = digits.val.x[:120], digits.val.y[:120].clone()
    y[::3] = (y[::3] + 1) % 10
    return x, y


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"k": 5, "spectrum_inputs": "clean"}, id="tarantula-clean"),
        pytest.param(
            {"measure": "dstar", "star": 3.0, "spectrum_inputs": "clean", "threshold": 0.5},
            id="dstar-threshold",
        ),
        pytest.param(
            {"measure": "ochiai", "k": 3, "eps": 0.2, "spectrum_inputs": "fgsm"}, id="ochiai-fgsm"
        ),
        pytest.param({"k": 4, "eps": 0.3}, id="tarantula-noise"),  # the default spectra
    ],
)
def test_suspicious_units_are_the_faults_top_k_of_each_class_s_spectrum(
    trained, mislabelled, options
):
    """An independent route to the suspiciousness property: per class, the hit spectra of its
    own inputs (and their FGSM(ε) versions with ``spectrum_inputs="fgsm"``, or their
    random-sign ±ε copies with the default ``"noise"``) from
    robust.models.activations, scored by the measure and selected by faults.top_suspicious
    (k = 20, seed 004's, by default)."""
    from robust import faults
    from robust.attacks import fgsm
    from robust.models import activations

    x, y = mislabelled
    classes = [1, 4, 7]
    got = dgn.PROPERTIES["suspicious"](trained, x, y, classes, batch_size=7, **options)
    assert list(got) == classes
    measure = options.get("measure", "tarantula")
    for c in classes:
        xc, yc = x[y == c], y[y == c]
        kind = options.get("spectrum_inputs", "noise")
        if kind == "fgsm":
            xc, yc = torch.cat([xc, fgsm(trained, xc, yc, options["eps"])]), yc.repeat(2)
        elif kind == "noise":  # ±ε per element, signs drawn from a generator seeded by the class
            g = torch.Generator().manual_seed(c)
            signs = torch.randint(0, 2, xc.shape, generator=g).float() * 2 - 1
            xc, yc = torch.cat([xc, (xc + options["eps"] * signs).clamp(0, 1)]), yc.repeat(2)
        with torch.no_grad():
            correct = (trained(xc).argmax(1) == yc).numpy()
        assert not correct.all()
        scores = {}
        for layer in ("conv1", "conv2", "fc1"):
            s = faults.spectrum(
                activations(trained, xc, layer, flatten=False),
                correct,
                options.get("threshold", 0.0),
            )
            scores[layer] = (
                faults.dstar(s, options["star"])
                if measure == "dstar"
                else faults.MEASURES[measure](s)
            )
        want = faults.top_suspicious(scores, options.get("k", 20))
        assert got[c].keys() == want.keys()
        for layer, idx in want.items():
            assert got[c][layer].dtype == torch.int64
            assert got[c][layer].tolist() == idx.tolist(), (c, layer)


def test_suspicious_refuses_an_unknown_measure(trained, mislabelled):
    with pytest.raises(ConfigError, match=r"^measure must be one of tarantula, ochiai, dstar"):
        dgn.PROPERTIES["suspicious"](trained, *mislabelled, [1], measure="jaccard")


def test_relevant_inputs_of_any_classes_are_explain_s_top_k(trained, mislabelled):
    """Per class, the top-k by mean LRP relevance over that class's inputs, as
    explain.top_relevant gives them (which needs every class), also for a subset of the classes
    with the other classes' inputs left out; k defaults to explain.default_k (16 for 8×8).
    Found: the subset used to raise "every class in range(10) must occur in y"."""
    from robust import explain

    x, y = mislabelled
    want = explain.top_relevant(trained, x, y, 9)
    keep = (y == 2) | (y == 6)
    got = dgn.PROPERTIES["relevant"](trained, x[keep], y[keep], [6, 2], k=9)
    assert list(got) == [6, 2]
    for c in (2, 6):
        assert got[c].dtype == torch.int64 and got[c].tolist() == want[c].tolist()
    default = dgn.PROPERTIES["relevant"](trained, x, y, [2])
    assert default[2].tolist() == explain.top_relevant(trained, x, y)[2].tolist()
    assert len(default[2]) == explain.default_k((1, 8, 8)) == 16
    assert len(dgn.PROPERTIES["relevant"](trained, x, y, [2], k=64)[2]) == 64
    for k in (0, 65, 2.0, True):
        with pytest.raises(ConfigError, match=rf"^k must be an integer in \[1, 64\] .* k={k}$"):
            dgn.PROPERTIES["relevant"](trained, x, y, [2], k=k)


def test_lrp_generators_train_for_a_subset_of_the_classes(trained, small):
    x, y = small
    keep = y < 3
    gens = dgn.train(trained, x[keep], y[keep], "lrp", eps=0.3, epochs=1, k=5, progress=False)
    assert gens.classes == (0, 1, 2)
    assert all(len(gens.properties[c]["relevant"]) == 5 for c in gens.classes)
