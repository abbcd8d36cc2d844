"""Worker launched by ``torchrun`` from tests/test_distributed.py (not a test module itself).

``python -m torch.distributed.run --standalone --nproc_per_node 2 tests/_ddp_script.py ROOT PARAMS``

1. Every rank moves into its own folder ``ROOT/rank{RANK}`` and runs ``argminn fit -p PARAMS``
   exactly as ``python -m argminn_plugin.cli`` would (``PARAMS`` must use absolute data paths and
   a relative ``name``). Only rank 0 may write files, so ``ROOT/rank1`` must stay empty.
2. Then, in the same process group, a direct :func:`argminn_plugin.training.fit` on an in-memory
   loader whose second batch holds a NaN in rank 1's slice only: every rank must skip that batch
   (a rank that skipped it alone would leave the gradient all-reduces out of step and hang).
   Each rank saves its final weights and skip count to ``ROOT/nan/rank{RANK}.pt``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch


def _nan_check(root: Path, rank: int) -> None:
    from argminn_plugin.model import ARGMINN
    from argminn_plugin.training import fit

    out = root / "nan"
    out.mkdir(exist_ok=True)
    gen = torch.Generator().manual_seed(5)
    X = torch.nn.functional.one_hot(torch.randint(0, 4, (3, 8, 60), generator=gen), 4).permute(0, 1, 3, 2).float()
    y = (torch.rand(3, 8, 1, generator=gen) > 0.5).float()
    X[1, -1, :, 7] = float("nan")  # the last example of batch 1 falls in rank 1's half
    batches = [(X[i], y[i], y[i, :, 0].long()) for i in range(3)]
    torch.manual_seed(0)
    model = ARGMINN(4, 6, 1, 2, 8, 16, 16, head="binary", batch_norm=False, name=str(out / "nan_model"),
                    verbose=False)
    model.validate_inputs = False  # let the NaN reach the loss
    fit(model, batches, torch.optim.SGD(model.parameters(), lr=0.1), max_epochs=1, schedule="none",
        random_state=0, progress=False)
    import pandas as pd

    skipped = None
    if rank == 0:
        skipped = int(pd.read_csv(out / "nan_model.log", sep="\t")["Skipped Batches"].iloc[0])
    torch.save({"state": model.state_dict(), "skipped_in_log": skipped}, out / f"rank{rank}.pt")


def main() -> int:
    root, params = Path(sys.argv[1]).resolve(), str(Path(sys.argv[2]).resolve())
    rank = int(os.environ["RANK"])
    rank_dir = root / f"rank{rank}"
    rank_dir.mkdir(parents=True, exist_ok=True)
    os.chdir(rank_dir)
    from argminn_plugin import cli

    status = cli.main(["fit", "-p", params])
    if status:
        return status
    os.chdir(root)
    _nan_check(root, rank)
    return 0


if __name__ == "__main__":
    sys.exit(main())
