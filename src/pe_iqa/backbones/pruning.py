"""Pruning a backbone's deepest tap to the selected channels, so the unselected ones are never computed."""

from __future__ import annotations

import copy

import torch
from torch import fx, nn

from .module import Backbone

__all__ = ["prune_deepest_tap"]


def prune_deepest_tap(backbone: Backbone, channels: torch.Tensor) -> Backbone | None:
    """A copy of ``backbone`` whose deepest tap computes only ``channels`` (or ``None`` if not possible).

    When the deepest tapped layer is ``Conv2d → ReLU`` in a torchvision feature extractor and nothing else
    reads that convolution, the convolution is replaced by one holding only the selected output filters, so
    the unselected channels are never computed. The pruned tap returns channels in the order of ``channels``.
    The original backbone is left untouched (the copy shares no parameters with it) and the copy is marked
    :attr:`~pe_iqa.backbones.Backbone.pruned`, so it cannot be mistaken for the whole network.

    Args:
        backbone: a torchvision-based :class:`~pe_iqa.backbones.Backbone`.
        channels: ``(K,)`` int64 indices of the channels to keep at the deepest tap.

    Returns:
        The pruned copy, or ``None`` for other architectures (timm nets, taps that are not conv→ReLU).
    """
    extractor = backbone.extractor
    if not isinstance(extractor, fx.GraphModule):
        return None
    deepest = backbone.layers[-1]
    output = next(node for node in extractor.graph.nodes if node.op == "output")
    tap = output.args[0].get(deepest) if isinstance(output.args[0], dict) else None
    if tap is None or tap.op != "call_module" or not isinstance(extractor.get_submodule(tap.target), nn.ReLU):
        return None
    conv_node = tap.args[0]
    if conv_node.op != "call_module" or len(conv_node.users) != 1 or len(tap.users) != 1:
        return None
    conv = extractor.get_submodule(conv_node.target)
    if not isinstance(conv, nn.Conv2d) or conv.groups != 1:
        return None
    index = channels.detach().to(device=conv.weight.device, dtype=torch.long)
    pruned_conv = nn.Conv2d(conv.in_channels, int(index.numel()), conv.kernel_size, conv.stride, conv.padding,
                            conv.dilation, 1, conv.bias is not None, conv.padding_mode,
                            device=conv.weight.device, dtype=conv.weight.dtype)
    with torch.no_grad():
        pruned_conv.weight.copy_(conv.weight.index_select(0, index))
        if conv.bias is not None:
            pruned_conv.bias.copy_(conv.bias.index_select(0, index))
    new_extractor = copy.deepcopy(extractor)
    parent_name, _, child_name = conv_node.target.rpartition(".")
    setattr(new_extractor.get_submodule(parent_name) if parent_name else new_extractor, child_name, pruned_conv)
    pruned = Backbone(backbone.spec, backbone.layers, new_extractor, backbone.weights, backbone.weights_id,
                      pruned=True)
    pruned._min_size = backbone._min_size  # fewer output channels, same geometry: the same smallest input
    return pruned.to(backbone.mean.device)
