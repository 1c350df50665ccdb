"""diffrep.weights: pretrained weights fetched from a local mirror, checked against their md5, written atomically."""
from __future__ import annotations

import dataclasses
import socket

import pytest
from test_data import md5, mirror  # noqa: F401  (mirror: the local HTTP server fixture)

from diffrep import config as cfgmod
from diffrep import weights
from diffrep.data import DataError

NAME = "weights-inception-2015-12-05-6726825d.pth"


def profile(**fidelity):
    cfg = cfgmod.Config()
    return dataclasses.replace(cfg, fidelity=dataclasses.replace(cfg.fidelity, **fidelity))


@pytest.fixture
def served(mirror):  # noqa: F811
    """A small weights file on the mirror: (its URL, its md5, its bytes)."""
    root, url = mirror
    blob = bytes(range(256)) * 64
    (root / NAME).write_bytes(blob)
    return url + NAME, md5(root / NAME), blob


def test_fetches_the_file_with_its_md5(tmp_path, served):
    url, digest, blob = served
    out = tmp_path / "weights" / "inception.pth"
    assert weights.fetch_configured(profile(inception_url=url, inception_md5=digest), "inception", out) == out
    assert out.read_bytes() == blob
    assert sorted(p.name for p in out.parent.iterdir()) == ["inception.pth"], "the download folder is removed"


def test_wrong_md5_writes_nothing(tmp_path, served):
    url, digest, _ = served
    out = tmp_path / "weights" / "inception.pth"
    with pytest.raises(DataError, match=rf"inception: {NAME} from {url} has the wrong md5.*0{{32}}, got {digest}"):
        weights.fetch_weights("inception", url, "0" * 32, out)
    assert list(out.parent.iterdir()) == []


def test_a_wrong_md5_keeps_an_earlier_file(tmp_path, served):
    url, _, _ = served
    out = tmp_path / "inception.pth"
    out.write_bytes(b"earlier")
    with pytest.raises(DataError):
        weights.fetch_weights("inception", url, "0" * 32, out)
    assert out.read_bytes() == b"earlier"


def test_missing_file_on_the_mirror(tmp_path, mirror):  # noqa: F811
    _, url = mirror
    with pytest.raises(DataError, match=rf"inception: downloading {NAME} from {url}{NAME} failed.*404"):
        weights.fetch_weights("inception", url + NAME, "0" * 32, tmp_path / "inception.pth")


def test_unreachable_url_names_file_and_url(tmp_path):
    with socket.socket() as sock:  # bound but not listening: connecting is refused
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/{NAME}"
        with pytest.raises(DataError, match=rf"inception: downloading {NAME} from {url} failed.*refused"):
            weights.fetch_weights("inception", url, "0" * 32, tmp_path / "inception.pth")
    assert list(tmp_path.iterdir()) == []


def test_without_url_or_md5_the_error_names_the_parameters(tmp_path):
    with pytest.raises(DataError, match=r"inception: .*inception.pth is missing; put the file there, or set "
                                        r"`fidelity.inception_url` and `fidelity.inception_md5`"):
        weights.fetch_configured(profile(), "inception", tmp_path / "inception.pth")
    with pytest.raises(ValueError, match="no md5"):
        weights.fetch_weights("inception", "http://127.0.0.1:1/x.pth", "", tmp_path / "x.pth")


def test_local_path_prefers_the_given_file():
    assert weights.local_path(profile(), "inception") == ""
    url = f"https://example.org/releases/{NAME}"
    assert weights.local_path(profile(inception_url=url), "inception") == f"weights/{NAME}"
    assert weights.local_path(profile(inception_url=url, inception_weights="w/mine.pth"), "inception") == "w/mine.pth"
    with pytest.raises(ValueError, match="unknown weights 'vgg'; known: inception, lpips"):
        weights.local_path(profile(), "vgg")


def test_the_subcommand_fetches_what_the_profile_names(tmp_path, served, capsys):
    from diffrep.cli import main

    url, digest, blob = served
    params = tmp_path / "params.yaml"
    cfgmod.dump(profile(inception_url=url, inception_md5=digest), params)
    out = tmp_path / "weights" / NAME
    assert main(["fetch-weights", "--config", str(params), "--name", "inception", "--out", str(out)]) == 0
    assert out.read_bytes() == blob
    cfgmod.dump(profile(inception_url=url, inception_md5="0" * 32), params)
    assert main(["fetch-weights", "--config", str(params), "--name", "inception", "--out", str(tmp_path / "x")]) == 1
    assert f"{NAME} from {url} has the wrong md5" in capsys.readouterr().err


def test_lpips_weights_are_a_planned_job_that_feeds_the_reconstruction_scores():
    """ScoreVAE's LPIPS needs torchvision's VGG16: a URL and md5 in the profile make a fetch job whose file the
    scoring job reads; a local path is read as it is; neither: no job (LPIPS looks in $TORCH_HOME)."""
    from diffrep.plan import Plan

    def planned(**scorevae):
        cfg = cfgmod.load("params/default.yaml")
        cfg.experiments.scorevae = dataclasses.replace(cfg.experiments.scorevae, **scorevae)
        plan = Plan(cfg, "params.yaml")
        fetched = [j.outputs["weights"] for f in plan if f.name == "fetch_lpips" for j in f.jobs]
        return fetched, plan["scorevae_evaluate"].jobs[0].inputs["vgg"]

    url = "https://example.org/models/vgg16-397923af.pth"
    assert planned(lpips_url=url, lpips_md5="0" * 32) == ([["weights/vgg16-397923af.pth"]],
                                                           ["weights/vgg16-397923af.pth"])
    assert planned(lpips_weights="w/vgg.pth") == ([["w/vgg.pth"]], ["w/vgg.pth"])
    assert planned() == ([], [])
