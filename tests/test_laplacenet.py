"""LaplaceNet: label propagation on synthetic graphs, the schedule arithmetic, the WRN, a tiny run, pretraining."""
import numpy as np
import scipy.sparse as sp
import pytest
import torch
from sklearn.datasets import load_digits, make_blobs, make_moons

from diffrep.config import (
    Config,
    DatasetConfig,
    NetConfig,
    SemisupExperiment,
    parse_setting,
    resolve,
)
from diffrep.evaluate.laplacenet import (
    balanced_labelled_mask,
    knn_graph,
    laplacenet_epochs,
    propagate_labels,
)
from diffrep.evaluate.semisup import semisup_rows, t_grid
from diffrep.methods.base import DataShape, method_named
from diffrep.methods.semisup import build_wrn, load_pretrained, run_spec
from diffrep.nets.wrn import WideResNet, wrn_blocks


def two_per_class(y: np.ndarray) -> np.ndarray:
    labelled = np.zeros(len(y), dtype=bool)
    for c in np.unique(y):
        labelled[np.flatnonzero(y == c)[:2]] = True
    return labelled


@pytest.mark.parametrize("name", ["blobs", "moons"])
def test_propagation_labels_separated_clusters_from_two_labels_per_class(name):
    if name == "blobs":
        x, y = make_blobs(n_samples=600, centers=4, n_features=8, cluster_std=1.0, center_box=(-20, 20), random_state=1)
        k = 50
    else:
        x, y = make_moons(n_samples=600, noise=0.05, random_state=1)
        # the graph compares directions (inner products of normalised features): lift the moons off the origin
        x = np.c_[x - x.mean(0), np.full(len(x), 2.0)]
        k = 10
    labelled = two_per_class(y)
    pseudo, weights = propagate_labels(x, y, labelled, k=k)
    assert (pseudo == y).mean() >= 0.95
    assert np.all(pseudo[labelled] == y[labelled]) and np.all(weights[labelled] == 1.0)
    assert np.all((weights >= 0) & (weights <= 1 + 1e-9))


def test_propagation_is_not_a_nearest_labelled_lookup():
    """Chance would give 1/4; a single-neighbour graph cannot carry labels far, the full graph does."""
    x, y = make_blobs(n_samples=400, centers=4, n_features=8, cluster_std=1.0, center_box=(-20, 20), random_state=2)
    y_shuffled = np.random.default_rng(0).permutation(y)
    pseudo, _ = propagate_labels(x, y_shuffled, two_per_class(y_shuffled), k=50)
    assert (pseudo == y_shuffled).mean() < 0.6  # labels unrelated to the features cannot be recovered


def test_graph_is_symmetric_without_self_loops():
    x, _ = make_blobs(n_samples=100, centers=3, random_state=0)
    w = knn_graph(x, 5)
    assert abs(w - w.T).max() < 1e-12 and w.diagonal().max() == 0
    assert (w.getnnz(axis=1) >= 5).all()


@pytest.mark.parametrize(
    "change, message",
    [
        ("missing_class", "classes without one"),
        ("not_bool", "boolean mask"),
        ("big_k", "neighbours"),
        ("short_mask", "disagree"),
    ],
)
def test_bad_inputs_are_refused(change, message):
    x, y = make_blobs(n_samples=60, centers=3, random_state=0)
    labelled = two_per_class(y)
    k = 10
    if change == "missing_class":
        labelled[y == 2] = False
    elif change == "not_bool":
        labelled = labelled.astype(int)
    elif change == "big_k":
        k = 60
    else:
        labelled = labelled[:-1]
    with pytest.raises(ValueError, match=message):
        propagate_labels(x, y, labelled, k=k)


def test_schedule_arithmetic_gives_the_papers_260_for_cifar10():
    # LaplaceNet's CIFAR-10 command: 4000 labels, batch 300 with 48 labelled, 5 augmentations, 250k steps
    assert laplacenet_epochs(250_000, 4000, 50_000, 300, 48, 5) == 260
    assert laplacenet_epochs(250_000, 4000, 50_000, 300, 48, 3) != 260
    with pytest.raises(ValueError):
        laplacenet_epochs(100, 4000, 50_000, 300, 48, 5)


def ve_sigma(t):
    return 0.01 * (50 / 0.01) ** t


def test_wrn_shapes_and_its_own_t():
    wrn = WideResNet(3, 10, depth=28, width=2, emb_dim=32, sigma=ve_sigma)
    x = torch.rand(4, 3, 32, 32)
    assert wrn.features(x).shape == (4, 128) and wrn.classify(x).shape == (4, 10)
    assert wrn.t.item() == pytest.approx(0.5) and wrn.time_conditioned
    assert sum(isinstance(m, torch.nn.Conv2d) for m in wrn.modules()) == 25 + 3  # 12 blocks x 2 + input, 3 shortcuts
    wrn.set_t(0.9)
    assert wrn.t.item() == pytest.approx(0.9)
    small = WideResNet(1, 10, depth=10, width=1)
    assert small.features(torch.rand(2, 1, 8, 8)).shape == (2, 64) and not small.time_conditioned
    with pytest.raises(ValueError):
        wrn_blocks(27)


def test_the_encoder_sees_each_samples_t_in_pretraining():
    """E(x0, t): in training mode, the same images at other per-sample noise scales give other codes, and the
    gradient reaches the time MLP but not the encoder's own t (pretraining does not use it)."""
    torch.manual_seed(0)
    wrn = WideResNet(1, 10, depth=10, width=1, emb_dim=16, sigma=ve_sigma).train()
    x = torch.rand(6, 1, 8, 8)
    t_a, t_b = torch.linspace(0.0, 1.0, 6), torch.linspace(1.0, 0.0, 6)
    code_a, _ = wrn(x, ve_sigma(t_a))
    code_b, _ = wrn(x, ve_sigma(t_b))
    assert (code_a - code_b).abs().max() > 1e-3
    code_a.square().sum().backward()
    assert wrn.blocks[0].cond.weight.grad.abs().sum() > 0
    assert wrn.param_t.grad is None


def test_the_shared_t_has_no_effect_and_no_gradient_in_fine_tuning():
    """One t for the whole batch, added before bn2, is removed by the batch statistics (the authors' LaplaceNet)."""
    torch.manual_seed(0)
    wrn = WideResNet(1, 10, depth=10, width=1, emb_dim=16, sigma=ve_sigma).train()
    x = torch.rand(8, 1, 8, 8)
    at_half = wrn.classify(x)
    wrn.set_t(0.9)
    logits = wrn.classify(x)
    torch.testing.assert_close(logits, at_half, atol=1e-4, rtol=1e-4)
    nn_loss = torch.nn.functional.cross_entropy(logits, torch.arange(8) % 10)
    nn_loss.backward()
    assert abs(wrn.param_t.grad.item()) < 1e-5


def test_vdrl_noise_sits_on_a_head_laplacenet_drops():
    wrn = WideResNet(1, 10, depth=10, width=1, emb_dim=16, sigma=ve_sigma, probabilistic=True).eval()
    x = torch.rand(3, 1, 8, 8)
    mean, logvar = wrn(x, ve_sigma(torch.full((3,), 0.5)))
    assert mean.shape == logvar.shape == (3, 64)
    assert not torch.allclose(mean, wrn.features(x))  # the code is the head's, the classifier's feature is clean


def digits_config(**semisup) -> Config:
    raw = {"datasets": {"digits": {"net": {"channels": [8, 16], "emb_dim": 16, "code_hidden": 16}}},
           "experiments": {"semisup": {"depth": 10, "width": 1, "batch_size": 64, "knn": 10, **semisup}}}
    return resolve(raw)


def digits():
    bunch = load_digits()
    x = torch.from_numpy((bunch.images / 16.0).astype(np.float32))[:, None]
    y = torch.from_numpy(bunch.target.astype(np.int64))
    return (x[:1000], y[:1000]), (x[1000:], y[1000:])


def test_tiny_laplacenet_beats_supervised_only_on_the_digits():
    torch.set_num_threads(1)
    cfg = digits_config(seeds=[0], warmup_epochs=40, iterations=6, settings=["supervised", "none"], pretrainings=[])
    train, test = digits()
    sx = cfg.experiments.semisup
    make = lambda: build_wrn(cfg, "digits", (1, 8, 8), 10)
    rows = {r["setting"]: r for r in semisup_rows(make, sx, [parse_setting(s) for s in sx.settings], [20], train, test)}
    assert rows["supervised"]["accuracy"] > 0.3  # chance is 0.1
    assert rows["none"]["pseudo_label_accuracy"] > 0.5 and rows["none"]["first_graph_accuracy"] > 0.5
    assert rows["none"]["accuracy"] > rows["supervised"]["accuracy"]


def test_settings_and_t_grid():
    s = parse_setting("drl_tsearch+mixup@short")
    assert (s.pretraining, s.t_search, s.mixup, s.short) == ("drl", True, True, True)
    assert parse_setting("supervised").supervised_only and parse_setting("drl_mixup").pretraining == "drl_mixup"
    grid = t_grid(11)
    assert len(grid) == 11 and grid[0] == 0.01 and grid[1] == pytest.approx(0.1) and grid[-1] == 0.99
    assert set(SemisupExperiment().labels) == {"digits"}


@pytest.mark.parametrize("pretraining", ["drl", "vdrl", "drl_mixup", "ae"])
def test_pretraining_losses_are_finite_and_the_classifier_starts_from_them(pretraining, tmp_path):
    from diffrep.methods.run import save_model

    cfg, spec, data = digits_config(), run_spec("digits", pretraining), DataShape((1, 8, 8), 10)
    method = method_named(spec.method)
    model = method.build(cfg, spec, data)
    loss = method.loss(cfg, spec, model)(model, torch.rand(6, 1, 8, 8), torch.Generator().manual_seed(0))
    assert loss.shape == (6,) and torch.isfinite(loss).all()
    loss.mean().backward()
    assert model.encoder.blocks[0].cond.weight.grad is not None or pretraining == "ae"
    assert method.schedule(cfg, spec).ema == 0.0  # the saved model is the trained one, as in the authors' checkpoint
    with torch.no_grad():
        model.encoder.param_t.fill_(2.0)
    save_model(model, cfg, spec, data, tmp_path / "model.pt")
    clf = build_wrn(cfg, "digits", (1, 8, 8), 10)
    load_pretrained(clf, tmp_path / "model.pt")
    assert torch.equal(clf.conv_in.weight, model.encoder.conv_in.weight)
    assert torch.equal(clf.blocks[0].cond.weight, model.encoder.blocks[0].cond.weight)  # the time MLP comes along
    assert clf.t.item() == pytest.approx(0.5)  # reset to logit(0.5) on loading


def test_labelled_mask_is_balanced_and_refuses_too_few():
    y = np.repeat(np.arange(10), 30)
    mask = balanced_labelled_mask(y, 20, np.random.default_rng(0))
    assert mask.sum() == 20 and (np.bincount(y[mask]) == 2).all()
    with pytest.raises(ValueError):
        balanced_labelled_mask(y, 5, np.random.default_rng(0))


def test_unknown_dataset_config_keeps_defaults():
    assert isinstance(Config().datasets["digits"], DatasetConfig) and NetConfig().emb_dim == 64


def test_pretrainings_must_match_the_settings():
    from diffrep.config import ConfigError

    with pytest.raises(ConfigError, match="pretrainings"):
        digits_config(settings=["none", "drl"], pretrainings=["drl", "ae"])
    with pytest.raises(ConfigError, match="label counts"):
        resolve({"experiments": {"semisup": {"datasets": ["digits"], "labels": {}}}})


def test_propagation_on_a_three_node_path_matches_its_closed_form():
    """Features at 0, 45 and 90 degrees with k = 1 make the path a - b - c with equal weights, so
    W_n = [[0, r, 0], [r, 0, r], [0, r, 0]], r = 1/sqrt(2). With q = alpha r, (I - alpha W_n) f = e_a gives
    f = ((1 - q^2), q, q^2) / (1 - 2 q^2); class 1, labelled at c, the mirror image. b is tied: certainty 0."""
    from diffrep.evaluate.laplacenet import normalized_affinity, solve_per_class

    angles = np.deg2rad([0.0, 45.0, 90.0])
    x, y, labelled = np.c_[np.cos(angles), np.sin(angles)], np.array([0, -1, 1]), np.array([True, False, True])
    alpha, q = 0.9, 0.9 / np.sqrt(2)
    wn = normalized_affinity(knn_graph(x, 1)).toarray()
    r = 1 / np.sqrt(2)
    np.testing.assert_allclose(wn, [[0, r, 0], [r, 0, r], [0, r, 0]], atol=1e-12)
    scores = solve_per_class(sp.csr_matrix(wn), y, labelled, 2, alpha)
    f = np.array([1 - q**2, q, q**2]) / (1 - 2 * q**2)
    np.testing.assert_allclose(scores, np.c_[f, f[::-1]], rtol=1e-6)
    pseudo, weights = propagate_labels(x, y, labelled, k=1, alpha=alpha)
    assert list(pseudo[[0, 2]]) == [0, 1] and weights[1] == pytest.approx(0.0, abs=1e-9)


def test_a_pseudo_label_epoch_pairs_each_unlabelled_image_once_with_labelled_ones():
    from diffrep.evaluate.laplacenet import Semisup

    x = torch.arange(30, dtype=torch.float32)[:, None, None, None]
    y = torch.arange(30) % 3
    labelled = np.zeros(30, dtype=bool)
    labelled[:3] = True
    run = Semisup(x, y, labelled, 1, 1, False, 5, 0.99, batch_size=10, labelled_batch=4)
    pseudo = torch.full((30,), 7)
    batches = run.pseudo_batches(pseudo, torch.Generator().manual_seed(0))
    seen = []
    for xb, yb in batches:
        ids = xb.flatten().long()
        assert (ids[:4] < 3).all() and torch.equal(yb[:4], y[ids[:4]])  # labelled, with their labels
        assert (ids[4:] >= 3).all() and (yb[4:] == 7).all()  # unlabelled, with their pseudo-labels
        seen += ids[4:].tolist()
    assert sorted(seen) == list(range(3, 30)) and run.total_steps() == 1 + len(batches)
    with pytest.raises(ValueError, match="pseudo-labelled"):
        Semisup(x, y, labelled, 1, 1, False, 5, 0.99, batch_size=10, labelled_batch=9)
