"""The smallest input a feature extractor accepts, computed from its layers' geometry (no forward pass).

For a torchvision feature extractor (a ``torch.fx`` graph), the spatial side of every node is propagated through the
graph with the convolution/pooling size formula (``⌊(n + 2p − d(k − 1) − 1)/s⌋ + 1``, ``⌈·⌉`` for ``ceil_mode``
pooling); element-wise modules and functions keep it. The smallest valid side is then found on that arithmetic,
not by running the network. A graph holding an operation this module does not know returns ``None``, and the caller
falls back to probing the network.
"""

from __future__ import annotations

import operator

import torch
from torch import fx, nn

__all__ = ["geometric_min_input_size"]

_SAME_SIZE_MODULES = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Hardswish, nn.Sigmoid, nn.BatchNorm2d,
                      nn.Dropout, nn.Identity, nn.LocalResponseNorm)
_SAME_SIZE_FUNCTIONS = frozenset({operator.add, operator.mul, torch.add, torch.mul, torch.relu, torch.cat,
                                  nn.functional.relu})
_SAME_SIZE_METHODS = frozenset({"relu", "add", "mul", "contiguous"})


def _pair_first(value: int | tuple[int, ...]) -> tuple[int, bool]:
    """The first entry of a size argument and whether both entries agree (square geometry)."""
    if isinstance(value, tuple):
        return int(value[0]), len(set(value)) == 1
    return int(value), True


def _window_output(size: int, module: nn.Module) -> int | None:
    """Output side of a convolution or pooling window on an input of side ``size`` (``None``: not handled)."""
    params = []
    for name in ("kernel_size", "stride", "padding", "dilation"):
        value = getattr(module, name, 1)
        if isinstance(value, str):
            return None
        first, square = _pair_first(value)
        if not square:
            return None
        params.append(first)
    kernel, stride, padding, dilation = params
    span = size + 2 * padding - dilation * (kernel - 1) - 1  # PyTorch rounds towards −∞, also when negative
    if getattr(module, "ceil_mode", False):
        out = (span + stride - 1) // stride + 1
        if (out - 1) * stride >= size + padding:  # the last window must start inside the input or left padding
            out -= 1
        return out
    return span // stride + 1


def _node_size(node: fx.Node, graph_module: fx.GraphModule, sizes: dict[fx.Node, int]) -> int | None:
    inputs = [sizes[arg] for arg in node.all_input_nodes if arg in sizes]
    if node.op == "call_module":
        module = graph_module.get_submodule(str(node.target))
        if isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            return _window_output(inputs[0], module)
        if isinstance(module, nn.AdaptiveAvgPool2d | nn.AdaptiveMaxPool2d):
            first, square = _pair_first(module.output_size)
            return first if square and inputs[0] >= 1 else None
        if isinstance(module, _SAME_SIZE_MODULES):
            return inputs[0]
        return None
    if (node.op == "call_function" and node.target in _SAME_SIZE_FUNCTIONS) or (
            node.op == "call_method" and node.target in _SAME_SIZE_METHODS):
        return min(inputs) if inputs and len(set(inputs)) == 1 else (0 if inputs and min(inputs) < 1 else None)
    return None


def _tap_sizes(graph_module: fx.GraphModule, side: int) -> dict[str, int] | None:
    """Spatial side of every tap for a square input of ``side`` pixels (``None``: an operation not handled)."""
    sizes: dict[fx.Node, int] = {}
    for node in graph_module.graph.nodes:
        if node.op == "placeholder":
            sizes[node] = side
        elif node.op == "output":
            taps = node.args[0]
            if not isinstance(taps, dict):
                return None
            return {name: sizes.get(tap, 0) for name, tap in taps.items()}
        elif node.op == "get_attr":
            continue
        else:
            size = _node_size(node, graph_module, sizes)
            if size is None:
                return None
            sizes[node] = max(size, 0)
    return None


def geometric_min_input_size(extractor: nn.Module, limit: int = 4096) -> int | None:
    """Smallest square side every tap of ``extractor`` gives at least one position for, and at least the deepest
    tap's total stride (see :attr:`~pe_iqa.backbones.Backbone.min_input_size`).

    Args:
        extractor: a ``torch.fx`` feature extractor returning ``{tap: activations}``.
        limit: the largest side considered.

    Returns:
        The side in pixels, or ``None`` when the extractor is not an fx graph or holds an operation whose geometry
        is not handled here.
    """
    if not isinstance(extractor, fx.GraphModule):
        return None
    probe = _tap_sizes(extractor, 256)
    if probe is None or not probe:
        return None

    def valid(side: int) -> bool:
        taps = _tap_sizes(extractor, side)
        return taps is not None and all(size >= 1 for size in taps.values())

    if not valid(limit):
        return None
    low, high = 1, limit
    while low < high:  # the sides grow monotonically with the input's
        mid = (low + high) // 2
        if valid(mid):
            high = mid
        else:
            low = mid + 1
    stride = max(-(-256 // size) for size in probe.values()) if all(probe.values()) else None
    return None if stride is None else max(high, stride)
