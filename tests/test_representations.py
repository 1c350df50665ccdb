"""The representation table's protocol: PCA codes of the digits score what an SVM on PCA features scores directly,
every code sees the same labelled draws, and the report groups seeds and draws into mean ± std."""
import numpy as np
import pandas as pd
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import silhouette_score
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from diffrep.evaluate.representation import best_t, labelled_subset, pca_codes, protocol
from diffrep.report import representations


def digits():
    x, y = load_digits(return_X_y=True)
    return train_test_split(x / 16.0, y, test_size=0.2, random_state=0, stratify=y)


def test_pca_codes_score_what_an_svm_on_pca_features_scores():
    x_tr, x_te, y_tr, y_te = digits()
    train, test = pca_codes(x_tr, x_te, 8)
    rows = protocol(train, y_tr, test, y_te, [30, 300], draws=2, k=5, seed=0)
    pca = PCA(8, random_state=0).fit(x_tr)
    rng = np.random.default_rng(0)
    for draw in range(2):
        idx = labelled_subset(y_tr, 30, rng)
        direct = (SVC().fit(pca.transform(x_tr)[idx], y_tr[idx]).predict(pca.transform(x_te)) == y_te).mean()
        ours = next(r["value"] for r in rows if r["metric"] == "svm" and r["labels"] == 30 and r["draw"] == draw)
        assert ours == direct
    probe = next(r["value"] for r in rows if r["metric"] == "linear_probe")
    scaler = StandardScaler().fit(train)
    direct = LogisticRegression(max_iter=2000).fit(scaler.transform(train), y_tr).score(scaler.transform(test), y_te)
    assert probe == direct and 0.85 < probe <= 1
    idx = labelled_subset(y_tr, 30, np.random.default_rng(0))  # the first draw
    direct_knn = (KNeighborsClassifier(5).fit(train[idx], y_tr[idx]).predict(test) == y_te).mean()
    assert next(r["value"] for r in rows if r["metric"] == "knn" and r["labels"] == 30 and r["draw"] == 0) == direct_knn
    silhouette = next(r["value"] for r in rows if r["metric"] == "silhouette")
    assert silhouette == silhouette_score(test, y_te)
    assert {r["metric"] for r in rows} == {"silhouette", "linear_probe", "svm", "knn"}
    assert len(rows) == 2 + 2 * 2 * 2


def test_every_code_sees_the_same_labelled_draws():
    """Two codes of the same images: the kNN on identical codes scores identically, draw by draw."""
    x_tr, x_te, y_tr, y_te = digits()
    a = protocol(x_tr, y_tr, x_te, y_te, [30], draws=3, k=3, seed=7)
    b = protocol(x_tr.copy(), y_tr, x_te.copy(), y_te, [30], draws=3, k=3, seed=7)
    assert [r["value"] for r in a] == [r["value"] for r in b]
    assert len({r["value"] for r in a if r["metric"] == "knn"}) > 1, "the draws differ from one another"


def test_best_t_is_the_t_whose_training_codes_separate_the_classes_best():
    x_tr, _, y_tr, _ = digits()
    noise = np.random.default_rng(0).normal(size=x_tr.shape)
    codes = np.stack([noise, x_tr, 0.5 * x_tr + noise])  # t index 1 keeps the images, 0 keeps nothing
    assert best_t(codes, y_tr) == 1


def test_the_table_groups_seeds_and_draws_into_mean_and_std(tmp_path):
    rows = []
    for method, code, t, seed, values in (("pca", "static", np.nan, 0, [0.5, 0.7]),
                                          ("scorevae", "t = 0", 0.0, 0, [0.8]), ("scorevae", "t = 0", 0.0, 1, [0.6]),
                                          ("drl", "best t", 0.6, 0, [0.9, 0.9])):
        rows += [{"run": f"{method}-s{seed}", "method": method, "experiment": "e", "code": code, "t": t, "seed": seed,
                  "iterations": 10, "batch": 64,
                  "dim": 8, "metric": "svm", "labels": 30, "draw": d, "value": v} for d, v in enumerate(values)]
    columns, table = representations.table(pd.DataFrame(rows))
    assert columns == ["SVM, 30 labels"]
    by_code = {r["code"]: r for r in table}
    assert list(by_code) == ["pca", "scorevae E(x0, t) at t = 0", "drl E(x0, t) at its best t"]
    assert by_code["pca"]["values"] == ["0.600 ± 0.141"] and by_code["scorevae E(x0, t) at t = 0"]["seeds"] == 2
    assert by_code["drl E(x0, t) at its best t"]["best_t"] == "0.6" and by_code["pca"]["best_t"] == "–"
    assert representations.best_code(pd.DataFrame(rows), "svm") == "drl E(x0, t) at its best t (0.900 with 30 labels)"


def test_the_default_plan_hands_every_method_it_trains_to_the_table():
    from pathlib import Path

    from diffrep import config
    from diffrep.plan import Plan

    job = Plan(config.load("params/default.yaml"), "params.yaml")["representations"].jobs[0]
    runs = {Path(m).parent.name for m in job.inputs["models"]} | {Path(c).stem for c in job.inputs["codes"]}
    seeded = {f"{m}-s{s}" for m in ("scorevae", "beta_vae", "diffdecoder", "diffdecoder_b0") for s in (0, 1)}
    assert runs == {"fewshot-drl", "fewshot-vdrl", "fewshot-ae", "fewshot-vae", "codedim-d8", "codedim-vdrl-d8",
                    "lsgm-vp-ll_iw-rew", *seeded}


def test_the_figure_draws_one_label_count_as_well_as_several(tmp_path):
    from diffrep.report import figures

    for counts in ([30], [30, 300]):
        svm = pd.DataFrame([{"name": n, "labels": c, "value": v} for n in ("pca", "ae") for c in counts
                            for v in (0.5, 0.6)])
        figures.accuracy_per_code(svm, "t", tmp_path / f"{len(counts)}.png")
        assert (tmp_path / f"{len(counts)}.png").stat().st_size > 0
