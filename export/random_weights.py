"""Write seeded random VGG weights in torchvision's state-dict format, for trying nst-rt offline.

    python -m nst_rt.export.random_weights vgg19 vgg19-random.pth [--seed 0]

Random filters make every gradient, parity and convergence check meaningful, but not pretty pictures:
use torchvision's ImageNet weights (the default of ``nst-rt export``) for real stylization.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from .vgg import CONFIGS, random_state_dict


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m nst_rt.export.random_weights", description=__doc__.splitlines()[0])
    parser.add_argument("arch", choices=sorted(CONFIGS))
    parser.add_argument("output", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.output.exists():
        parser.error(f"{args.output} already exists; remove it or choose another name")
    torch.save(random_state_dict(args.arch, args.seed), args.output)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
