"""What the ``argminn`` subcommands do: read parameters, load data, call the library, write files."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from .config import (
    FIT_DEFAULTS,
    MODEL_KEYS,
    PIPELINE_DEFAULTS,
    READOUT_DEFAULTS,
    SIMULATE_DEFAULTS,
    embedded_default_parameters,
    merge_parameters,
    read_parameters,
)
from .io import atomic_write, save_model

# Splits used for data made by `argminn simulate` (five chromosomes).
SIMULATED_SPLITS = {"training_chroms": ["chr1", "chr2", "chr3"], "validation_chroms": ["chr4"], "test_chroms": ["chr5"]}


def _load(parameters: dict | str | os.PathLike | None) -> tuple[dict, str | None]:
    if parameters is None or isinstance(parameters, dict):
        return dict(parameters or {}), None
    return read_parameters(parameters), str(parameters)


def _write_json(path: Path, data: Any) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(data, indent=2, default=str) + "\n"))


def run_simulate(parameters: dict | str | os.PathLike) -> dict[str, str]:
    """``argminn simulate``: write a simulated genome, peaks, negatives, truth and motifs."""
    raw, source = _load(parameters)
    p = merge_parameters(raw, SIMULATE_DEFAULTS, source=source)
    if p["skip"]:
        return {}
    from .simulate import simulate_genome

    paths = simulate_genome(
        p["output_dir"], p["grammar"], p["n_positives"], p["n_negatives"], length=p["length"],
        background=p["background"], n_chroms=p["n_chroms"], motifs=p["motifs"], center_jitter=p["center_jitter"],
        reject_threshold=p["reject_threshold"], random_state=p["random_state"], prefix=p["prefix"],
    )
    paths = {k: str(v) for k, v in paths.items()}
    if p["verbose"]:
        print(json.dumps(paths, indent=2))
    return paths


def _subsample(data, n: int | None, seed: int):
    if n is None or len(data.X) <= n:
        return data
    idx = torch.randperm(len(data.X), generator=torch.Generator().manual_seed(seed))[:n].sort().values
    return type(data)(data.X[idx], data.y[idx], data.coords.iloc[idx.numpy()].reset_index(drop=True))


def load_training_data(p: dict, raw: dict) -> dict[str, Any]:
    """Build the training loader and the validation / test tensors described by parameters ``p``."""
    from . import data

    head = "profile" if p["head"] == "profile" or p["signals"] else "binary"
    if head == "profile":
        for key in ("loci", "negatives", "signals", "training_chroms", "validation_chroms"):
            if not p[key]:
                raise ValueError(f"profile training needs the parameter {key!r}.")
        controls = p["controls"] or None
        loader = data.profile_dataloader(
            p["loci"], p["negatives"], p["sequences"], p["signals"], controls, chroms=p["training_chroms"],
            in_window=p["in_window"], out_window=p["out_window"], max_jitter=p["max_jitter"],
            negative_ratio=p["negative_ratio"], reverse_complement=p["reverse_complement"],
            random_state=p["random_state"], batch_size=p["batch_size"],
        )
        valid = data.load_profile_data(p["loci"], p["sequences"], p["signals"], controls,
                                       chroms=p["validation_chroms"], in_window=p["in_window"],
                                       out_window=p["out_window"])
        test = None
        if p["test_chroms"]:
            test = data.load_profile_data(p["loci"], p["sequences"], p["signals"], controls, chroms=p["test_chroms"],
                                          in_window=p["in_window"], out_window=p["out_window"])
        n_signals = len(p["signals"]) if isinstance(p["signals"], (list, tuple)) else 1
        n_controls = 0 if not controls else (len(controls) if isinstance(controls, (list, tuple)) else 1)
        model_kwargs = {"n_outputs": n_signals, "n_control_tracks": n_controls,
                        "trimming": (p["in_window"] - p["out_window"]) // 2}
        return {"head": "profile", "loader": loader, "valid": (valid.X, valid.X_ctl, valid.y),
                "test": None if test is None else (test.X, test.X_ctl, test.y), "model_kwargs": model_kwargs}

    if p["loci"]:
        for key in ("training_chroms", "validation_chroms"):
            if not p[key]:
                raise ValueError(f"binary training from loci needs the parameter {key!r}.")
        splits = data.load_binary_splits(
            p["sequences"], p["loci"], p["negatives"], in_window=p["in_window"],
            training_chroms=p["training_chroms"], validation_chroms=p["validation_chroms"],
            test_chroms=p["test_chroms"], max_jitter=p["max_jitter"], summits=p["summits"],
            random_state=p["random_state"],
        )
        max_jitter = p["max_jitter"]
    else:
        length = raw.get("in_window")  # sequence files keep their own length unless in_window is given
        splits = data.load_binary_fasta(
            p["sequences"], p["negatives"], length=length, validation_fraction=p["validation_fraction"],
            test_fraction=p["test_fraction"], random_state=p["random_state"],
        )
        max_jitter = 0
        if p.get("test_sequences"):
            table = data.read_sequence_table(p["test_sequences"])
            X_test = data.one_hot_sequences(list(table.sequences), length=length)
            splits["test"] = data.BinaryData(X_test, torch.as_tensor(table.labels, dtype=torch.float32).reshape(-1, 1),
                                             None)
    train = _subsample(splits["train"], p["max_sequences"], p["random_state"])
    loader = data.binary_dataloader(
        train.X, train.y, batch_size=p["batch_size"], shuffle=True, reverse_complement=p["reverse_complement"],
        max_jitter=max_jitter, random_state=p["random_state"],
    )
    test = splits.get("test")
    return {"head": "binary", "loader": loader, "valid": (splits["valid"].X, None, splits["valid"].y),
            "test": None if test is None or len(test.X) == 0 else (test.X, None, test.y),
            "test_coords": None if test is None else test.coords, "valid_coords": splits["valid"].coords,
            "model_kwargs": {"n_tasks": p["n_tasks"]}, "n_train": len(train.X)}


def init_distributed(device: str | None) -> tuple[int, int]:
    """Initialise ``torch.distributed`` when launched by ``torchrun`` (WORLD_SIZE > 1).

    Uses NCCL when the device is CUDA and gloo otherwise; each process binds to GPU LOCAL_RANK.
    Returns (rank, world size); (0, 1) outside torchrun.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or not torch.distributed.is_available():
        return 0, 1
    if not torch.distributed.is_initialized():
        cuda = (device is None and torch.cuda.is_available()) or str(device).startswith("cuda")
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        torch.distributed.init_process_group(backend="nccl" if cuda else "gloo")
    return torch.distributed.get_rank(), torch.distributed.get_world_size()


def run_fit(parameters: dict | str | os.PathLike, *, resume: bool = False, output_dir: str | None = None):
    """``argminn fit``: train an ARGMINN model and write the files listed in :mod:`argminn_plugin.cli`."""
    from .model import ARGMINN
    from .training import _validate, set_seed

    raw, source = _load(parameters)
    defaults = {**FIT_DEFAULTS, "test_sequences": None}
    p = merge_parameters(raw, defaults, source=source)
    if p["skip"]:
        return None
    rank, _ = init_distributed(p["device"])
    if rank != 0:
        p["verbose"], p["progress"] = False, False
    set_seed(p["random_state"])
    prefix = str(Path(output_dir) / p["name"]) if output_dir else p["name"]
    Path(prefix).parent.mkdir(parents=True, exist_ok=True)
    loaded = load_training_data(p, raw)

    model_kwargs = {k: p[k] for k in MODEL_KEYS if k not in ("head", "n_tasks")}
    model_kwargs.update(loaded["model_kwargs"])
    model = ARGMINN(head=loaded["head"], name=prefix, verbose=bool(p["verbose"]), **model_kwargs)
    optimizer = torch.optim.Adam(model.parameters(), lr=p["lr"])
    if rank == 0:
        _write_json(Path(f"{prefix}.fit.json"), {**p, "model": model.config})
    X_valid, X_ctl_valid, y_valid = loaded["valid"]
    model.fit(
        loaded["loader"], optimizer, X_valid=X_valid, X_ctl_valid=X_ctl_valid, y_valid=y_valid,
        max_epochs=p["max_epochs"], batch_size=p["batch_size"], dtype=p["dtype"], device=p["device"],
        early_stopping=p["early_stopping"], schedule=p["schedule"], fourier_weight=p["fourier_weight"],
        fourier_freq_limit=p["fourier_freq_limit"], fourier_positives_only=p["fourier_positives_only"],
        grad_clip=p["grad_clip"], random_state=p["random_state"], progress=p["progress"],
        resume=resume or p["resume"],
    )
    model.cpu()
    performance = {}
    run_fit.last_data = loaded  # the pipeline's read-out step reuses the held-out split
    if rank != 0:
        return model, performance
    save_model(model, f"{prefix}.pt")
    if loaded["test"] is not None:
        X_test, X_ctl_test, y_test = loaded["test"]
        performance = {k.replace("Validation ", "test_").lower().replace(" ", "_"): v
                       for k, v in _validate(model, X_test, X_ctl_test, y_test, p["batch_size"], "cpu").items()}
        performance["n_test"] = len(X_test)
        _write_json(Path(f"{prefix}.performance.json"), performance)
    return model, performance


def _fit_inputs(raw: dict, p: dict, output_dir: Path) -> tuple[dict, dict | None]:
    """Parameters for :func:`run_fit` from a pipeline/compare file, simulating the data first if asked.

    Returns the fit parameters and the paths written by the simulation (None without one).
    """
    fit_raw = {k: v for k, v in raw.items() if k in FIT_DEFAULTS or k == "test_sequences"}
    paths = None
    if p["simulate"]:
        sim = {"output_dir": str(output_dir), "random_state": p["random_state"], "prefix": "simulated",
               **p["simulate"]}
        if sim["prefix"] == p["name"]:
            raise ValueError(f"simulate.prefix and name are both {p['name']!r}; the read-out would overwrite the "
                             "simulated ground truth. Give them different values.")
        paths = run_simulate(sim)
        fit_raw = {**SIMULATED_SPLITS, "in_window": sim.get("length", SIMULATE_DEFAULTS["length"]), **fit_raw,
                   "sequences": paths["fasta"], "loci": paths["peaks"], "negatives": paths["negatives"]}
    fit_raw.update(p["fit_parameters"])
    fit_raw["name"] = p["name"]
    return fit_raw, paths


def run_pipeline(parameters: dict | str | os.PathLike | None = None, *, resume: bool = False) -> dict[str, Any]:
    """``argminn pipeline``: optional simulation, then fit and test-set evaluation.

    With no parameters it runs the embedded default (:func:`embedded_default_parameters`): ENCODE
    GATA3 ChIP-seq sequences shipped in the package, written to ``argminn_output/``.
    """
    raw, source = _load(parameters)
    if parameters is None:
        raw = embedded_default_parameters()
    defaults = {**PIPELINE_DEFAULTS, "test_sequences": None}
    p = merge_parameters(raw, defaults, source=source)
    output_dir = Path(p["output_dir"])
    output_dir.mkdir(parents=True, exist_ok=True)
    fit_raw, simulated = _fit_inputs(raw, p, output_dir)
    outputs: dict[str, Any] = {} if simulated is None else {"simulate": simulated}
    model, performance = run_fit(fit_raw, resume=resume, output_dir=str(output_dir))
    name = output_dir / p["name"]
    outputs.update({
        "model": f"{name}.torch", "final_model": f"{name}.final.torch", "log": f"{name}.log",
        "state_dict": f"{name}.pt", "performance": performance,
    })
    if p["readout"] and model is not None and getattr(model, "head_type", None) == "binary":
        loaded = run_fit.last_data
        split, coords = ("test", loaded.get("test_coords")) if loaded["test"] is not None else ("valid", None)
        X, _, y = loaded[split]
        if split == "valid":
            coords = loaded.get("valid_coords")
        positives = (y.reshape(len(y), -1) > 0.5).any(dim=1)
        if not positives.any():
            raise ValueError(f"the {split} split has no positive sequences to read the model out on; "
                             "set readout to false or give a split with positives.")
        X_pos = X[positives][: p["readout_max_sequences"]]
        pos_coords = None
        if coords is not None and len(coords) == len(X):
            pos_coords = coords[positives.numpy()].reset_index(drop=True).iloc[: len(X_pos)]
        from .readout import run_readout

        readout = run_readout(model, X_pos, name, coords=pos_coords, database=p["motif_database"],
                              activation_threshold=p["activation_threshold"],
                              attention_threshold=p["attention_threshold"], q_threshold=p["q_threshold"])
        outputs["readout"] = readout.files
        outputs["readout_split"] = split
        if p["simulate"]:
            import pandas as pd
            from memelite.io import read_meme

            from .readout import score_against_truth

            truth = pd.read_csv(outputs["simulate"]["instances"], sep="\t")
            scores = score_against_truth(readout, truth, read_meme(outputs["simulate"]["motifs"]),
                                         database=p["motif_database"], q_threshold=p["q_threshold"],
                                         windows=pos_coords)
            _write_json(output_dir / f"{p['name']}.truth_comparison.json", scores)
            outputs["truth_comparison"] = scores
    _write_json(output_dir / f"{p['name']}.pipeline.json", outputs)
    if p["verbose"] or parameters is None:
        print(json.dumps(outputs, indent=2, default=str))
    return outputs


def _load_any_model(path: str):
    from .io import load_bpnet_compatible, load_model

    if str(path).endswith(".pt"):
        return load_model(path)
    return load_bpnet_compatible(path)


def run_readout_command(parameters: dict | str | os.PathLike, steps: tuple[str, ...]) -> dict[str, str]:
    """``argminn motifs|instances|syntax``: read a trained model out on the positives of a data set."""
    from . import data
    from .readout import run_readout

    raw, source = _load(parameters)
    p = merge_parameters(raw, READOUT_DEFAULTS, source=source)
    if p["skip"]:
        return {}
    for key in ("sequences", "loci"):  # the data readers raise FileNotFoundError, which the CLI would not report
        if isinstance(p[key], (str, os.PathLike)) and not Path(p[key]).is_file():
            raise ValueError(f"{key}: file not found: {p[key]}")
    model = _load_any_model(p["model"])
    if not hasattr(model, "forward_with_interims"):
        raise ValueError(f"{p['model']} holds a {type(model).__name__}; the read-out needs an ARGMINN model.")
    coords = None
    if p["loci"]:
        loaded = data.load_binary_loci(p["sequences"], p["loci"], None, in_window=p["in_window"], chroms=p["chroms"],
                                       summits=p["summits"], n_negatives=0, random_state=p["random_state"])
        keep = loaded.y[:, 0] > 0.5
        X, coords = loaded.X[keep], loaded.coords[keep.numpy()].reset_index(drop=True)
    else:
        path = str(p["sequences"])
        if path.endswith((".seq", ".seq.gz")):
            table = data.read_sequence_table(path)
            seqs = [s for s, label in zip(table.sequences, table.labels) if label == 1]
        else:
            seqs = [s for _, s in data.read_fasta(path)]
        X = data.one_hot_sequences(seqs, length=raw.get("in_window"))
    if p["max_sequences"] is not None:
        X = X[: p["max_sequences"]]
        coords = None if coords is None else coords.iloc[: len(X)]
    readout = run_readout(model, X, p["name"], coords=coords, database=p["motif_database"],
                          activation_threshold=p["activation_threshold"], attention_threshold=p["attention_threshold"],
                          q_threshold=p["q_threshold"], figures=p["figures"], modisco=p["modisco"], steps=steps,
                          batch_size=p["batch_size"], device=p["device"])
    if p["verbose"]:
        print(json.dumps(readout.files, indent=2))
    return readout.files



def _truth_in_windows(truth, coords, length: int):
    """Planted genomic instances lying wholly inside each window, in window coordinates."""
    import pandas as pd

    rows = []
    for idx, window in enumerate(coords[["chrom", "start"]].itertuples(index=False)):
        inside = truth[(truth["chrom"] == window.chrom) & (truth["start"] >= window.start)
                       & (truth["end"] <= window.start + length)]
        for row in inside.itertuples(index=False):
            rows.append({"example_idx": idx, "start": int(row.start - window.start), "end": int(row.end - window.start),
                         "motif": getattr(row, "motif", ""), "strand": getattr(row, "strand", "+")})
    return pd.DataFrame(rows, columns=["example_idx", "start", "end", "motif", "strand"])


def run_compare(parameters: dict | str | os.PathLike | None = None) -> dict[str, Any]:
    """``argminn compare``: ARGMINN and a baseline on the same data and splits, side by side.

    Trains ARGMINN (as ``argminn fit``; or loads ``"model"``) and the baseline (``"baseline"``:
    ``"cnn"`` for the paper's standard CNN, or ``"explainn"``; or loads ``"baseline_model"``) on the
    same training loader, then runs :func:`argminn_plugin.compare.side_by_side` on the held-out
    positives (test split, else validation) and writes ``{name}.compare.html``,
    ``{name}.compare.json`` and ``{name}.compare.*.tsv`` under ``output_dir``. With a
    ``"simulate"`` block the planted truth is scored too. With no parameters it runs
    :func:`argminn_plugin.config.embedded_compare_parameters` (the embedded GATA3 data, reduced).
    """
    from .baselines import build_baseline
    from .compare import side_by_side, write_comparison
    from .config import COMPARE_DEFAULTS, embedded_compare_parameters
    from .report import write_html_report
    from .training import fit, set_seed

    raw, source = _load(parameters)
    if parameters is None:
        raw = embedded_compare_parameters()
    p = merge_parameters(raw, {**COMPARE_DEFAULTS, "test_sequences": None}, source=source)
    if p["skip"]:
        return {}
    if p["baseline_model"] is None and str(p["baseline"]).lower() not in ("cnn", "standard_cnn", "explainn"):
        raise ValueError(f"baseline must be 'cnn' or 'explainn', got {p['baseline']!r}.")
    for key in ("model", "baseline_model"):
        if p[key] is not None and not Path(p[key]).is_file():
            raise ValueError(f"{key}: file not found: {p[key]}")
    output_dir = Path(p["output_dir"])
    output_dir.mkdir(parents=True, exist_ok=True)
    fit_raw, simulated = _fit_inputs(raw, p, output_dir)
    outputs: dict[str, Any] = {} if simulated is None else {"simulate": simulated}
    prefix = output_dir / p["name"]
    if p["model"] is None:
        model, performance = run_fit(fit_raw, output_dir=str(output_dir))
        loaded = run_fit.last_data
        outputs["argminn_performance"] = performance
    else:
        model = _load_any_model(p["model"])
        fp = merge_parameters(fit_raw, {**FIT_DEFAULTS, "test_sequences": None}, source=source)
        set_seed(fp["random_state"])
        loaded = load_training_data(fp, fit_raw)
    if getattr(model, "head_type", None) != "binary":
        raise ValueError("argminn compare needs ARGMINN with the binary head.")
    X_valid, _, y_valid = loaded["valid"]
    length = int(X_valid.shape[-1])
    if p["baseline_model"] is not None:
        baseline = torch.load(p["baseline_model"], map_location="cpu", weights_only=False)
    else:
        set_seed(p["random_state"])
        baseline = build_baseline(p["baseline"], length, int(y_valid.reshape(len(y_valid), -1).shape[1]),
                                  name=f"{prefix}.baseline", verbose=bool(p["verbose"]))
        fit(baseline, loaded["loader"], torch.optim.Adam(baseline.parameters(), lr=p["baseline_lr"]),
            X_valid=X_valid, y_valid=y_valid, max_epochs=p["baseline_epochs"] or p["max_epochs"],
            batch_size=p["batch_size"], device=p["device"], schedule=None, random_state=p["random_state"],
            verbose=bool(p["verbose"]), progress=p["progress"])
        baseline.cpu()
    from .training import _validate

    split = "test" if loaded["test"] is not None else "valid"
    X, _, y = loaded[split]
    coords = loaded.get("test_coords") if split == "test" else loaded.get("valid_coords")
    performance = {}
    for label, m in (("argminn", model), ("baseline", baseline)):
        performance[label] = {k.replace("Validation ", f"{split}_").lower().replace(" ", "_"): v
                              for k, v in _validate(m.cpu().eval(), X, None, y, p["batch_size"], "cpu").items()}
    positives = (y.reshape(len(y), -1) > 0.5).any(dim=1)
    if not positives.any():
        raise ValueError(f"the {split} split has no positive sequences to compare on.")
    X_pos = X[positives][: p["compare_max_sequences"]]
    truth = planted = None
    if p["simulate"] and coords is not None and {"chrom", "start"} <= set(coords.columns):
        import pandas as pd
        from memelite.io import read_meme

        pos_coords = coords[positives.numpy()].reset_index(drop=True).iloc[: len(X_pos)]
        truth = _truth_in_windows(pd.read_csv(outputs["simulate"]["instances"], sep="\t"), pos_coords, length)
        planted = read_meme(outputs["simulate"]["motifs"])
    result = side_by_side(model, baseline, X_pos, truth=truth, planted=planted, database=p["motif_database"],
                          n_shuffles=p["n_shuffles"], modisco_kwargs=p["modisco"], fimo_threshold=p["fimo_threshold"],
                          fimo_motifs=p["fimo_motifs"], activation_threshold=p["activation_threshold"],
                          attention_threshold=p["attention_threshold"], q_threshold=p["q_threshold"],
                          random_state=p["random_state"], verbose=bool(p["verbose"]))
    result.summary["performance"] = performance
    result.summary["split"] = split
    files = write_comparison(result, prefix)
    files["html"] = str(write_html_report(result, f"{prefix}.compare.html", n_examples=p["n_examples"]))
    outputs.update({"files": files, "performance": performance, "split": split,
                    "n_passing": result.summary["n_passing"], "n_instances": result.summary["n_instances"]})
    if "truth" in result.summary:
        outputs["instance_scores"] = result.summary["tables"]["instance_scores"]
        outputs["motif_scores"] = result.summary["tables"]["motif_scores"]
    if p["verbose"] or parameters is None:
        print(json.dumps(outputs, indent=2, default=str))
    return outputs
