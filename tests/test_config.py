import dataclasses
from pathlib import Path

import pytest
import yaml

from cnn_lab.config import FIELD_NAMES, PROFILES, ConfigError, RunConfig, parse_overrides
from cnn_lab.study import STUDY_TABLE, STUDY_VARIANTS
from cnn_lab.variant import from_params, load_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", STUDY_VARIANTS)
def test_study_variant_files_hold_the_study_settings(name):
    path = ROOT / "parameters" / f"{name}.yaml"
    raw = yaml.safe_load(path.read_text())
    assert set(raw) <= set(FIELD_NAMES)  # usable as papermill -f input
    cfg = load_config(path, profile="smoke")
    assert (cfg.exp_name, cfg.model, cfg.optimizer, cfg.lr) == (name, *STUDY_TABLE[name][:3])


def test_profile_fills_only_what_is_not_set_and_explicit_settings_win(tmp_path):
    cfg = load_config(ROOT / "parameters/cnn_resnet18_adam.yaml", profile="cpu")
    assert cfg.profile == "cpu" and cfg.epochs == PROFILES["cpu"]["deep"]["epochs"]
    base = load_config(ROOT / "parameters/cnn_baseline.yaml", profile="cpu")
    assert base.train_size == 0  # baselines run on the whole training set on the cpu profile
    cfg = load_config(ROOT / "parameters/cnn_resnet18_adam.yaml", profile="cpu", overrides={"epochs": 7})
    assert cfg.epochs == 7
    f = tmp_path / "v.yaml"
    f.write_text("model: resnet18\nbatch_size: 32\n")
    assert load_config(f, profile="full").batch_size == 32


def test_auto_profile_picks_cpu_without_a_gpu(monkeypatch):
    import cnn_lab.config as c

    monkeypatch.setattr(c, "has_gpu", lambda: False)
    assert load_config(None, profile="auto").profile == "cpu"
    monkeypatch.setattr(c, "has_gpu", lambda: True)
    assert load_config(None, profile="auto").profile == "full"


def test_defaults_are_the_smoke_profile_and_fully_resolved():
    cfg = from_params({})
    assert cfg.profile == "smoke"
    # the smoke profile's BaselineNet budget as README states it, written out (not read from PROFILES,
    # so that a change to the profile is seen here)
    sizes = {f: getattr(cfg, f) for f in ("epochs", "batch_size", "train_size", "test_size", "seeds")}
    assert sizes == {"epochs": 3, "batch_size": 64, "train_size": 4000, "test_size": 1000, "seeds": 1}
    assert (cfg.model, cfg.optimizer, cfg.lr, cfg.seed_list()) == ("baseline", "adam", 0.001, [0])


def test_overrides_are_typed():
    assert parse_overrides(["epochs=3", "lr=0.01", "augment=true", "data=", "seeds=[0, 1]"]) == {
        "epochs": 3, "lr": 0.01, "augment": True, "data": "", "seeds": [0, 1]}
    with pytest.raises(ConfigError, match="expected field=value"):
        parse_overrides(["epochs"])


BAD = [
    ("lr: 0.001\nfoo: 1\n", "unknown field 'foo'"),
    ("lr: fast\n", "field 'lr' must be a number"),
    ("epochs: 2.5\n", "field 'epochs' must be an integer"),
    ("augment: 1\n", "field 'augment' must be true or false"),
    ("model: resnet50\n", "field 'model' must be one of baseline"),
    ("optimizer: rmsprop\n", "field 'optimizer' must be one of sgd, adam"),
    ("lr: 0\n", "field 'lr' must be a positive number"),
    ("lr: -0.1\n", "field 'lr' must be a positive number"),
    ("epochs: 0\n", "field 'epochs' must be a positive integer"),
    ("batch_size: -4\n", "field 'batch_size' must be a positive integer"),
    ("seeds: 0\n", "field 'seeds' must be a positive count"),
    ("device: tpu\n", "field 'device' must be auto, cpu, cuda"),
    ("- a\n- b\n", "must hold a mapping"),
    ("lr: [1\n", "not valid YAML"),
    ("", "holds no settings (the file is empty"),
    ("# only a comment\n\n", "holds no settings"),
    ("{}\n", "holds no settings"),
    ("42\n", "must hold a mapping of field: value, got int"),
]


@pytest.mark.parametrize("overrides", [None, {"out_dir": "elsewhere", "seed": 3}], ids=["file", "file+set"])
@pytest.mark.parametrize("text,expected", BAD)
def test_bad_files_give_one_line_naming_file_and_field(tmp_path, text, expected, overrides):
    # the file is blamed even when --set/--out add a later layer that is itself fine
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(f, profile="smoke", overrides=overrides)
    msg = str(err.value)
    assert msg.startswith(str(f)) and expected in msg and "\n" not in msg


def test_missing_or_unreadable_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml: no such file"):
        load_config(tmp_path / "nope.yaml")
    (tmp_path / "dir.yaml").mkdir()
    with pytest.raises(ConfigError, match=r"dir.yaml: cannot read it \(IsADirectoryError"):
        load_config(tmp_path / "dir.yaml")
    (tmp_path / "latin1.yaml").write_bytes("exp_name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin1.yaml: cannot read it \(UnicodeDecodeError"):
        load_config(tmp_path / "latin1.yaml")


def test_exponent_without_a_dot_is_a_number(tmp_path):
    # PyYAML (YAML 1.1) reads 1e-3 as a string; users mean 0.001
    f = tmp_path / "v.yaml"
    f.write_text("lr: 1e-3\nweight_decay: 5e-4\n")
    cfg = load_config(f, profile="smoke", overrides=parse_overrides(["momentum=9e-1"]))
    assert (cfg.lr, cfg.weight_decay, cfg.momentum) == (0.001, 0.0005, 0.9)
    with pytest.raises(ConfigError, match="field 'lr' must be a number, got 'fast'"):
        load_config(f, overrides={"lr": "fast"})


def test_bad_override_names_the_command_line():
    with pytest.raises(ConfigError, match=r"^--set: field 'epochs' must be a positive integer"):
        load_config(ROOT / "parameters/cnn_baseline.yaml", overrides={"epochs": -1})


def test_seed_list_and_run_dir():
    cfg = RunConfig(seed=3, seeds=2, out_dir="o", exp_name="e")
    assert cfg.seed_list() == [3, 4]
    assert dataclasses.replace(cfg, seeds=[7, 9]).seed_list() == [7, 9]
    assert cfg.run_dir(4) == Path("o/e/seed4")


# ---------------------------------------------------------------- model families and budgets


@pytest.fixture
def user_models(monkeypatch):
    """Register models for one test only (the registry and the family cache are restored)."""
    import torch.nn as nn

    import cnn_lab.models as m
    import cnn_lab.variant as v

    monkeypatch.setattr(m, "_REGISTRY", dict(m._REGISTRY))
    monkeypatch.setattr(m, "_FAMILY", dict(m._FAMILY))
    v.model_family.cache_clear()

    def convnet(width: int):
        def build(num_classes: int = 10) -> nn.Module:
            return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, width, 3, padding=1),
                                 nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes))
        return build

    m.register_model("user_tiny")(convnet(4))  # 0.2 M MACs per image
    m.register_model("user_vgg")(convnet(128))  # 154.5 M MACs per image
    m.register_model("user_declared", family="small")(convnet(128))
    yield
    v.model_family.cache_clear()


def test_built_in_models_register_their_family():
    from cnn_lab.variant import model_family

    assert model_family("baseline") == ("small", "registered")
    for name in ("resnet18", "se_resnet18", "densenet121", "densenet121_cifar"):
        assert model_family(name) == ("deep", "registered")


def test_an_undeclared_model_gets_the_budget_its_measured_cost_implies(user_models):
    from cnn_lab.variant import SMALL_MACS_LIMIT, budget_line, model_family

    family, why = model_family("user_vgg")
    assert family == "deep" and float(why.split()[0]) * 1e6 >= SMALL_MACS_LIMIT
    assert model_family("user_tiny")[0] == "small"
    assert model_family("user_declared") == ("small", "registered")  # a declared family wins over cost
    vgg = load_config(None, profile="cpu", overrides={"model": "user_vgg", "exp_name": "cnn_user_vgg"})
    deep = PROFILES["cpu"]["deep"]
    assert (vgg.epochs, vgg.train_size, vgg.test_size) == (deep["epochs"], deep["train_size"], deep["test_size"])
    assert budget_line(vgg).startswith("cnn_user_vgg: deep budget (cpu, 154.5 M MACs/image >= 10 M): 3 epochs")
    tiny = load_config(None, profile="cpu", overrides={"model": "user_tiny"})
    assert tiny.train_size == PROFILES["cpu"]["small"]["train_size"] == 0


def test_budget_line_says_what_the_variant_got():
    from cnn_lab.variant import budget_line

    cfg = load_config(ROOT / "parameters/cnn_resnet18_adam.yaml", profile="cpu")
    assert budget_line(cfg) == "cnn_resnet18_adam: deep budget (cpu): 3 epochs, batch 64, 1,000/1,000 images, 2 seeds"
    cfg = load_config(ROOT / "parameters/cnn_baseline.yaml", profile="cpu")
    assert budget_line(cfg) == "cnn_baseline: small budget (cpu): 8 epochs, batch 128, all/all images, 2 seeds"


def test_a_family_must_be_known(user_models):
    from cnn_lab.models import register_model

    with pytest.raises(ValueError, match="family must be one of small, deep"):
        register_model("user_odd", family="huge")


def test_run_config_is_frozen():
    cfg = from_params({})
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.epochs = 99
    assert dataclasses.replace(cfg, epochs=99).epochs == 99 and cfg.epochs != 99


@pytest.mark.parametrize("field,word,expected", [
    ("amp", "off", "off"), ("amp", "on", "bf16"), ("amp", "bf16", "bf16"), ("amp", "false", "off"),
    ("channels_last", "off", "off"), ("channels_last", "on", "on"), ("channels_last", "yes", "on"),
    ("channels_last", "auto", "auto"),
])
def test_on_off_switches_read_as_words_everywhere(tmp_path, field, word, expected):
    # YAML 1.1 reads on/off/yes/no as booleans; docs/gpus.md tells users to type them
    import papermill.cli

    f = tmp_path / "v.yaml"
    f.write_text(f"{field}: {word}\n")
    assert getattr(load_config(f, profile="smoke"), field) == expected  # variant file
    sets = parse_overrides([f"{field}={word}"])  # --set
    assert getattr(load_config(None, profile="smoke", overrides=sets), field) == expected
    # papermill -p (its own typing), -y / -f (YAML)
    assert getattr(from_params({field: papermill.cli._resolve_type(word)}), field) == expected
    assert getattr(from_params(yaml.safe_load(f"{field}: {word}")), field) == expected


def test_switches_still_refuse_other_values():
    with pytest.raises(ConfigError, match="field 'amp' must be one of auto, bf16, off, got 'fp16'"):
        load_config(None, overrides={"amp": "fp16"})
    with pytest.raises(ConfigError, match="field 'channels_last' must be a string, got 1"):
        load_config(None, overrides={"channels_last": 1})


def test_auto_profile_follows_the_configs_device(monkeypatch):
    # F10: a CPU run on a GPU box is not given the full profile
    import cnn_lab.config as c

    monkeypatch.setattr(c, "has_gpu", lambda: True)
    assert load_config(None, profile="auto", overrides={"device": "cpu"}).profile == "cpu"
    assert load_config(None, profile="auto", overrides={"device": "cuda:0"}).profile == "full"
    assert load_config(None, profile="auto").profile == "full"
