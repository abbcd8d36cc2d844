"""Tests of the parameter files: defaults, merging, required keys, unknown keys, types and JSON errors."""

from __future__ import annotations

import json
import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from argminn_plugin.config import (
    COMPARE_DEFAULTS,
    FIT_DEFAULTS,
    MODEL_KEYS,
    PIPELINE_DEFAULTS,
    REQUIRED,
    SIMULATE_DEFAULTS,
    embedded_compare_parameters,
    embedded_default_parameters,
    merge_parameters,
    read_parameters,
)
from argminn_plugin.model import ARGMINN

MINIMAL_FIT = {"sequences": "genome.fa", "name": "run"}


def merge_quietly(parameters, defaults, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning expected
        return merge_parameters(parameters, defaults, **kwargs)


# ---------------------------------------------------------------------------------------------
# Defaults


def test_required_keys_of_each_command():
    assert sorted(k for k, v in FIT_DEFAULTS.items() if v is REQUIRED) == ["name", "sequences"]
    assert sorted(k for k, v in SIMULATE_DEFAULTS.items() if v is REQUIRED) == ["output_dir"]
    assert not [k for k, v in PIPELINE_DEFAULTS.items() if v is REQUIRED]
    assert repr(REQUIRED) == "REQUIRED"


def test_model_defaults_build_the_published_model():
    kwargs = {k: FIT_DEFAULTS[k] for k in MODEL_KEYS}
    model = ARGMINN(**kwargs)
    # The published configuration: 8 filters of width 10 and four attention layers (49,017 parameters).
    assert sum(p.numel() for p in model.parameters()) == 49017
    assert set(MODEL_KEYS) <= set(model.config)


def test_bpnet_key_names_are_used():
    for key in ("sequences", "loci", "negatives", "signals", "controls", "in_window", "out_window",
                "training_chroms", "validation_chroms", "test_chroms", "name", "batch_size", "max_epochs",
                "lr", "random_state", "device", "verbose"):
        assert key in FIT_DEFAULTS, key


def test_embedded_default_parameters_are_valid_and_ship_their_data():
    parameters = embedded_default_parameters()
    merged = merge_quietly(parameters, {**PIPELINE_DEFAULTS, "test_sequences": None})
    for key in ("sequences", "test_sequences"):
        with open(merged[key], "rb") as handle:
            assert handle.read(2) == b"\x1f\x8b", f"{key} should be a gzip file shipped in the package"
    assert json.loads(json.dumps(parameters)) == parameters


def test_embedded_compare_parameters_hold_out_enough_positives():
    """``argminn compare`` with no arguments: ARGMINN trains as the pipeline default, and the held-out
    split of the shipped training file has at least as many positives as are compared."""
    from argminn_plugin.data import read_sequence_table

    parameters = embedded_compare_parameters()
    merged = merge_quietly(parameters, {**COMPARE_DEFAULTS, "test_sequences": None})
    assert merged["test_sequences"] is None  # the shipped 500-positive fold is too small for MoDISco
    pipeline = embedded_default_parameters()
    for key in ("max_sequences", "max_epochs", "n_filters", "filter_width", "n_attention_layers", "schedule"):
        assert merged[key] == pipeline[key], key
    table = read_sequence_table(merged["sequences"])
    n_positive_groups = int((table.labels == 1).sum())  # a positive and its shuffle form one group
    assert (table.labels == 1).all()
    assert round(merged["test_fraction"] * n_positive_groups) >= merged["compare_max_sequences"] >= 1000
    assert merged["baseline_lr"] > COMPARE_DEFAULTS["baseline_lr"] and merged["baseline_epochs"] >= 10
    assert json.loads(json.dumps(parameters)) == parameters


# ---------------------------------------------------------------------------------------------
# merge_parameters


def test_merge_lays_parameters_over_defaults():
    merged = merge_quietly({**MINIMAL_FIT, "max_epochs": 3, "lr": 1, "schedule": {"filter_l1": 0.1}}, FIT_DEFAULTS)
    assert merged["max_epochs"] == 3 and merged["lr"] == 1 and merged["schedule"] == {"filter_l1": 0.1}
    for key, value in FIT_DEFAULTS.items():
        if key not in ("sequences", "name", "max_epochs", "lr", "schedule"):
            assert merged[key] == value, key
    assert set(merged) == set(FIT_DEFAULTS)


def test_merge_does_not_change_its_inputs():
    parameters = dict(MINIMAL_FIT)
    defaults = dict(FIT_DEFAULTS)
    merge_quietly(parameters, defaults)
    assert parameters == MINIMAL_FIT and defaults == FIT_DEFAULTS


@pytest.mark.parametrize("missing", [["sequences"], ["name"], ["sequences", "name"]])
def test_missing_required_key_is_named(missing):
    parameters = {k: v for k, v in MINIMAL_FIT.items() if k not in missing}
    with pytest.raises(ValueError, match="missing required") as info:
        merge_parameters(parameters, FIT_DEFAULTS)
    for key in missing:
        assert key in str(info.value)
    for key in set(MINIMAL_FIT) - set(missing):
        assert key not in str(info.value)


def test_explicit_null_does_not_satisfy_nothing_but_is_allowed_for_optional_keys():
    merged = merge_quietly({**MINIMAL_FIT, "device": None, "early_stopping": None}, FIT_DEFAULTS)
    assert merged["device"] is None and merged["early_stopping"] is None


def test_unknown_keys_warn_and_are_dropped():
    with pytest.warns(UserWarning, match="max_epoch") as record:
        merged = merge_parameters({**MINIMAL_FIT, "max_epoch": 5, "n_filter": 4}, FIT_DEFAULTS, source="p.json")
    message = str(record[0].message)
    assert "n_filter" in message and "p.json" in message
    assert "max_epoch" not in merged and "n_filter" not in merged
    assert merged["max_epochs"] == FIT_DEFAULTS["max_epochs"]


@pytest.mark.parametrize(
    "key, value",
    [
        ("max_epochs", "10"),
        ("max_epochs", 2.5),
        ("max_epochs", True),
        ("batch_size", [64]),
        ("lr", "0.001"),
        ("lr", False),
        ("reverse_complement", "yes"),
        ("reverse_complement", 1),
        ("head", 1),
        ("summits", 3),
        ("schedule", ["simulation"]),
        ("name", None),  # a required key given as null is still missing
    ],
)
def test_wrong_type_names_the_key(key, value):
    with pytest.raises(ValueError) as info:
        merge_parameters({**MINIMAL_FIT, key: value}, FIT_DEFAULTS, source="params.json")
    message = str(info.value)
    assert key in message
    assert "params.json" in message


@pytest.mark.parametrize(
    "key, value",
    [("lr", 1), ("lr", 0.5), ("summits", True), ("summits", "auto"), ("schedule", "genomic"),
     ("schedule", {"filter_overlap": [0, 1]}), ("early_stopping", 3), ("test_fraction", 0)],
)
def test_accepted_types(key, value):
    assert merge_quietly({**MINIMAL_FIT, key: value}, FIT_DEFAULTS)[key] == value


@settings(max_examples=40, deadline=None)
@given(
    epochs=st.integers(0, 1000),
    lr=st.one_of(st.integers(0, 10), st.floats(0, 1, allow_nan=False)),
    rc=st.booleans(),
    name=st.text(min_size=1, max_size=10),
)
def test_merge_property(epochs, lr, rc, name):
    merged = merge_quietly({"sequences": "x.fa", "name": name, "max_epochs": epochs, "lr": lr,
                            "reverse_complement": rc}, FIT_DEFAULTS)
    assert (merged["max_epochs"], merged["lr"], merged["reverse_complement"], merged["name"]) == (epochs, lr, rc, name)


# ---------------------------------------------------------------------------------------------
# Files


def test_valid_file_merges(tmp_path):
    path = tmp_path / "fit.json"
    path.write_text(json.dumps({**MINIMAL_FIT, "n_filters": 6, "training_chroms": ["chr1", "chr2"]}, indent=2))
    merged = merge_quietly(path, FIT_DEFAULTS)
    assert merged["n_filters"] == 6 and merged["training_chroms"] == ["chr1", "chr2"]
    assert merged["sequences"] == "genome.fa" and merged["lr"] == FIT_DEFAULTS["lr"]
    assert merge_quietly(str(path), FIT_DEFAULTS) == merged
    assert read_parameters(path) == {**MINIMAL_FIT, "n_filters": 6, "training_chroms": ["chr1", "chr2"]}


def test_errors_from_a_file_name_the_file(tmp_path):
    path = tmp_path / "fit.json"
    path.write_text(json.dumps({"sequences": "genome.fa"}))
    with pytest.raises(ValueError, match="name") as info:
        merge_parameters(path, FIT_DEFAULTS)
    assert str(path) in str(info.value)
    path.write_text(json.dumps({**MINIMAL_FIT, "max_epochs": "ten"}))
    with pytest.raises(ValueError, match="max_epochs") as info:
        merge_parameters(path, FIT_DEFAULTS)
    assert str(path) in str(info.value)


def test_malformed_json_names_file_and_line(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{\n  "sequences": "genome.fa",\n  "name": "run",\n  "max_epochs": 3,,\n}\n')
    for call in (lambda: read_parameters(path), lambda: merge_parameters(path, FIT_DEFAULTS)):
        with pytest.raises(ValueError) as info:
            call()
        message = str(info.value)
        assert str(path) in message
        assert "line 4" in message


def test_file_must_hold_an_object_and_exist(tmp_path):
    path = tmp_path / "list.json"
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="JSON object"):
        read_parameters(path)
    with pytest.raises(ValueError, match="does not exist"):
        read_parameters(tmp_path / "absent.json")


def test_simulate_defaults_merge():
    merged = merge_quietly({"output_dir": "out", "n_positives": 10}, SIMULATE_DEFAULTS)
    assert merged["n_positives"] == 10 and merged["grammar"] == "single" and merged["output_dir"] == "out"
    with pytest.raises(ValueError, match="output_dir"):
        merge_parameters({}, SIMULATE_DEFAULTS)
    with pytest.raises(ValueError, match="n_negatives"):
        merge_parameters({"output_dir": "out", "n_negatives": 1.5}, SIMULATE_DEFAULTS)


def test_fourier_weight_accepts_a_per_epoch_list():
    from argminn_plugin.config import FIT_DEFAULTS, merge_parameters

    base = {"sequences": "x.fa", "name": "n"}
    assert merge_parameters({**base, "fourier_weight": [0, 0, 1]}, FIT_DEFAULTS)["fourier_weight"] == [0, 0, 1]
    assert merge_parameters({**base, "fourier_weight": 2}, FIT_DEFAULTS)["fourier_weight"] == 2
    with pytest.raises(ValueError, match="fourier_weight"):
        merge_parameters({**base, "fourier_weight": "strong"}, FIT_DEFAULTS)
