"""Tests of saving and loading: state dict + JSON config, whole-model pickles, and their errors."""

from __future__ import annotations

import json
import os

import pytest
import torch
import torch.nn.functional as F

import argminn_plugin
from argminn_plugin import ARGMINN
from argminn_plugin.io import (
    CLASS_PATH,
    FORMAT_VERSION,
    atomic_write,
    config_path,
    load_bpnet_compatible,
    load_model,
    save_bpnet_compatible,
    save_model,
)


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def random_one_hot(n: int, length: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return F.one_hot(torch.randint(0, 4, (n, length), generator=g), 4).permute(0, 2, 1).float()


def trained_like(model: ARGMINN, seed: int = 1) -> ARGMINN:
    """Give every parameter and BatchNorm statistic a non-default value, so a round trip that drops one shows."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
        bn = model.scanner.batch_norm
        bn.running_mean.uniform_(0.0, 1.0, generator=g)
        bn.running_var.uniform_(0.5, 2.0, generator=g)
        bn.num_batches_tracked.fill_(17)
    return model.eval()


def binary_model() -> ARGMINN:
    torch.manual_seed(0)
    return trained_like(ARGMINN(n_filters=5, filter_width=8, n_attention_layers=2, n_heads=2, n_tasks=3,
                                stream_init="randn", stream_seed=4, attention_scores="query_key", name="bin"))


def profile_model() -> ARGMINN:
    torch.manual_seed(0)
    return trained_like(ARGMINN(n_filters=4, filter_width=6, n_attention_layers=1, n_outputs=2, n_control_tracks=1,
                                trimming=20, footprint_width=11, count_loss_weight=3.0, name="prof"))


def outputs(model, X, X_ctl=None):
    model.eval()
    with torch.no_grad():
        y = model(X) if X_ctl is None else model(X, X_ctl)
    return y if isinstance(y, tuple) else (y,)


def assert_same_outputs(a, b, X, X_ctl=None):
    for left, right in zip(outputs(a, X, X_ctl), outputs(b, X, X_ctl)):
        assert torch.equal(left, right)


# ---------------------------------------------------------------------------------------------
# save_model / load_model


@pytest.mark.parametrize("make, n_ctl", [(binary_model, None), (profile_model, 1)], ids=["binary", "profile"])
def test_round_trip_gives_identical_outputs(tmp_path, make, n_ctl):
    model = make()
    X = random_one_hot(6, 80, seed=2)
    X_ctl = None if n_ctl is None else torch.rand(6, n_ctl, 80, generator=torch.Generator().manual_seed(3))
    path = tmp_path / "model.pt"
    assert save_model(model, path) == path
    loaded = load_model(path)
    assert type(loaded) is ARGMINN
    assert loaded.config == model.config
    assert loaded.head_type == model.head_type
    assert_same_outputs(model, loaded, X, X_ctl)
    original, restored = model.state_dict(), loaded.state_dict()
    assert original.keys() == restored.keys()
    for key in original:
        assert torch.equal(original[key], restored[key]), key


def test_state_file_is_a_plain_state_dict(tmp_path):
    model = binary_model()
    save_model(model, tmp_path / "m.pt")
    state = torch.load(tmp_path / "m.pt", weights_only=True)
    assert isinstance(state, dict)
    assert state.keys() == model.state_dict().keys()
    for key, value in model.state_dict().items():
        assert torch.equal(state[key], value)


def test_config_json_contents(tmp_path):
    model = profile_model()
    path = save_model(model, str(tmp_path / "m.pt"))
    assert config_path(path) == tmp_path / "m.pt.json"
    meta = json.loads((tmp_path / "m.pt.json").read_text())
    assert meta["format_version"] == FORMAT_VERSION
    assert meta["class"] == "argminn_plugin.model.ARGMINN" == CLASS_PATH
    assert meta["argminn_plugin_version"] == argminn_plugin.__version__
    assert meta["torch_version"] == torch.__version__
    assert meta["config"] == model.config
    # The config alone rebuilds the architecture.
    rebuilt = ARGMINN(**meta["config"])
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {
        k: v.shape for k, v in model.state_dict().items()
    }
    for key in ("n_filters", "filter_width", "n_outputs", "n_control_tracks", "trimming"):
        assert meta["config"][key] == getattr(model, key)
    assert meta["config"]["head"] == "profile"
    assert meta["config"]["count_loss_weight"] == 3.0


def test_load_model_map_location(tmp_path):
    save_model(binary_model(), tmp_path / "m.pt")
    loaded = load_model(tmp_path / "m.pt", map_location=torch.device("cpu"))
    assert all(p.device.type == "cpu" for p in loaded.parameters())


def test_load_model_returns_eval_mode_with_batch_independent_predictions(tmp_path):
    model = binary_model().train()
    save_model(model, tmp_path / "m.pt")
    loaded = load_model(tmp_path / "m.pt")
    assert not loaded.training
    X = torch.nn.functional.one_hot(torch.randint(0, 4, (6, 120), generator=torch.Generator().manual_seed(0)),
                                    4).transpose(1, 2).float()
    with torch.no_grad():  # eval-mode BatchNorm: an example's prediction does not depend on its batch
        torch.testing.assert_close(loaded(X)[:2], loaded(X[:2]))


def test_save_model_rejects_other_modules(tmp_path):
    with pytest.raises(ValueError, match="ARGMINN"):
        save_model(torch.nn.Linear(2, 2), tmp_path / "m.pt")
    assert not (tmp_path / "m.pt").exists()


# ---------------------------------------------------------------------------------------------
# load_model errors


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "m.pt"
    save_model(binary_model(), path)
    return path


def _edit_meta(path, **changes):
    meta_file = config_path(path)
    meta = json.loads(meta_file.read_text())
    meta.update(changes)
    meta_file.write_text(json.dumps(meta))
    return meta_file


def test_missing_weights_or_config(saved):
    os.unlink(config_path(saved))
    with pytest.raises(ValueError, match="m.pt.json") as info:
        load_model(saved)
    assert "missing" in str(info.value)
    with pytest.raises(ValueError, match="nothing.pt"):
        load_model(saved.parent / "nothing.pt")


def test_malformed_json_names_file_and_line(saved):
    config_path(saved).write_text('{\n  "format_version": 1,\n  "class": ,\n  "config": {}\n}\n')
    with pytest.raises(ValueError) as info:
        load_model(saved)
    message = str(info.value)
    assert str(config_path(saved)) in message
    assert "line 3" in message


def test_config_of_another_class(saved):
    meta_file = _edit_meta(saved, **{"class": "bpnetlite.bpnet.BPNet"})
    with pytest.raises(ValueError, match="bpnetlite.bpnet.BPNet") as info:
        load_model(saved)
    assert str(meta_file) in str(info.value)
    config_path(saved).write_text("[1, 2, 3]")
    with pytest.raises(ValueError, match="m.pt.json"):
        load_model(saved)


@pytest.mark.parametrize("version", [0, 2, "1", None])
def test_wrong_format_version(saved, version):
    meta_file = _edit_meta(saved, format_version=version)
    with pytest.raises(ValueError, match="format_version") as info:
        load_model(saved)
    assert str(meta_file) in str(info.value)


def test_truncated_weights_file(saved):
    data = saved.read_bytes()
    saved.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError) as info:
        load_model(saved)
    assert str(saved) in str(info.value)


def test_weights_that_do_not_fit_the_config(saved):
    other = ARGMINN(n_filters=3, filter_width=8, n_attention_layers=1)
    torch.save(other.state_dict(), saved)
    with pytest.raises(ValueError, match="do not match") as info:
        load_model(saved)
    assert str(saved) in str(info.value)
    torch.save([torch.zeros(2)], saved)
    with pytest.raises(ValueError, match="m.pt"):
        load_model(saved)


@pytest.mark.parametrize("config", [None, [1, 2], {"n_filters": 0}, {"no_such_keyword": 1}])
def test_config_that_does_not_build_a_model(saved, config):
    meta = json.loads(config_path(saved).read_text())
    if config is None:
        del meta["config"]
    else:
        meta["config"] = config
    config_path(saved).write_text(json.dumps(meta))
    with pytest.raises(ValueError) as info:
        load_model(saved)
    assert str(config_path(saved)) in str(info.value)


def test_load_model_never_unpickles_code(saved):
    # A whole-module pickle next to a valid config is refused by the weights-only loader.
    torch.save(binary_model(), saved)
    with pytest.raises(ValueError, match="could not read model weights"):
        load_model(saved)


# ---------------------------------------------------------------------------------------------
# Atomic writes


def _failing_save(obj, f, *args, **kwargs):
    """Write half of what torch.save would write, then fail, as a full disk or a kill would."""
    import io

    buffer = io.BytesIO()
    _REAL_SAVE(obj, buffer)
    data = buffer.getvalue()
    with open(f, "wb") as handle:
        handle.write(data[: len(data) // 2])
    raise OSError("disk full")


_REAL_SAVE = torch.save


def test_failed_save_leaves_the_existing_file_untouched(tmp_path, monkeypatch):
    good = binary_model()
    path = tmp_path / "m.pt"
    save_model(good, path)
    weights_before = path.read_bytes()
    config_before = config_path(path).read_text()

    monkeypatch.setattr(torch, "save", _failing_save)
    other = profile_model()
    with pytest.raises(OSError, match="disk full"):
        save_model(other, path)
    with pytest.raises(OSError, match="disk full"):
        save_bpnet_compatible(other, tmp_path / "whole.torch")
    monkeypatch.undo()

    assert path.read_bytes() == weights_before
    assert config_path(path).read_text() == config_before
    assert not (tmp_path / "whole.torch").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt", "m.pt.json"], "no temporary file is left"
    assert_same_outputs(good, load_model(path), random_one_hot(3, 60))


def test_atomic_write_replaces_and_cleans_up(tmp_path):
    target = tmp_path / "sub" / "file.txt"
    atomic_write(target, lambda tmp: open(tmp, "w").write("first"))
    assert target.read_text() == "first"

    def broken(tmp):
        with open(tmp, "w") as handle:
            handle.write("partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, broken)
    assert target.read_text() == "first"
    assert [p.name for p in target.parent.iterdir()] == ["file.txt"]


# ---------------------------------------------------------------------------------------------
# Whole-model pickles for the bpnet commands


@pytest.mark.parametrize("make, n_ctl", [(binary_model, None), (profile_model, 1)], ids=["binary", "profile"])
def test_bpnet_compatible_pickle(tmp_path, make, n_ctl):
    model = make()
    X = random_one_hot(5, 80, seed=4)
    X_ctl = None if n_ctl is None else torch.rand(5, n_ctl, 80, generator=torch.Generator().manual_seed(5))
    path = save_bpnet_compatible(model, tmp_path / "model.torch")
    loaded = torch.load(path, weights_only=False)
    assert type(loaded) is ARGMINN
    assert f"{type(loaded).__module__}.{type(loaded).__qualname__}" == "argminn_plugin.model.ARGMINN"
    assert loaded.name == model.name
    assert_same_outputs(model, loaded, X, X_ctl)
    # It is a pickle of code, which the safe loader refuses.
    with pytest.raises(Exception):
        torch.load(path, weights_only=True)
    assert_same_outputs(model, load_bpnet_compatible(path), X, X_ctl)


def test_load_bpnet_compatible_errors(tmp_path):
    torch.save({"a": torch.zeros(1)}, tmp_path / "dict.torch")
    with pytest.raises(ValueError, match="not a torch.nn.Module"):
        load_bpnet_compatible(tmp_path / "dict.torch")
    (tmp_path / "junk.torch").write_bytes(b"not a pickle at all")
    with pytest.raises(ValueError, match="junk.torch"):
        load_bpnet_compatible(tmp_path / "junk.torch")
    with pytest.raises(ValueError, match="absent.torch"):
        load_bpnet_compatible(tmp_path / "absent.torch")
