"""Data sets, training and read-out of every method for the benchmark suite (``benchmarks/suite.py``).

One call of :func:`run_dataset_seed` builds the data of one (dataset, seed), trains every method on
exactly the same training batches, validation and test sets, reads motifs and instances off each
model on the same held-out sequences, scores them and returns one record per method (see
``_suite_metrics``). Wall time, process CPU time and peak resident memory are measured around
every training and every read-out.
"""

from __future__ import annotations

import gc
import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from _suite_metrics import f1_score, interpretability_score

SHARED = Path(__file__).resolve().parents[2] / "shared"
GENOME = SHARED / "data" / "genomes" / "ce2_chrX.fa.gz"
CHIPSEQ = SHARED / "data" / "chipseq"


# --------------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------------


@dataclass
class Size:
    """Sizes of one suite run (``--tiny``, default reduced, ``--full``)."""

    name: str
    length: int  # simulated sequence length
    epochs: int  # every method, every data set
    batches: int  # simulated training batches per epoch
    batch_size: int  # sequences per batch before reverse-complement augmentation
    lr: float  # Adam learning rate, every method
    n_valid: int  # validation positives (and as many negatives)
    n_test: int  # test positives (and as many negatives); the read-out uses the test positives
    n_shuffles: int  # DeepLIFT-SHAP references per sequence
    modisco_max_seqlets: int
    real_max_train: int | None  # training sequences of a real set (None: all)
    real_epochs: int
    seeds: tuple[int, ...]
    attention_layers_multi: int  # ARGMINN attention layers for multi-motif grammars (1 for "single")
    burn_in_fraction: float = 0.25  # of the regulariser schedule (§3.5: 10 of 40 epochs)
    ramp_fraction: float = 0.5  # (§3.5: 20 of 40 epochs); the rest is the plateau
    sim_schedule: str = "simulation"  # ARGMINN regulariser preset for simulated data (§3.5)
    lr_after_burn_in: float | None = None  # ARGMINN: Adam learning rate once the regularisers start


SIZES = {
    "tiny": Size("tiny", length=80, epochs=2, batches=2, batch_size=16, lr=3e-3, n_valid=16, n_test=16, n_shuffles=2,
                 modisco_max_seqlets=100, real_max_train=200, real_epochs=1, seeds=(0,), attention_layers_multi=1),
    "reduced": Size("reduced", length=100, epochs=40, batches=25, batch_size=32, lr=3e-3, n_valid=256, n_test=300,
                    n_shuffles=10, modisco_max_seqlets=500, real_max_train=2000, real_epochs=20, seeds=(0, 1),
                    attention_layers_multi=2, lr_after_burn_in=1e-3),
    "full": Size("full", length=500, epochs=40, batches=100, batch_size=64, lr=1e-3, n_valid=640, n_test=1000,
                 n_shuffles=20, modisco_max_seqlets=2000, real_max_train=None, real_epochs=40, seeds=(0, 1, 2, 3, 4),
                 attention_layers_multi=4),
}

#: The six grammars of issue 6 (``argminn.md`` §6.1, §9).
GRAMMARS = ("single", "mixture", "cooperative", "fixed_spacing", "and_half_sites", "repression")


@dataclass
class Dataset:
    """One benchmark data set: a simulated grammar in a background, or a real ENCODE sequence set."""

    name: str
    kind: str  # "sim" or "real"
    grammar: str | None = None
    background: str = "iid"  # "iid" or "ce2"
    positives: str | None = None  # real: file of bound sequences (FASTA or DeepBind table)
    test: str | None = None  # real: held-out file (else a random 10 % of groups)
    relevant: str | None = None  # real: regular expression of the relevant TF names (JASPAR)
    length: int | None = None  # real: sequence length
    note: str = ""


REAL_DATASETS = {
    "gata3": Dataset("gata3", "real", positives=str(CHIPSEQ / "deepbind_gata3" / "GATA3_SH-SY5Y_USC_train_AC.seq.gz"),
                     test=str(CHIPSEQ / "deepbind_gata3" / "GATA3_SH-SY5Y_USC_test_B.seq.gz"), relevant=r"^GATA",
                     length=101, note="ENCODE GATA3 ChIP-seq, SH-SY5Y (DeepBind packaging), 101 bp, "
                                       "dinucleotide-shuffled negatives"),
    "ctcf": Dataset("ctcf", "real", positives=str(CHIPSEQ / "ctcf_gm12878_top500" / "Gm12878.CTCF.top500.w200.fa"),
                    relevant=r"^CTCF", length=200,
                    note="top 500 GM12878 CTCF peaks, 200 bp, dinucleotide-shuffled negatives"),
    "oct4": Dataset("oct4", "real", positives=str(CHIPSEQ / "oct4_mafk" / "sample.fa"),
                    test=str(CHIPSEQ / "oct4_mafk" / "sample_test.fa"), relevant=r"^(POU|Pou|SOX|Sox)", length=200,
                    note="Oct4 ChIP-seq peaks (hg19), 200 bp, dinucleotide-shuffled negatives"),
    "mafk": Dataset("mafk", "real", positives=str(CHIPSEQ / "oct4_mafk" / "sample2.fa"),
                    test=str(CHIPSEQ / "oct4_mafk" / "sample2_test.fa"), relevant=r"^(MAF|Maf|NFE2|Nfe2|BACH|Bach)",
                    length=200, note="MafK ChIP-seq peaks (hg19), 200 bp, dinucleotide-shuffled negatives"),
}


def simulated_dataset(grammar: str, background: str) -> Dataset:
    return Dataset(f"{grammar}/{background}", "sim", grammar=grammar, background=background)


#: Methods and the model each one reads (``cnn_filters`` and ``cnn_deeplift_modisco`` share one CNN).
METHODS = ("argminn", "argminn_fourier", "cnn_filters", "cnn_deeplift_modisco", "explainn")


# --------------------------------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------------------------------


def _status_kb(key: str) -> float | None:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(key + ":"):
                    return float(line.split()[1])
    except OSError:
        return None
    return None


def _malloc_trim() -> None:
    """Give freed heap memory back to the OS (glibc), so that a block's memory rise is measurable."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class Meter:
    """Wall time, process CPU time (all threads) and peak resident memory of a block (Linux).

    On entry the garbage is collected, freed heap memory is returned to the OS (``malloc_trim``)
    and the kernel's high-water mark is reset (``/proc/self/clear_refs``). ``peak_mb`` is the
    largest resident set during the block minus the resident set at its start (the block's own
    memory); ``peak_rss_mb`` is that largest resident set itself (the process, libraries and data
    included).
    """

    def __enter__(self):
        gc.collect()
        _malloc_trim()
        try:
            with open("/proc/self/clear_refs", "w") as handle:
                handle.write("5")
            self._can_peak = True
        except OSError:
            self._can_peak = False
        self.rss0 = _status_kb("VmRSS")
        self.wall0, self.cpu0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall_s = time.perf_counter() - self.wall0
        self.cpu_s = time.process_time() - self.cpu0
        hwm = _status_kb("VmHWM")
        self.peak_mb = max(0.0, (hwm - self.rss0) / 1024) if self._can_peak and hwm is not None and self.rss0 else None
        self.peak_rss_mb = hwm / 1024 if self._can_peak and hwm is not None else None
        return False


# --------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------


@dataclass
class Data:
    """Everything one (dataset, seed) needs; every method gets the same objects."""

    train: Any  # a re-iterable of (X, y, labels) batches
    X_valid: torch.Tensor
    y_valid: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor
    X_readout: torch.Tensor  # the held-out sequences motifs and instances are read from
    truth: pd.DataFrame | None  # planted instances, example_idx indexing X_readout
    planted: dict | None
    length: int
    epochs: int
    fit_reverse_complement: bool
    info: dict = field(default_factory=dict)


def _split_seed(seed: int, salt: int) -> int:
    return 1_000_003 * salt + seed


def simulated_data(ds: Dataset, size: Size, seed: int) -> Data:
    from argminn_plugin.simulate import GRAMMARS as BUILTIN, SimulatedBatches, simulate_sequences

    kwargs = {} if ds.background == "iid" else {"background": str(GENOME)}
    L = size.length
    train = SimulatedBatches(ds.grammar, n_batches=size.batches, batch_size=size.batch_size, length=L,
                             random_state=_split_seed(seed, 1), **kwargs)
    valid = simulate_sequences(ds.grammar, size.n_valid, size.n_valid, length=L, random_state=_split_seed(seed, 2),
                               **kwargs)
    test = simulate_sequences(ds.grammar, size.n_test, size.n_test, length=L, random_state=_split_seed(seed, 3),
                              **kwargs)
    grammar = BUILTIN[ds.grammar]
    positive_keys = set(_config_keys(grammar.positive))
    # Motifs planted only in negatives (the repressor of "repression") never occur in positives, so
    # the read-out of such a grammar uses every held-out sequence; otherwise the positives (§7.1).
    readout_all = bool(set(grammar.motif_keys) - positive_keys)
    n = len(test.X) if readout_all else size.n_test
    truth = test.instances[test.instances["example_idx"] < n].reset_index(drop=True)
    return Data(train, valid.X, valid.y.float().reshape(-1, 1), test.X, test.y.float().reshape(-1, 1), test.X[:n],
                truth, dict(test.motifs), L, size.epochs, True,
                {"grammar": ds.grammar, "background": ds.background, "readout_set": "all" if readout_all else
                 "positives", "n_readout": int(n), "n_true_instances": int(len(truth)),
                 "planted": {k: int(v.shape[1]) for k, v in test.motifs.items()}})


def _config_keys(config) -> list[str]:
    if isinstance(config, str):
        return [config]
    if isinstance(config, dict):
        return _config_keys(config.get("configs", []))
    if isinstance(config, (list, tuple)):
        return [k for c in config for k in _config_keys(c)]
    return []


def real_data(ds: Dataset, size: Size, seed: int) -> Data:
    from argminn_plugin.data import binary_dataloader, load_binary_fasta

    if ds.test:
        splits = load_binary_fasta(ds.positives, length=ds.length, validation_fraction=0.1, test_fraction=0.0,
                                   random_state=seed)
        test = load_binary_fasta(ds.test, length=ds.length, validation_fraction=0.0, test_fraction=0.0,
                                 random_state=10_000 + seed)["train"]
    else:
        splits = load_binary_fasta(ds.positives, length=ds.length, validation_fraction=0.1, test_fraction=0.2,
                                   random_state=seed)
        test = splits["test"]
    train, valid = splits["train"], splits["valid"]
    X, y = train.X, train.y
    if size.real_max_train is not None and len(X) > size.real_max_train:
        keep = torch.from_numpy(np.random.default_rng(seed).permutation(len(X))[: size.real_max_train])
        X, y = X[keep], y[keep]
    loader = binary_dataloader(X, y, batch_size=size.batch_size, random_state=seed)
    positives = test.y[:, 0] > 0.5
    X_pos = test.X[positives][: size.n_test]
    return Data(loader, valid.X, valid.y, test.X, test.y, X_pos, None, None, ds.length, size.real_epochs, True,
                {"n_train": int(len(X)), "n_valid": int(len(valid.X)), "n_test": int(len(test.X)),
                 "n_readout": int(len(X_pos)), "relevant": ds.relevant})


# --------------------------------------------------------------------------------------------------
# Models and training
# --------------------------------------------------------------------------------------------------


def compressed_schedule(preset: str, epochs: int, burn_in_fraction: float = 0.25,
                        ramp_fraction: float = 0.5) -> dict[str, list[float]] | str:
    """The paper's schedule (``argminn.md`` §3.5: 10 epochs off, 20-epoch log ramp, 10 at the plateau,
    i.e. fractions 0.25 / 0.5 / 0.25) with its end values, over ``epochs`` epochs split by the given
    fractions; the preset itself for 40 epochs at the paper's fractions."""
    from argminn_plugin.regularizers import log_ramp_schedule

    if epochs == 40 and (burn_in_fraction, ramp_fraction) == (0.25, 0.5):
        return preset
    ends = {"simulation": ((0.5, 5.0), (-3.0, -2.0)), "genomic": ((0.5, 4.0), (-4.0, -3.0))}[preset]
    burn_in = int(round(epochs * burn_in_fraction))
    steps = max(2, int(round(epochs * ramp_fraction)))
    burn_out = max(0, epochs - burn_in - steps)
    if epochs < 4:
        burn_in, steps, burn_out = 0, max(2, epochs), 0
    over = log_ramp_schedule(*ends[0], burn_in=burn_in, steps=steps, burn_out=burn_out)
    l1 = log_ramp_schedule(*ends[1], burn_in=burn_in, steps=steps, burn_out=burn_out)
    return {"filter_overlap": over, "filter_l1": l1, "attention_entropy": [0.0] * len(over)}


def build_model(method: str, ds: Dataset, data: Data, size: Size, attention_layers: int | None):
    from argminn_plugin import ARGMINN
    from argminn_plugin.baselines import ExplaiNN, StandardCNN

    if method in ("argminn", "argminn_fourier"):
        if ds.kind == "real":
            layers, width = attention_layers or 1, 15
        else:
            layers = attention_layers or (1 if ds.grammar == "single" else size.attention_layers_multi)
            width = 10
        return ARGMINN(n_filters=8, filter_width=width, n_attention_layers=layers, verbose=False)
    if method == "cnn":
        return StandardCNN(input_length=data.length)
    if method == "explainn":
        return ExplaiNN(input_length=data.length)
    raise ValueError(method)


def train_model(model, method: str, ds: Dataset, data: Data, size: Size, seed: int, work: Path):
    """Train on ``data.train``; ARGMINN: the last epoch (§5.2), baselines: the best validation epoch."""
    from argminn_plugin.training import fit

    is_argminn = method in ("argminn", "argminn_fourier")
    model.name = str(work / method)
    schedule = (compressed_schedule(size.sim_schedule if ds.kind == "sim" else "genomic", data.epochs,
                                    size.burn_in_fraction, size.ramp_fraction) if is_argminn else None)
    optimizer = torch.optim.Adam(model.parameters(), lr=size.lr)
    scheduler = None
    if is_argminn and size.lr_after_burn_in is not None:
        burn_in = int(round(data.epochs * size.burn_in_fraction))
        factor = size.lr_after_burn_in / size.lr
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0 if epoch < burn_in else factor)
    fit(model, data.train, optimizer, scheduler, X_valid=data.X_valid,
        y_valid=data.y_valid, max_epochs=data.epochs, device="cpu", random_state=seed, schedule=schedule,
        fourier_weight=1.0 if method == "argminn_fourier" else 0.0, reverse_complement=data.fit_reverse_complement,
        verbose=False, progress=False)
    if not is_argminn and Path(f"{model.name}.torch").exists():
        model = torch.load(f"{model.name}.torch", map_location="cpu", weights_only=False)
    return model.cpu().eval()


def performance(model, X: torch.Tensor, y: torch.Tensor) -> dict[str, float | None]:
    from sklearn.metrics import average_precision_score, roc_auc_score
    from tangermeme.predict import predict

    logits = predict(model, X, batch_size=256, device="cpu")
    score = logits[:, 0].float().numpy()
    labels = y[:, 0].numpy() > 0.5
    if not np.isfinite(score).all() or labels.all() or not labels.any():
        return {"auroc": None, "auprc": None, "accuracy": None}
    return {"auroc": float(roc_auc_score(labels, score)), "auprc": float(average_precision_score(labels, score)),
            "accuracy": float(((score > 0) == labels).mean())}


# --------------------------------------------------------------------------------------------------
# Read-outs: motifs {name: trimmed PFM} + quality, and instance sets
# --------------------------------------------------------------------------------------------------


def readout_argminn(model, data: Data) -> tuple[dict, dict, dict]:
    """Filter PFMs with the quality filter (§7.1) and attention calls (§7.2, attention > 0.9)."""
    from argminn_plugin.instances import activation_statistics, call_instances
    from argminn_plugin.motifs import extract_motifs, motif_quality, trimmed_motifs

    motifs = extract_motifs(model, data.X_readout, batch_size=256, device="cpu")
    quality = motif_quality(motifs.pfms)
    passing = trimmed_motifs(motifs, quality)
    filters = [int(r.filter) for r in quality.itertuples() if r.passes]
    stats = activation_statistics(model, data.X_test, batch_size=256, device="cpu")
    calls = call_instances(model, data.X_readout, statistics=stats, filters=filters, attention_threshold=0.9,
                           batch_size=256, device="cpu")
    n_used = int(quality["used"].sum())
    return passing, {"n_motifs": n_used}, {"attention": calls}


def readout_filters(model, data: Data) -> tuple[dict, dict, dict]:
    """First-layer filter PFMs (§7.1 rule, ARGMINN quality filter) and their FIMO hits."""
    from argminn_plugin.baselines import extract_filter_motifs
    from argminn_plugin.compare import fimo_instances
    from argminn_plugin.motifs import motif_quality, trimmed_motifs

    motifs = extract_filter_motifs(model, data.X_readout, device="cpu")
    quality = motif_quality(motifs.pfms)
    passing = trimmed_motifs(motifs, quality)
    return passing, {"n_motifs": int(quality["used"].sum())}, {"fimo": fimo_instances(passing, data.X_readout)}


def readout_modisco(model, data: Data, size: Size, seed: int) -> tuple[dict, dict, dict]:
    """DeepLIFT-SHAP (dinucleotide shuffles) -> modisco-lite patterns (MoDISco quality filter);
    instances: tangermeme recursive seqlets and FIMO hits of the passing positive patterns."""
    from argminn_plugin.attribute import deep_lift_shap
    from argminn_plugin.compare import fimo_instances, modisco_motifs, seqlet_instances
    from argminn_plugin.modisco import run_modisco

    X = data.X_readout
    hyp = deep_lift_shap(model, X, n_shuffles=size.n_shuffles, hypothetical=True, random_state=seed, batch_size=256,
                         device="cpu", warning_threshold=math.inf)
    projected = hyp * X.to(hyp.dtype)
    seqlets = seqlet_instances(projected)
    extra: dict[str, Any] = {}
    try:
        result = run_modisco(X, hyp, max_seqlets=size.modisco_max_seqlets)
        motifs, table = modisco_motifs(result)
    except Exception as err:  # modisco-lite raises on too few seqlets; recorded, scored as no motif
        motifs, table = {}, pd.DataFrame(columns=["motif", "group", "passes"])
        extra["modisco_error"] = f"{type(err).__name__}: {err}"
    passing = {k: motifs[k] for k in table.loc[table["passes"].astype(bool), "motif"] if k in motifs}
    positive = {k: v for k, v in passing.items() if k.startswith("pos_patterns")}
    instances = {"seqlets": seqlets, "fimo_modisco": fimo_instances(positive, X)}
    return passing, {"n_motifs": int(len(table)), **extra}, instances


# --------------------------------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------------------------------


def score_simulated(passing: dict, planted: dict, db: dict, extra: dict) -> dict:
    """Planted motifs recovered (TOMTOM q < 0.05), redundant, unmatched, interpretability score."""
    from argminn_plugin.compare import match_motif_sets, score_motifs

    s = score_motifs(passing, {k: True for k in passing}, planted, db, q_threshold=0.05)
    table = match_motif_sets(passing, planted, db)
    best_q = [float(table.loc[table["query"] == k, "q_value"].min()) if len(table) else None for k in passing]
    return {"n_motifs": extra.get("n_motifs", len(passing)), "n_passing": s["n_passing"], "n_planted": len(planted),
            "n_recovered": s["n_recovered"], "n_redundant": s["n_redundant"], "n_unmatched": s["n_unmatched"],
            "interpretability": interpretability_score(best_q), "recovered": s["recovered"], "missed": s["missed"],
            "unmatched": s["unmatched"], "motifs_per_planted": s["motifs_per_planted"],
            **({"modisco_error": extra["modisco_error"]} if "modisco_error" in extra else {})}


def score_real(passing: dict, db: dict, relevant: str, extra: dict) -> dict:
    """JASPAR matches (q < 0.05) and the relevant-family interpretability score of real-data motifs."""
    from argminn_plugin.motifs import annotate_motifs

    pattern = re.compile(relevant)
    relevant_names = [k for k in db if pattern.search(k.partition(" ")[2] or k)]
    out = {"n_motifs": extra.get("n_motifs", len(passing)), "n_passing": len(passing), "n_jaspar_matched": 0,
           "n_relevant": 0, "interpretability": 0.0, "relevant_found": [], "best_matches": {}}
    if not passing:
        return out
    annotation = annotate_motifs(passing, db, n_matches=len(db))
    best = annotation[annotation["rank"] == 0].set_index("motif")
    matched = best[best["q_value"] < 0.05]
    is_rel = annotation["target"].isin(relevant_names)
    best_rel = annotation[is_rel].groupby("motif")["q_value"].min()
    out["n_jaspar_matched"] = int(len(matched))
    out["n_relevant"] = int(sum(1 for m in passing if m in best_rel.index and best_rel[m] < 0.05))
    out["interpretability"] = interpretability_score([float(best_rel[m]) if m in best_rel.index else None
                                                      for m in passing])
    out["relevant_found"] = sorted({annotation.loc[(annotation["motif"] == m) & is_rel].sort_values("q_value")
                                    ["target_name"].iloc[0] for m in passing
                                    if m in best_rel.index and best_rel[m] < 0.05})
    out["best_matches"] = {m: {"target": best.loc[m, "target"], "q": float(best.loc[m, "q_value"])} for m in best.index}
    return out


def score_instance_sets(instance_sets: dict, truth: pd.DataFrame) -> dict:
    from argminn_plugin.instances import score_instances

    out = {}
    for name, calls in instance_sets.items():
        s = score_instances(calls, truth)
        p = None if math.isnan(s.precision) else s.precision
        r = None if math.isnan(s.recall) else s.recall
        out[name] = {"n_calls": int(s.n_calls), "n_true": int(s.n_true), "precision": p, "recall": r,
                     "f1": f1_score(p if p is not None else (0.0 if s.n_calls == 0 else None), r)}
    return out


# --------------------------------------------------------------------------------------------------
# One (dataset, seed)
# --------------------------------------------------------------------------------------------------


def run_dataset_seed(ds: Dataset, size: Size, seed: int, methods: tuple[str, ...], work: Path, db: dict,
                     attention_layers: int | None = None, log=print) -> list[dict]:
    """Train and read out every method on one (dataset, seed); one record per method."""
    from argminn_plugin.training import set_seed

    work.mkdir(parents=True, exist_ok=True)
    data = simulated_data(ds, size, seed) if ds.kind == "sim" else real_data(ds, size, seed)
    records = []
    base = {"dataset": ds.name, "seed": seed, "simulated": ds.kind == "sim", "data": data.info}
    trained: dict[str, tuple[Any, Meter]] = {}

    def train(kind: str):
        if kind not in trained:
            set_seed(seed)
            model = build_model(kind, ds, data, size, attention_layers)
            with Meter() as meter:
                model = train_model(model, kind, ds, data, size, seed, work)
            trained[kind] = (model, meter)
            log(f"  trained {kind}: {meter.wall_s:.1f} s wall, {meter.cpu_s:.1f} s CPU")
        return trained[kind]

    for method in methods:
        kind = {"cnn_filters": "cnn", "cnn_deeplift_modisco": "cnn"}.get(method, method)
        model, train_meter = train(kind)
        set_seed(seed)
        with Meter() as meter:
            if kind in ("argminn", "argminn_fourier"):
                passing, extra, instance_sets = readout_argminn(model, data)
            elif method == "cnn_deeplift_modisco":
                passing, extra, instance_sets = readout_modisco(model, data, size, seed)
            else:
                passing, extra, instance_sets = readout_filters(model, data)
        record = {**base, "method": method, "n_parameters": int(sum(p.numel() for p in model.parameters())),
                  "performance": performance(model, data.X_test, data.y_test),
                  "timing": {"train_wall_s": train_meter.wall_s, "train_cpu_s": train_meter.cpu_s,
                             "train_peak_mb": train_meter.peak_mb, "train_peak_rss_mb": train_meter.peak_rss_mb,
                             "readout_wall_s": meter.wall_s, "readout_cpu_s": meter.cpu_s,
                             "readout_peak_mb": meter.peak_mb, "readout_peak_rss_mb": meter.peak_rss_mb},
                  "trained_model": kind, "attention_layers": getattr(model, "n_attention_layers", None)}
        if ds.kind == "sim":
            record["motifs"] = score_simulated(passing, data.planted, db, extra)
            record["instances"] = score_instance_sets(instance_sets, data.truth)
        else:
            record["real"] = score_real(passing, db, ds.relevant, extra)
        records.append(record)
        summary = record.get("motifs") or record.get("real")
        log(f"  {method}: read-out {meter.wall_s:.1f} s; auROC {record['performance']['auroc']}; "
            f"motifs {({k: summary[k] for k in summary if k.startswith('n_')})}; "
            + "; ".join(f"{k} P {v['precision']} R {v['recall']}" for k, v in record.get("instances", {}).items()))
    return records


_DB: dict | None = None


def pair_worker(task: tuple) -> tuple:
    """Run one (dataset, seed) in a worker process of ``suite.py --jobs N`` (one torch thread each)."""
    global _DB
    ds, size, seed, methods, work, attention_layers, threads = task
    torch.set_num_threads(threads)
    if _DB is None:
        from argminn_plugin.motifs import read_motif_database

        _DB = read_motif_database()
    lines: list[str] = []
    t, c = time.perf_counter(), time.process_time()
    records = run_dataset_seed(ds, size, seed, methods, work, _DB, attention_layers=attention_layers,
                               log=lines.append)
    return ds.name, seed, records, lines, time.perf_counter() - t, time.process_time() - c
