"""The parameters: the schema generated from the dataclasses, the profiles it accepts and the ones it refuses."""
import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from diffrep import config
from diffrep.config import Config, ConfigError, json_schema, resolve, to_dict, validate

ROOT = Path(__file__).resolve().parents[1]
PROFILES = sorted((ROOT / "params").glob("*.yaml"))


def test_committed_schema_is_the_generated_one():
    assert (ROOT / "params" / "schema.json").resolve() == config.SCHEMA_PATH
    assert config.SCHEMA_PATH.read_text() == config.schema_text(), "run `python -m diffrep.config` and commit"


def test_schema_is_a_valid_draft_2020_12_schema():
    jsonschema.Draft202012Validator.check_schema(json_schema())


def _object_schemas(node):
    """Every object schema with declared properties, wherever it sits in the schema."""
    if isinstance(node, dict):
        if "properties" in node:
            yield node
        for value in node.values():
            yield from _object_schemas(value)


def test_every_block_is_closed_and_the_dataset_block_is_defined_once():
    schema = json_schema()
    blocks = list(_object_schemas(schema))
    assert len(blocks) == len(schema["$defs"]) + 1  # the top level and one definition per dataclass
    assert all(block["additionalProperties"] is False for block in blocks)
    assert schema["properties"]["datasets"]["additionalProperties"] == {"$ref": "#/$defs/DatasetConfig"}
    assert json.dumps(schema).count('"test_fraction"') == 1


FREE_TEXT = {"name", "data_root", "models_root", "results_root", "reports_root", "report_baseline", "url", "files", "path", "inception_weights", "lpips_weights",
             "inception_url", "inception_md5", "lpips_url", "lpips_md5"}


def test_every_mode_has_an_enum():
    """Every string (or list of strings, or mapping's key) that is not free text is one of a declared set."""
    schema = json_schema()
    for block in (schema, *schema["$defs"].values()):
        for name, prop in block["properties"].items():
            if name in FREE_TEXT:
                continue
            value = prop.get("items", prop)
            assert value.get("type") != "string" or "enum" in value, f"{name} is a mode without an enum"
            assert prop.get("type") != "object" or "enum" in prop["propertyNames"], f"{name}'s keys have no enum"


def test_enums_name_what_the_code_knows():
    from diffrep.sampling import SAMPLERS
    from diffrep.sde import SDES

    assert set(config.SAMPLER_METHODS) == set(SAMPLERS)
    assert set(config.SDE_KINDS) == set(SDES)
    assert len(set(config.SEMISUP_SETTINGS)) == 25 and "supervised@short" not in config.SEMISUP_SETTINGS
    assert {config.parse_setting(s).pretraining for s in config.SEMISUP_SETTINGS} == {"none", *config.PRETRAININGS}


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.name)
def test_every_profile_validates_and_resolves(profile, monkeypatch):
    monkeypatch.chdir(ROOT)  # `extends:` names a file from the repository root, where the workflows run
    cfg = config.load(profile)
    assert isinstance(cfg, Config) and cfg.name == profile.stem


def test_the_defaults_and_any_resolved_config_validate():
    cfg = config.load(ROOT / "params" / "smoke.yaml")
    for resolved in (to_dict(Config()), to_dict(cfg)):
        validate(resolved)
    assert resolve(to_dict(cfg)) == cfg


def test_a_profile_overrides_only_what_it_names():
    cfg = resolve({"datasets": {"mnist": {"net": {"channels": [8]}}},
                   "experiments": {"latent": {"datasets": ["mnist"]}}})
    assert cfg.datasets["mnist"].net.channels == [8] and cfg.datasets["mnist"].net.emb_dim == 64
    assert list(cfg.datasets) == ["mnist"] and cfg.sde == config.SDEConfig()
    assert Config().datasets["digits"] is not Config().datasets["digits"], "mutable defaults are per instance"


def test_new_fields_resolve_with_their_defaults():
    cfg = resolve({"sde": {"kind": "geometric_vp", "sigma2_min": 1e-3}})
    assert cfg.sde == config.SDEConfig("geometric_vp", 0.01, 50.0, 0.1, 20.0, 1e-3, 0.99, 0.0, 1e-5)
    assert resolve({"sde": {"kind": "vp", "beta_max": 10.0}}).sde.beta_max == 10.0
    latent, adversarial = cfg.experiments.latent, cfg.experiments.adversarial
    assert (latent.grid_side, latent.denoise_t) == (8, 0.6)
    assert adversarial.loss_t == [0.05, 0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.95]
    assert (cfg.fidelity.inception_url, cfg.fidelity.inception_md5) == ("", "")
    resolved = to_dict(cfg)
    assert {"beta_min", "beta_max", "sigma2_min", "sigma2_max", "sigma2_0"} <= set(resolved["sde"])
    assert resolved["experiments"]["adversarial"]["loss_t"] == adversarial.loss_t


@pytest.mark.parametrize(
    "raw, key, value",
    [
        ({"bogus_key": 1}, "<top level>", "bogus_key"),
        ({"datasets": {"digits": {"bogus_key": 1}}}, "datasets.digits", "bogus_key"),
        ({"datasets": {"cifar10": {"net": {"bogus_key": 1}}}}, "datasets.cifar10.net", "bogus_key"),
        ({"datasets": {"svhn": {}}}, "datasets", "svhn"),
        ({"experiments": {"semisup": {"bogus_key": 1}}}, "experiments.semisup", "bogus_key"),
        ({"experiments": {"bogus_key": {}}}, "experiments", "bogus_key"),
        ({"sde": {"kind": "subvp"}}, "sde.kind", "subvp"),
        ({"sde": {"sigma2_max": 1.5}}, "sde.sigma2_max", "1.5"),
        ({"sde": {"beta_min": 30.0}}, "sde.beta_min", "30.0"),
        ({"train": {"lr": -0.5}}, "train.lr", "-0.5 is less than or equal to the minimum of 0"),
        ({"train": {"device": "tpu"}}, "train.device", "tpu"),
        ({"experiments": {"semisup": {"settings": ["supervised@short"]}}}, "experiments.semisup.settings.0",
         "supervised@short"),
        ({"experiments": {"latent": {"grid_side": 1}}}, "experiments.latent.grid_side", "1"),
        ({"experiments": {"adversarial": {"loss_t": [1.5]}}}, "experiments.adversarial.loss_t.0", "1.5"),
        ({"fidelity": {"inception_md5": "abc"}}, "fidelity.inception_md5", "abc"),
        ({"experiments": {"scorevae": {"latent_dims": {"svhn": 4}}}}, "experiments.scorevae.latent_dims", "svhn"),
        ({"experiments": {"scorevae": {"latent_dims": {"cifar10": 0}}}}, "experiments.scorevae.latent_dims.cifar10",
         "0"),
        ({"experiments": {"lsgm": {"binarized": ["omniglot"]}}}, "experiments.lsgm.binarized", "omniglot"),
    ],
)
def test_refusals_name_the_key_and_the_value(raw, key, value):
    with pytest.raises(ConfigError) as refused:
        resolve(raw, "bad.yaml")
    assert f"bad.yaml: {key}: " in str(refused.value) and value in str(refused.value), str(refused.value)


def test_scorevae_latent_dim_per_dataset_overrides_the_shared_one():
    raw = {"experiments": {"scorevae": {"latent_dim": 384, "latent_dims": {"celeba64": 512}}}}
    s = resolve(raw).experiments.scorevae
    assert (config.latent_dim_of(s, "celeba64"), config.latent_dim_of(s, "cifar10")) == (512, 384)
    assert Config().experiments.scorevae.latent_dims == {}


def test_a_missing_folder_is_refused_only_where_the_plan_uses_it(tmp_path):
    path = str(tmp_path / "hq")
    cfg = resolve({"datasets": {"celebahq256": {"source": "folder", "path": path}, "digits": {}}})
    config.check_folders(cfg, {"digits"})
    with pytest.raises(ConfigError, match=rf"datasets\.celebahq256\.path: '{path}' is not a folder"):
        config.check_folders(cfg, {"digits", "celebahq256"})
    (tmp_path / "hq").mkdir()
    config.check_folders(cfg, {"digits", "celebahq256"})


def test_a_resolved_file_loads(tmp_path):
    path = tmp_path / "config.yaml"
    config.dump(Config(), path)
    assert config.load(path) == Config()
    assert yaml.safe_load(path.read_text())["sde"]["kind"] == "ve"


def test_a_profile_extends_another_key_by_key(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "base.yaml").write_text("name: base\ntrain: {lr: 0.01, warmup: 7}\nexperiments: {sweep: {t: [0.5]}}\n")
    (tmp_path / "top.yaml").write_text("extends: base.yaml\nname: top\ntrain: {lr: 0.5}\n")
    cfg = config.load(tmp_path / "top.yaml")
    assert (cfg.name, cfg.train.lr, cfg.train.warmup, cfg.experiments.sweep.t) == ("top", 0.5, 7, [0.5])
    assert "extends" not in to_dict(cfg)


def test_the_long_profile_is_the_default_with_budgets_raised(monkeypatch):
    monkeypatch.chdir(ROOT)
    default, long = (to_dict(config.load(ROOT / "params" / f"{p}.yaml")) for p in ("default", "long"))

    def differing(a, b, key=""):
        if isinstance(a, dict):
            return [d for k in a for d in differing(a[k], b[k], f"{key}.{k}".lstrip("."))]
        return [] if a == b else [key]

    def value(key):
        node = long
        for part in key.split("."):
            node = node[part]
        return node

    # a batch kept at the dataset's where the default raised it: the long report's run predates that raise
    kept_batch = lambda k: k.endswith("train_batch") and value(k) == value("datasets.digits.batch_size")
    assert all(k in ("name", "reports_root", "report_baseline") or k.endswith("iterations") or kept_batch(k)
               for k in differing(default, long)), differing(default, long)
    assert long["reports_root"] == "reports/long" and long["report_baseline"] == "reports/verdicts.json"


@pytest.mark.parametrize("extends, message", [("missing.yaml", "is not a parameter file"),
                                              ("top.yaml", "extends itself")])
def test_a_bad_extends_is_refused_by_name(tmp_path, monkeypatch, extends, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "top.yaml").write_text(f"extends: {extends}\nname: top\n")
    with pytest.raises(ConfigError, match=message):
        config.load(tmp_path / "top.yaml")
