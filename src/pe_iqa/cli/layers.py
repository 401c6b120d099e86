"""``pe-iqa layers``: the layer names of a backbone (what ``--layers`` and ``layers=`` accept), with channel counts."""

from __future__ import annotations

import argparse

from .errors import usage_errors
from .output import print_table

__all__ = ["add_parser", "run"]


def add_parser(commands: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "layers", help="list a backbone's layers", parents=parents,
        description="List the layers of a backbone, shallow to deep, with their channel counts and whether they "
                    "are among its default layers (probed with random weights: nothing is downloaded).",
        epilog="examples:\n  pe-iqa layers alexnet\n  pe-iqa layers timm:efficientnet_b0",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("backbone", help="backbone name: alexnet, vgg16, resnet18, ..., or timm:<model>")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the table (stdout)."""
    from ..backbones import backbone_spec, load_backbone

    with usage_errors():  # an unknown backbone or a transformer: exit status 2
        spec = backbone_spec(args.backbone)
    channels = load_backbone(spec.name, spec.layers, weights="random").channels()
    rows = [[layer, str(channels[layer]), "default" if layer in spec.default_layers else ""] for layer in spec.layers]
    print(f"{spec.name}: {len(spec.layers)} layers ({spec.source}), shallow to deep")
    print_table(["layer", "channels", ""], rows, indent="  ")
    return 0
