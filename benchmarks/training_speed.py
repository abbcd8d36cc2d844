"""Training-step speed and memory of ARGMINN (regularisers on/off), a plain CNN and the Fourier prior.

The question: what does one full CPU training step cost (zero_grad -> forward -> ``compute_loss``
-> backward -> gradient clipping -> Adam step, the order of :func:`argminn_plugin.training.fit`),
how much of it is the filter-overlap regulariser, and how much does the Fourier attribution prior add?

Design (``benchmarks/README.md`` has the full description):

* Measurements run in fresh worker subprocesses, one per (round, allocator mode), because glibc
  reads ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` once at start-up. Rounds alternate
  the order of the two modes.
* Variants that are compared with each other (regularisers on / off / plain CNN of one size; prior
  on / off of one model) live in the same process and take one timed step each in turn (rotating
  order), so that load from other users of the machine hits them alike. Reported: median and IQR
  of the per-step wall time over all rounds, the median per-step process CPU time, and
  "paired" ratios (median of ratios of back-to-back steps).
* Memory, per variant and allocator mode: the heap is trimmed (``gc.collect()`` +
  ``malloc_trim(0)``), ``VmRSS`` is read, the kernel's high-water mark is reset
  (``echo 5 > /proc/self/clear_refs``), steps run, and ``VmHWM - VmRSS_before`` is the peak extra
  memory of a step. ``cold`` is the same for the variant's very first step (it includes one-time
  allocations such as Adam's state). The largest value over rounds is reported.

Usage::

    PYTHONPATH=. python benchmarks/training_speed.py               # full run
    PYTHONPATH=. python benchmarks/training_speed.py --quick       # smoke run
    PYTHONPATH=. python benchmarks/training_speed.py --profile argminn_F8_K10_L1_regs_on

Results go to ``<out>/training_speed.json`` and ``<out>/training_speed.md``.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# Allocator settings: "high" keeps freed memory inside the process instead of handing large blocks
# back to the OS (mmap/munmap or trim) after every step.
ALLOCATOR_MODES = {
    "default": {},
    "high_thresholds": {"MALLOC_MMAP_THRESHOLD_": str(2**30), "MALLOC_TRIM_THRESHOLD_": str(2**31)},
}
ALLOCATOR_VARS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_ARENA_MAX")

# Plateau weights of the paper's "simulation" schedule (argminn.md §3.5): overlap 1e5, L1 1e-2,
# attention entropy 0 (every published run used 0).
REGS_ON = {"filter_overlap": 1e5, "filter_l1": 1e-2, "attention_entropy": 0.0}
REGS_OFF = {"filter_overlap": 0.0, "filter_l1": 0.0, "attention_entropy": 0.0}

# Reference numbers of the original implementation (shared/specs/performance.md), 2-core CPU,
# batch 128 x 500 bp, 2 threads, median ms and peak extra MB per step.
ORIGINAL = {
    "F8_K10_L1": {"regs_on_ms": 310.0, "regs_off_ms": 22.8, "regs_on_mb": 353, "regs_off_mb": 66},
    "F8_K10_L4": {"regs_on_ms": 383.0, "regs_off_ms": 58.5, "regs_on_mb": 409, "regs_off_mb": 117},
    "F20_K15_L4": {"regs_on_ms": 1150.0, "regs_off_ms": 68.4, "regs_on_mb": 1232, "regs_off_mb": 130},
}
ORIGINAL_PRIOR_SLOWDOWN = "2.4-2.6x"
ORIGINAL_FLOP_BOUND_MS = {"F8_K10_L1": 3.9, "F8_K10_L4": 10.2, "F20_K15_L4": 11.9}

OVERLAP_TARGET = 0.15  # (i)/(ii) - 1
PRIOR_TARGET = 2.0  # step with prior / step without


# ---------------------------------------------------------------------------------------------
# Configurations
# ---------------------------------------------------------------------------------------------

ARGMINN_SIZES = [(8, 10, 1), (8, 10, 4), (20, 15, 4)]


def size_key(filters: int, width: int, layers: int) -> str:
    return f"F{filters}_K{width}_L{layers}"


def build_variants(batch: int, length: int, bpnet_batch: int, bpnet_length: int, bpnet_out: int) -> dict:
    """All variants, grouped by what is compared inside one timing process."""
    groups = {}
    for filters, width, layers in ARGMINN_SIZES:
        key = size_key(filters, width, layers)
        base = {"batch": batch, "length": length, "filters": filters, "width": width, "layers": layers}
        groups[key] = [
            {**base, "name": f"argminn_{key}_regs_on", "model": "argminn", "weights": REGS_ON, "fourier_weight": 0.0},
            {**base, "name": f"argminn_{key}_regs_off", "model": "argminn", "weights": REGS_OFF, "fourier_weight": 0.0},
            {**base, "name": f"cnn_{key}", "model": "cnn", "weights": REGS_OFF, "fourier_weight": 0.0},
        ]
    base = {"batch": batch, "length": length, "filters": 8, "width": 10, "layers": 1, "model": "argminn",
            "weights": REGS_OFF}
    groups["prior_argminn"] = [
        {**base, "name": "argminn_F8_K10_L1_prior_off", "fourier_weight": 0.0},
        {**base, "name": "argminn_F8_K10_L1_prior_on", "fourier_weight": 1.0},
    ]
    trimming = (bpnet_length - bpnet_out) // 2
    base = {"batch": bpnet_batch, "length": bpnet_length, "trimming": trimming, "model": "bpnet",
            "weights": REGS_OFF}
    groups["prior_bpnet"] = [
        {**base, "name": "bpnet_prior_off", "fourier_weight": 0.0},
        {**base, "name": "bpnet_prior_on", "fourier_weight": 50.0},
    ]
    return groups


# ---------------------------------------------------------------------------------------------
# Models and one training step (worker side)
# ---------------------------------------------------------------------------------------------


def plain_cnn(filters: int, width: int, length: int, target_params: int):
    """A §8.1-style CNN whose first layer is Conv1d(4, F, K), sized to ``target_params`` parameters.

    Conv1d(4,F,K) -> ReLU -> BN -> [Conv1d(.,C,5) -> ReLU -> BN] x 2 -> MaxPool(40) -> Linear(.,10)
    -> ReLU -> BN -> Linear(10,5) -> ReLU -> BN -> Linear(5,1). The hidden width C is the one whose
    parameter count is closest to ``target_params``.
    """
    from torch import nn

    def build(channels: int) -> nn.Module:
        pooled = (length - width + 1 - 8) // 40
        return nn.Sequential(
            nn.Conv1d(4, filters, width), nn.ReLU(), nn.BatchNorm1d(filters),
            nn.Conv1d(filters, channels, 5), nn.ReLU(), nn.BatchNorm1d(channels),
            nn.Conv1d(channels, channels, 5), nn.ReLU(), nn.BatchNorm1d(channels),
            nn.MaxPool1d(40, 40), nn.Flatten(),
            nn.Linear(channels * pooled, 10), nn.ReLU(), nn.BatchNorm1d(10),
            nn.Linear(10, 5), nn.ReLU(), nn.BatchNorm1d(5),
            nn.Linear(5, 1),
        )

    def count(channels: int) -> int:
        return sum(p.numel() for p in build(channels).parameters())

    best = min(range(1, 257), key=lambda c: abs(count(c) - target_params))
    return build(best), best


def build_case(spec: dict, seed: int):
    """Model, optimizer, data and a ``step()`` closure for one variant."""
    import torch

    from argminn_plugin.model import ARGMINN
    from argminn_plugin.training import backward_parameters, forward_and_loss

    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    n, length = spec["batch"], spec["length"]
    bases = torch.randint(0, 4, (n, length), generator=generator)
    X_base = torch.nn.functional.one_hot(bases, 4).transpose(1, 2).float().contiguous()
    labels = (torch.rand(n, generator=generator) < 0.5).long()
    labels[0], labels[1] = 1, 0  # at least one positive and one negative
    extra = {}
    if spec["model"] == "argminn":
        model = ARGMINN(spec["filters"], spec["width"], spec["layers"])
        forward = model.forward_with_interims
        y = labels.float().reshape(n, 1)
    elif spec["model"] == "cnn":
        reference = ARGMINN(spec["filters"], spec["width"], spec["layers"])
        target = sum(p.numel() for p in reference.parameters())
        model, channels = plain_cnn(spec["filters"], spec["width"], length, target)
        extra = {"cnn_hidden_channels": channels, "argminn_params": target}
        forward = model
        y = labels.float().reshape(n, 1)
    elif spec["model"] == "bpnet":
        from bpnetlite import BPNet

        model = BPNet(n_filters=64, n_layers=8, n_outputs=2, n_control_tracks=0, trimming=spec["trimming"],
                      verbose=False)
        forward = model
        out = length - 2 * spec["trimming"]
        y = torch.poisson(torch.full((n, 2, out), 0.5), generator=generator)
    else:
        raise ValueError(spec["model"])
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    weights = dict(spec["weights"])
    fourier_weight = float(spec["fourier_weight"])

    def step() -> float:
        # The order of argminn_plugin.training.fit: forward_and_loss (which, for the prior on
        # positives only, runs a batch-independent model as two passes), backward_parameters, clip, Adam.
        optimizer.zero_grad(set_to_none=True)
        X = X_base.clone()  # a fresh batch tensor, as a data loader would hand over
        components = forward_and_loss(model, lambda a, _ctl: forward(a), X, None, y, labels, weights,
                                      fourier_weight=fourier_weight)
        backward_parameters(components.total, model)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        return float(components.total.detach())

    info = {"params": sum(p.numel() for p in model.parameters()), **extra}
    return step, info


def _status_kb(field: str) -> int:
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", text, re.M).group(1))


def _trim() -> None:
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass


def _reset_hwm() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _memory_probe(step, n_steps: int) -> dict:
    """Peak RSS of ``n_steps`` steps over the RSS right before them, after trimming the heap."""
    _trim()
    before = _status_kb("VmRSS")
    if not _reset_hwm():
        return {"peak_extra_mb": None, "rss_before_mb": before / 1024}
    for _ in range(n_steps):
        step()
    return {"peak_extra_mb": (_status_kb("VmHWM") - before) / 1024, "rss_before_mb": before / 1024}


def worker(job: dict) -> dict:
    """Run every group of ``job``: per group, build its variants, then

    1. ``cold``: each variant's first step, peak RSS over the trimmed RSS before it;
    2. ``warmup`` untimed steps per variant;
    3. ``repeats`` rounds in which every variant takes one timed step (rotating order);
    4. ``memory``: per variant, ``memory_steps`` more steps, peak RSS over the trimmed RSS before.
    """
    import torch

    torch.set_num_threads(job["threads"])
    result = {"pid": os.getpid(), "threads": torch.get_num_threads(),
              "allocator_env": {k: os.environ[k] for k in ALLOCATOR_VARS if k in os.environ}, "variants": []}
    for variants in job["groups"].values():
        cases = [build_case(spec, job["seed"]) for spec in variants]
        cold = [_memory_probe(step, 1)["peak_extra_mb"] for step, _ in cases]
        for _ in range(job["warmup"]):
            for step, _ in cases:
                step()
        gc.collect()
        wall = [[] for _ in cases]
        cpu = [[] for _ in cases]
        order = list(range(len(cases)))
        for rep in range(job["repeats"]):
            for i in order[rep % len(order):] + order[:rep % len(order)]:
                tic, cpu_tic = time.perf_counter(), time.process_time()
                cases[i][0]()
                wall[i].append((time.perf_counter() - tic) * 1e3)
                cpu[i].append((time.process_time() - cpu_tic) * 1e3)
        memory = [_memory_probe(step, job["memory_steps"]) for step, _ in cases]
        for spec, w, c, m, cm, (_, info) in zip(variants, wall, cpu, memory, cold, cases):
            result["variants"].append({"name": spec["name"], "times_ms": w, "cpu_ms": c, **m,
                                       "cold_peak_extra_mb": cm, **info})
        del cases
        _trim()
    return result


def profile_worker(job: dict) -> str:
    import torch
    from torch.profiler import ProfilerActivity, profile

    torch.set_num_threads(job["threads"])
    step, _ = build_case(job["spec"], job["seed"])
    for _ in range(job["warmup"]):
        step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(job["repeats"]):
            step()
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=30)


# ---------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------


def run_job(job: dict, allocator: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ALLOCATOR_VARS}
    env.update(ALLOCATOR_MODES[allocator])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.setdefault("OMP_NUM_THREADS", str(job["threads"]))
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--_worker", json.dumps(job)],
        env=env, capture_output=True, text=True, cwd=str(REPO),
    )
    if proc.returncode != 0:
        raise RuntimeError(f"worker failed ({allocator}, exit status {proc.returncode}):\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def quantiles(values: list[float]) -> dict:
    ordered = sorted(values)
    if len(ordered) < 2:
        q1 = median = q3 = ordered[0]
    else:
        q1, median, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    return {"median_ms": median, "q1_ms": q1, "q3_ms": q3, "iqr_ms": q3 - q1, "n": len(ordered),
            "min_ms": ordered[0]}


def machine_info(threads: int) -> dict:
    import torch

    cpu = "unknown"
    try:
        match = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        cpu = match.group(1).strip() if match else cpu
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                                    capture_output=True, text=True).stdout.strip())
    except OSError:
        commit, dirty = "unknown", None
    try:
        import bpnetlite
        bpnet_version = getattr(bpnetlite, "__version__", "unknown")
    except ImportError:
        bpnet_version = None
    return {
        "torch": torch.__version__, "bpnetlite": bpnet_version, "python": platform.python_version(),
        "threads": threads, "nproc": os.cpu_count(), "cpu_model": cpu, "git_commit": commit,
        "git_worktree_modified": dirty, "platform": platform.platform(),
    }


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def run(args) -> dict:
    quick = args.quick
    rounds = args.rounds or (1 if quick else 3)
    repeats = args.repeats or (6 if quick else 45)
    warmup = args.warmup if args.warmup is not None else (1 if quick else 3)
    mem_steps = 2 if quick else 3
    per_round = max(1, math.ceil(repeats / rounds))
    groups = build_variants(args.batch, args.length, args.bpnet_batch, args.bpnet_length, args.bpnet_out)
    if args.only:
        groups = {k: v for k, v in groups.items() if any(s in k for s in args.only)}

    started = time.time()
    loads = [{"t_s": 0.0, "loadavg": loadavg()}]
    samples: dict[str, dict[str, dict[str, list]]] = {}
    infos: dict[str, dict] = {}
    modes = list(ALLOCATOR_MODES)
    for r in range(rounds):
        for allocator in (modes if r % 2 == 0 else modes[::-1]):
            job = {"groups": groups, "warmup": warmup, "repeats": per_round, "memory_steps": mem_steps,
                   "threads": args.threads, "seed": args.seed + r}
            out = run_job(job, allocator)
            for v in out["variants"]:
                store = samples.setdefault(allocator, {}).setdefault(
                    v["name"], {"times_ms": [], "cpu_ms": [], "peak_extra_mb": [], "cold_peak_extra_mb": []})
                for key in store:
                    value = v[key]
                    store[key].extend(value if isinstance(value, list) else [value])
                infos[v["name"]] = {k: v[k] for k in ("params", "cnn_hidden_channels", "argminn_params") if k in v}
            loads.append({"t_s": round(time.time() - started, 1), "loadavg": loadavg()})
            print(f"[{time.time() - started:6.1f}s] round {r + 1}/{rounds} {allocator:15s} load {loads[-1]['loadavg']} "
                  + " ".join(f"{v['name']}={statistics.median(v['times_ms']):.0f}ms" for v in out["variants"]),
                  flush=True)

    results = {"allocators": {}}
    for allocator in modes:
        rows = {}
        timing = {name: store["times_ms"] for name, store in samples.get(allocator, {}).items()}
        for name, store in samples.get(allocator, {}).items():
            peaks = [x for x in store["peak_extra_mb"] if x is not None]
            colds = [x for x in store["cold_peak_extra_mb"] if x is not None]
            rows[name] = {
                **quantiles(store["times_ms"]),
                "cpu_median_ms": statistics.median(store["cpu_ms"]),
                # the largest over rounds: a peak is what has to fit
                "peak_extra_mb": max(peaks) if peaks else None,
                "cold_peak_extra_mb": max(colds) if colds else None,
                **infos.get(name, {}),
            }
        derived = {}
        for filters, width, layers in ARGMINN_SIZES:
            key = size_key(filters, width, layers)
            on, off = rows.get(f"argminn_{key}_regs_on"), rows.get(f"argminn_{key}_regs_off")
            cnn = rows.get(f"cnn_{key}")
            if on and off:
                cost = on["median_ms"] / off["median_ms"] - 1
                derived[key] = {
                    "overlap_relative_cost": cost,
                    "overlap_relative_cost_paired": paired_ratio(timing[f"argminn_{key}_regs_on"],
                                                                 timing[f"argminn_{key}_regs_off"]) - 1,
                    "overlap_relative_cost_cpu": on["cpu_median_ms"] / off["cpu_median_ms"] - 1,
                    "meets_overlap_target": cost <= OVERLAP_TARGET,
                    "speedup_vs_original_regs_on": ORIGINAL[key]["regs_on_ms"] / on["median_ms"],
                    "speedup_vs_original_regs_off": ORIGINAL[key]["regs_off_ms"] / off["median_ms"],
                    "argminn_regs_off_over_cnn": off["median_ms"] / cnn["median_ms"] if cnn else None,
                }
        for model in ("argminn_F8_K10_L1", "bpnet"):
            on, off = rows.get(f"{model}_prior_on"), rows.get(f"{model}_prior_off")
            if on and off:
                slowdown = on["median_ms"] / off["median_ms"]
                derived[f"prior_{model}"] = {
                    "slowdown": slowdown,
                    "slowdown_paired": paired_ratio(timing[f"{model}_prior_on"], timing[f"{model}_prior_off"]),
                    "slowdown_cpu": on["cpu_median_ms"] / off["cpu_median_ms"],
                    "meets_prior_target": slowdown <= PRIOR_TARGET,
                    "memory_ratio": (on["peak_extra_mb"] / off["peak_extra_mb"]
                                     if on.get("peak_extra_mb") and off.get("peak_extra_mb") else None),
                }
        results["allocators"][allocator] = {"env": ALLOCATOR_MODES[allocator], "steps": rows, "derived": derived,
                                            "raw_times_ms": timing}

    return {
        "benchmark": "training_speed",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "wall_time_s": round(time.time() - started, 1),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine_info(args.threads),
        "loadavg": loads,
        "settings": {
            "quick": quick, "rounds": rounds, "steps_per_round": per_round, "warmup_per_process": warmup,
            "memory_steps": mem_steps, "batch": args.batch, "length": args.length,
            "bpnet_batch": args.bpnet_batch, "bpnet_length": args.bpnet_length, "bpnet_out": args.bpnet_out,
            "regs_on_weights": REGS_ON, "seed": args.seed,
        },
        "targets": {"overlap_relative_cost_max": OVERLAP_TARGET, "prior_slowdown_max": PRIOR_TARGET},
        "original": {"steps": ORIGINAL, "prior_slowdown": ORIGINAL_PRIOR_SLOWDOWN,
                     "flop_bound_fwd_bwd_ms": ORIGINAL_FLOP_BOUND_MS},
        "results": results,
    }


def paired_ratio(a: list[float], b: list[float]) -> float:
    """Median of per-repetition ratios a_i / b_i (steps i were taken back to back in one process)."""
    return statistics.median(x / y for x, y in zip(a, b))


def fmt(value, spec=".1f", none="–") -> str:
    return none if value is None else format(value, spec)


def markdown(report: dict) -> str:
    m = report["machine"]
    s = report["settings"]
    loads = report["loadavg"]
    max_load = max(x["loadavg"][0] for x in loads)
    lines = [
        "# Training-step speed (`benchmarks/training_speed.py`)",
        "",
        f"- Created {report['created']}, wall time {report['wall_time_s']:.0f} s"
        + (" (**--quick**: few repetitions, indicative only)" if s["quick"] else ""),
        f"- Command: `{report.get('command', '')}`",
        f"- torch {m['torch']}, bpnet-lite {m['bpnetlite']}, Python {m['python']}; {m['threads']} threads; "
        f"nproc {m['nproc']}; CPU `{m['cpu_model']}`",
        f"- git {m['git_commit']}" + (" (working tree has uncommitted changes)" if m["git_worktree_modified"] else ""),
        f"- Load average (1/5/15 min) at start {loads[0]['loadavg']}, at end {loads[-1]['loadavg']}, highest 1-min "
        f"value seen {max_load:.2f} on {m['nproc']} CPUs"
        + (" — **the machine was shared and oversubscribed; absolute times are inflated, compare ratios "
           "and the CPU-time column**" if max_load > (m["nproc"] or 1) else "") + ".",
        f"- {s['rounds']} round(s) x {s['steps_per_round']} timed steps per variant and allocator mode, after "
        f"{s['warmup_per_process']} warm-up step(s); variants of one group take turns step by step.",
        f"- ARGMINN/CNN: batch {s['batch']} x {s['length']} bp random one-hot, binary labels. BPNet "
        f"(64 filters, 8 layers, 2 outputs, no controls): batch {s['bpnet_batch']} x {s['bpnet_length']} bp -> "
        f"{s['bpnet_out']} bp profile, Poisson(0.5) counts. Regularisers on = {s['regs_on_weights']}; off = all 0 "
        "(the package still evaluates the terms without gradients for its log).",
        "- One step = zero_grad, `training.forward_and_loss` (forward pass(es) + `compute_loss`; with the prior "
        "on positives only, a model without training-mode BatchNorm, i.e. BPNet, runs positives and the rest as "
        "two passes), `training.backward_parameters`, clip_grad_norm_(1), Adam — the order of `fit`. Labels are "
        "about half positive.",
        "- `cpu ms`: process CPU time per step (all threads). `peak MB`: peak RSS of a step over the trimmed RSS "
        "before it (`VmHWM` reset through /proc/self/clear_refs); `cold MB`: the same for the very first step.",
        "",
    ]
    for allocator, block in report["results"]["allocators"].items():
        env = ", ".join(f"{k}={v}" for k, v in block["env"].items()) or "glibc defaults (unset)"
        lines += [f"## Allocator: {allocator} ({env})", "",
                  "| variant | params | median ms | IQR ms | min ms | cpu ms | peak MB | cold MB |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for name, row in block["steps"].items():
            lines.append(
                f"| {name} | {row.get('params', '')} | {row['median_ms']:.1f} | {row['iqr_ms']:.1f} | "
                f"{row['min_ms']:.1f} | {row['cpu_median_ms']:.1f} | {fmt(row.get('peak_extra_mb'), '.0f')} | "
                f"{fmt(row.get('cold_peak_extra_mb'), '.0f')} |")
        lines += ["", "| ARGMINN size | overlap cost (i)/(ii)−1 | paired | cpu | ≤15 %? | (i): ours vs original | "
                  "(ii): ours vs original | (ii)/CNN |", "|---|---:|---:|---:|:---:|---:|---:|---:|"]
        for key, d in block["derived"].items():
            if key.startswith("prior_"):
                continue
            on = block["steps"][f"argminn_{key}_regs_on"]["median_ms"]
            off = block["steps"][f"argminn_{key}_regs_off"]["median_ms"]
            original = ORIGINAL[key]
            lines.append(
                f"| {key} | {100 * d['overlap_relative_cost']:+.1f} % "
                f"| {100 * d['overlap_relative_cost_paired']:+.1f} % "
                f"| {100 * d['overlap_relative_cost_cpu']:+.1f} % | {'yes' if d['meets_overlap_target'] else 'NO'} "
                f"| {on:.1f} vs {original['regs_on_ms']:.0f} ms ({d['speedup_vs_original_regs_on']:.1f}x faster) "
                f"| {off:.1f} vs {original['regs_off_ms']} ms "
                f"({1 / d['speedup_vs_original_regs_off']:.2f}x the time) "
                f"| {fmt(d['argminn_regs_off_over_cnn'], '.2f')} |")
        lines += ["", "| prior | slowdown | paired | cpu | ≤2.0x? | peak-memory ratio |",
                  "|---|---:|---:|---:|:---:|---:|"]
        for key, d in block["derived"].items():
            if key.startswith("prior_"):
                lines.append(f"| {key[6:]} | {d['slowdown']:.2f}x | {d['slowdown_paired']:.2f}x | "
                             f"{d['slowdown_cpu']:.2f}x | {'yes' if d['meets_prior_target'] else 'NO'} | "
                             f"{fmt(d['memory_ratio'], '.2f')} |")
        lines.append("")
    lines += [
        "## Original implementation (shared/specs/performance.md, same batch, 2 threads, quiet machine)",
        "",
        "| size | full step | without overlap | peak MB with / without |",
        "|---|---:|---:|---:|",
    ]
    for key, o in ORIGINAL.items():
        lines.append(f"| {key} | {o['regs_on_ms']:.0f} ms | {o['regs_off_ms']} ms | "
                     f"{o['regs_on_mb']} / {o['regs_off_mb']} |")
    lines += ["", f"Original Fourier-prior slowdown: {ORIGINAL_PRIOR_SLOWDOWN}. FLOP bound per forward+backward: "
              + ", ".join(f"{k} {v} ms" for k, v in ORIGINAL_FLOP_BOUND_MS.items()) + ".", ""]
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed steps per variant and allocator mode, split over the rounds "
                             "(default 45; quick 6)")
    parser.add_argument("--warmup", type=int, default=None,
                        help="untimed steps per variant at the start of every timing process (default 3; quick 1)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="rounds, each a fresh process per allocator mode (default 3; quick 1)")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads in every worker (default 2)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 round, 6 steps, 1 warm-up step")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results", help="output folder")
    parser.add_argument("--name", default="training_speed",
                        help="stem of the output files, <out>/<name>.json and .md (default training_speed)")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--length", type=int, default=500)
    parser.add_argument("--bpnet-batch", type=int, default=16)
    parser.add_argument("--bpnet-length", type=int, default=2114)
    parser.add_argument("--bpnet-out", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="*", help="run only groups whose name contains one of these strings")
    parser.add_argument("--profile", metavar="VARIANT",
                        help="print a torch.profiler table for one variant (e.g. argminn_F8_K10_L1_regs_on) and exit")
    parser.add_argument("--allocator", choices=list(ALLOCATOR_MODES), default="high_thresholds",
                        help="allocator mode for --profile")
    parser.add_argument("--render", type=Path, metavar="JSON",
                        help="re-write the .md table from an existing training_speed.json into --out and exit")
    parser.add_argument("--_worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args._worker:
        job = json.loads(args._worker)
        print(json.dumps({"table": profile_worker(job)} if job.get("profile") else worker(job)))
        return
    if args.render:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"{args.name}.md").write_text(markdown(json.loads(args.render.read_text())))
        return
    if args.profile:
        groups = build_variants(args.batch, args.length, args.bpnet_batch, args.bpnet_length, args.bpnet_out)
        specs = {v["name"]: v for vs in groups.values() for v in vs}
        if args.profile not in specs:
            parser.error(f"unknown variant {args.profile!r}; choose from {sorted(specs)}")
        job = {"profile": True, "spec": specs[args.profile], "warmup": args.warmup or 3,
               "repeats": args.repeats or 10, "threads": args.threads, "seed": args.seed}
        print(run_job(job, args.allocator)["table"])
        return

    report = run(args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(report, indent=1) + "\n")
    (args.out / f"{args.name}.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
