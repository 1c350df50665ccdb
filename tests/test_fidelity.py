"""FID/IS through torch-fidelity on a domain classifier trained on scikit-learn's digits."""
import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from diffrep.config import FidelityConfig
from diffrep.evaluate.fidelity import (
    ClassifierFeatures,
    UInt8Images,
    fidelity_metrics,
    save_classifier,
    train_classifier,
)
from diffrep.evaluate.representation import accuracy

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def digits():
    """Digits as (N, 1, 8, 8) floats in [0, 1], split 75/25 with a fixed permutation."""
    data = load_digits()
    x = torch.tensor(data.images / 16.0, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(data.target)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    n_train = int(0.75 * len(x))
    return x[perm[:n_train]], y[perm[:n_train]], x[perm[n_train:]], y[perm[n_train:]]


@pytest.fixture(scope="module")
def trained(digits, tmp_path_factory):
    """The classifier trained once, and its checkpoint for torch-fidelity."""
    x_train, y_train, _, _ = digits
    model = train_classifier(x_train, y_train, FidelityConfig(classifier_epochs=10), seed=0)
    path = tmp_path_factory.mktemp("classifier") / "classifier.pt"
    save_classifier(model, path)
    return model, path


def classifier_fid(a, b, path):
    return fidelity_metrics(a, b, features="classifier", weights_path=path, isc=False)["fid"]


def psd_sqrt(m: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix (dead ReLU units make covariances singular)."""
    w, v = np.linalg.eigh(m)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(f1: np.ndarray, f2: np.ndarray) -> float:
    """Closed form between Gaussians fitted to two feature sets, with tr sqrt(S1 S2) = tr sqrt(S1^1/2 S2 S1^1/2)."""
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    r1 = psd_sqrt(s1)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(psd_sqrt(r1 @ s2 @ r1)))


def test_classifier_accuracy_on_held_out_digits(digits, trained):
    _, _, x_test, y_test = digits
    assert accuracy(trained[0].eval(), x_test, y_test) > 0.9


def test_training_is_reproducible(digits):
    x_train, y_train, _, _ = digits
    fc = FidelityConfig(classifier_epochs=1)
    a, b = (train_classifier(x_train[:256], y_train[:256], fc, seed=3) for _ in range(2))
    c = train_classifier(x_train[:256], y_train[:256], fc, seed=4)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(a.head.weight, c.head.weight)


def test_extractor_sees_the_images_as_the_classifier_does(digits, trained):
    model, path = trained
    x = digits[2][:64]
    extractor = ClassifierFeatures("test", ["logits", "penultimate"], feature_extractor_weights_path=str(path))
    batch = torch.stack([UInt8Images(x)[i] for i in range(len(x))])
    assert batch.dtype == torch.uint8 and batch.shape[1] == 3
    logits, features = extractor(batch)
    quantized = (x * 255).round() / 255
    with torch.no_grad():
        torch.testing.assert_close(features, model.features(quantized), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(logits, model(quantized), rtol=1e-5, atol=1e-5)


def test_fid_matches_frechet_distance_of_classifier_features(digits, trained):
    model, path = trained
    x_test = (digits[2] * 255).round() / 255
    a, b = x_test[::2], x_test[1::2]
    with torch.no_grad():
        expected = frechet_distance(model.features(a).double().numpy(), model.features(b).double().numpy())
    result = fidelity_metrics(a, b, features="classifier", weights_path=path, isc=False)
    assert result["fid"] == pytest.approx(expected, rel=1e-3)
    assert result["features"] == "domain classifier penultimate (128-d)"


def test_fid_separates_real_halves_from_noise(digits, trained):
    x_test, path = digits[2], trained[1]
    noise = torch.rand(x_test.shape, generator=torch.Generator().manual_seed(1))
    same = classifier_fid(x_test[::2], x_test[1::2], path)
    assert 10 * same < classifier_fid(noise, x_test, path)


def test_fid_is_symmetric(digits, trained):
    x_test, path = digits[2], trained[1]
    a, b = x_test[:200], x_test[200:]
    assert classifier_fid(a, b, path) == pytest.approx(classifier_fid(b, a, path), rel=1e-6)


def test_inception_score_of_digits_and_of_constant_images(digits, trained):
    x_test, path = digits[2], trained[1]
    real = fidelity_metrics(x_test, features="classifier", weights_path=path, fid=False)
    constant = fidelity_metrics(torch.full((200, 1, 8, 8), 0.5), features="classifier", weights_path=path, fid=False)
    assert real["isc_mean"] > 5.0
    assert constant["isc_mean"] == pytest.approx(1.0, abs=1e-3)
    assert real["isc_features"] == "domain classifier logits (10 classes)"


def test_missing_inception_weights_name_the_path(tmp_path):
    missing = tmp_path / "pt_inception-2015-12-05.pth"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        fidelity_metrics(None, None, features="inception", weights_path=missing)


def test_non_finite_samples_are_rejected(digits, trained):
    bad = digits[2][:50].clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        fidelity_metrics(bad, digits[2], features="classifier", weights_path=trained[1])
