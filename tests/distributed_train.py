"""A training under torchrun, for tests/test_distributed.py:

    python -m torch.distributed.run --nproc_per_node 2 tests/distributed_train.py CONFIG OUT STATES [--recover]
        [--overrides JSON] [--die_at N]

Every rank runs the Trainer, then saves its model's state_dict to ``STATES/rank<r>.pt`` (to compare the ranks).
``--die_at N``: rank 0 dies (no cleanup, like a kill) at its N-th training step, to test ``--recover``.
"""
import argparse
import os
import sys
from pathlib import Path

import torch

from hmtl.checks import load_config
from hmtl.errors import HmtlError
from hmtl.training import distributed
from hmtl.training.trainer import Trainer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("config")
    parser.add_argument("out")
    parser.add_argument("states")
    parser.add_argument("--recover", action="store_true")
    parser.add_argument("--overrides", default=None)
    parser.add_argument("--die_at", type=int, default=None)
    args = parser.parse_args()
    out = Path(args.out)
    config = load_config(out / "config.json" if args.recover else args.config, args.overrides, expand=not args.recover)
    try:
        trainer = Trainer(config, out, recover=args.recover)
    except HmtlError as error:
        if distributed.rank() == 0:
            print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    if args.die_at and trainer.dist.rank == 0:
        forward, calls = trainer.model.forward, [0]

        def dying_forward(batch):
            calls[0] += 1
            if calls[0] == args.die_at:
                os._exit(1)
            return forward(batch)

        trainer.model.forward = dying_forward
    trainer.train()
    Path(args.states).mkdir(parents=True, exist_ok=True)
    torch.save(trainer.model.state_dict(), Path(args.states) / f"rank{trainer.dist.rank}.pt")
    distributed.shutdown()


if __name__ == "__main__":
    main()
