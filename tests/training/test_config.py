"""training.config: the paper's defaults, validation that says what to change, overrides."""

import dataclasses
import inspect

import pytest

from training.config import CUTConfig, apply_overrides


def test_the_defaults_are_the_papers():
    config = CUTConfig()

    assert (config.threshold, config.weight_unlike, config.downsample) == (1.1, 1.0, 0.25)
    assert (config.lora_r, config.lora_alpha, config.lora_dropout) == (16, 16, 0.05)
    assert config.lora_target_modules == ["gate_proj", "up_proj", "down_proj"]
    assert (config.learning_rate, config.lr_scheduler, config.warmup_steps) == (
        4e-4,
        "cosine",
        100,
    )
    assert (config.num_epochs, config.micro_batch_size, config.gradient_accumulation_steps) == (
        1,
        1,
        8,
    )
    assert (config.cutoff_len, config.seed, config.template) == (2048, 42, "auto")


def test_every_field_has_a_default_and_a_comment():
    source = inspect.getsource(CUTConfig)
    for field in dataclasses.fields(CUTConfig):
        assert field.default is not dataclasses.MISSING or (
            field.default_factory is not dataclasses.MISSING
        )
        line = next(
            line for line in source.splitlines() if line.strip().startswith(field.name + ":")
        )
        following = source[source.index(line) :].split("\n", 3)
        assert any("#" in part for part in following[:3]), field.name


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"threshold": 0.9}, "`threshold` must be at least 1"),
        ({"threshold": float("nan")}, "`threshold` must be at least 1"),
        ({"weight_unlike": -1}, "`weight_unlike` must be a finite number >= 0"),
        ({"downsample": -0.5}, "or -1 to keep every positive"),
        ({"template": "vicuna"}, "`template` must be one of auto, chat, alpaca"),
        ({"lora_target_modules": []}, "`lora_target_modules` must name at least one module"),
        ({"learning_rate": 0}, "`learning_rate` must be > 0"),
        ({"micro_batch_size": 0}, "`micro_batch_size` must be at least 1"),
        ({"holdout_fraction": 0.7}, "`holdout_fraction` must be in [0, 0.5)"),
        ({"cutoff_len": 8}, "`cutoff_len` must be at least 16"),
        ({"precision": "fp8"}, "`precision` must be one of auto, bf16, fp32"),
    ],
)
def test_bad_values_say_what_to_change(changes, message):
    with pytest.raises(ValueError, match="Got") as caught:
        CUTConfig(**changes)

    assert message in str(caught.value)


def test_it_checks_that_the_data_file_exists(tmp_path):
    with pytest.raises(ValueError, match="does not exist. Check the path"):
        CUTConfig(data=str(tmp_path / "missing.jsonl"))
    with pytest.raises(ValueError, match="is not a file"):
        CUTConfig(data=str(tmp_path))


def test_overrides_are_parsed_by_the_fields_type(tmp_path):
    data = tmp_path / "t.jsonl"
    data.write_text("{}\n")

    config = apply_overrides(
        CUTConfig(),
        [
            "--threshold=1.2",
            "--weight-unlike=0.5",
            "max_steps=7",
            "--merge=true",
            "--lora_target_modules=q_proj,v_proj",
            f"--data={data}",
            "--base_model=none",
        ],
    )

    assert config.threshold == 1.2 and config.weight_unlike == 0.5
    assert config.max_steps == 7 and config.merge is True
    assert config.lora_target_modules == ["q_proj", "v_proj"]
    assert config.data == str(data) and config.base_model is None


def test_overrides_accept_a_dict():
    config = apply_overrides(CUTConfig(), {"threshold": "1.3", "split_views": False})

    assert config.threshold == 1.3 and config.split_views is False


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("--treshold=1.2", "Unknown config key 'treshold'. Did you mean threshold?"),
        ("--max_steps=ten", "Config key 'max_steps' must be an integer. Got 'ten'."),
        ("--merge=maybe", "Config key 'merge' must be true or false."),
        ("--threshold=high", "Config key 'threshold' must be a number."),
        ("--threshold", "must look like --name=value"),
        ("--threshold=0.5", "`threshold` must be at least 1"),
    ],
)
def test_bad_overrides_name_the_key(override, message):
    with pytest.raises(ValueError) as caught:
        apply_overrides(CUTConfig(), [override])

    assert message in str(caught.value)


def test_overrides_never_evaluate_code():
    with pytest.raises(ValueError, match="must be a number"):
        apply_overrides(CUTConfig(), ["--threshold=__import__('os').getcwd()"])


def test_it_saves_and_loads_json_even_when_the_data_file_is_gone(tmp_path):
    data = tmp_path / "t.jsonl"
    data.write_text("{}\n")
    config = CUTConfig(data=str(data), threshold=1.25, lora_target_modules=["q_proj"])
    config.save(tmp_path / "cut_config.json")
    data.unlink()

    loaded = CUTConfig.load(tmp_path / "cut_config.json")

    assert loaded == config
    with pytest.raises(ValueError, match="does not exist"):
        CUTConfig.load(tmp_path / "cut_config.json", check_paths=True)


def test_loading_a_config_with_unknown_fields_fails(tmp_path):
    (tmp_path / "c.json").write_text('{"threshold": 1.2, "beta": 0.1}')

    with pytest.raises(ValueError, match="unknown config fields: beta"):
        CUTConfig.load(tmp_path / "c.json")
