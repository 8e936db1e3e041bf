from dataclasses import dataclass, field
from typing import Literal

import pytest

from encoderlab import ConfigError
from encoderlab.config import load_config, parse_overrides, save_config, to_dict


@dataclass
class Inner:
    n_layers: int = 2
    dropout: float = 0.1


@dataclass
class Outer:
    lr: float = 1e-3
    name: str = "run"
    schedule: Literal["linear", "cosine"] = "linear"
    use_amp: bool = False
    max_steps: int | None = None
    sizes: tuple[int, ...] = (1, 2)
    model: Inner = field(default_factory=Inner)


def test_yaml_then_overrides_with_types(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("lr: 0.1\nmodel:\n  n_layers: 4\n")
    cfg = load_config(Outer, path, ["lr=1e-4", "model.dropout=0", "use_amp=true", "max_steps=100",
                                    "schedule=cosine", "sizes=3,4"])
    assert cfg.lr == 1e-4 and isinstance(cfg.lr, float)
    assert cfg.model == Inner(n_layers=4, dropout=0.0)
    assert cfg.use_amp is True and cfg.max_steps == 100 and cfg.schedule == "cosine" and cfg.sizes == (3, 4)
    assert load_config(Outer, None, ["max_steps=none"]).max_steps is None


def test_unknown_key_lists_the_valid_ones():
    with pytest.raises(ConfigError, match=r"unknown config key 'lrr'.*Valid keys: lr, max_steps, model"):
        load_config(Outer, None, ["lrr=1"])
    with pytest.raises(ConfigError, match=r"unknown config key 'model.depth'.*dropout, n_layers"):
        load_config(Outer, None, ["model.depth=3"])


@pytest.mark.parametrize("override,message", [
    ("lr=fast", "lr: expected a number"),
    ("model.n_layers=2.5", "expected an integer"),
    ("use_amp=maybe", "expected true or false"),
    ("schedule=exp", "'exp' is not one of 'linear', 'cosine'"),
    ("nokey", "not of the form key=value"),
])
def test_bad_values_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(Outer, None, [override])


def test_missing_or_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(Outer, tmp_path / "none.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config(Outer, tmp_path / "list.yaml")


def test_save_and_reload_round_trip(tmp_path):
    cfg = load_config(Outer, None, ["model.n_layers=6", "name=x"])
    save_config(cfg, tmp_path / "saved.yaml")
    assert load_config(Outer, tmp_path / "saved.yaml") == cfg
    assert to_dict(cfg)["model"] == {"n_layers": 6, "dropout": 0.1}


def test_parse_overrides_nests_dotted_keys():
    assert parse_overrides(["a.b=1", "a.c=x", "d=2"]) == {"a": {"b": "1", "c": "x"}, "d": "2"}


def test_broken_yaml_and_bad_optional_values_are_one_line_naming_the_line(tmp_path):
    (tmp_path / "bad.yaml").write_text("lr: 0.1\nsizes: [1, 2\n")
    with pytest.raises(ConfigError) as info:
        load_config(Outer, tmp_path / "bad.yaml")
    message = str(info.value)
    assert "\n" not in message and "bad.yaml:" in message and "not valid YAML" in message
    assert "flow sequence that starts on line 2" in message
    (tmp_path / "indent.yaml").write_text("lr: 0.1\n  name: x\n")
    with pytest.raises(ConfigError, match=r"indent\.yaml:2: the config file is not valid YAML \(mapping values"):
        load_config(Outer, tmp_path / "indent.yaml")
    with pytest.raises(ConfigError) as info:
        load_config(Outer, None, ["max_steps=abc"])
    assert str(info.value) == "max_steps: expected an integer, got 'abc'"
