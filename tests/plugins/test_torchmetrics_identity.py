"""TorchMetrics: the identity check runs on every load path (issue 25, item 2) and the frictions of issue 27."""

from __future__ import annotations

import importlib
import sys
import warnings
from pathlib import Path

import pytest
import torch

from pe_iqa.backbones import Backbone, load_backbone
from pe_iqa_torchmetrics import PEFeatureDistance

pytestmark = pytest.mark.slow  # the random AlexNet's relu1 analysed once (~9 s on 2 shared cores), then ~1 s a test


@pytest.fixture(scope="module")
def network() -> Backbone:
    return load_backbone("alexnet", ["relu1"], weights="random")


@pytest.fixture()
def make(network: Backbone):
    """Cheap metrics: ``make(top_percent, **options)`` on the module's random AlexNet relu1 (shared)."""

    def build(top_percent: int = 25, **kwargs) -> PEFeatureDistance:
        return PEFeatureDistance("pe_alex", backbone=network, layers=["relu1"], top_percent=top_percent, **kwargs)

    return build


@pytest.fixture(scope="module")
def images() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    target = torch.rand(4, 3, 64, 64, generator=generator)
    return (target + 0.1 * torch.randn(4, 3, 64, 64, generator=generator)).clamp(0, 1), target


def test_a_non_persistent_metric_refuses_states_of_another_configuration(make, images) -> None:
    """Item 2: a non-persistent metric accepted another configuration's persistent states and computed their mean;
    a later ``merge_state`` mixed both."""
    other = make(50)
    other.persistent(True)
    other.update(*images)
    mine = make(25)  # states not persistent
    mine.update(images[1], images[1])
    with pytest.raises(ValueError, match=r"^cannot load: the state dict holds pe_alex scores made under another "
                                         r"configuration \(spec: .*build the metric with the same options"):
        mine.load_state_dict(other.state_dict())
    assert float(mine.compute()) == 0.0 and int(mine.total) == 4  # nothing loaded
    without_record = {k: v for k, v in other.state_dict().items() if k != "_extra_state"}
    with pytest.raises(ValueError, match=r"^cannot load: the state dict has no record for pe_alex"):
        mine.load_state_dict(without_record)
    with pytest.raises(ValueError, match=r"^cannot merge: the incoming metric state holds pe_alex scores"):
        mine.merge_state(other)
    with pytest.raises(ValueError, match=r"^cannot merge: the incoming metric state has no record for pe_alex"):
        mine.merge_state({"sum_scores": other.sum_scores, "total": other.total})


def test_states_of_the_same_configuration_load_whatever_their_persistence(make, images) -> None:
    saved = make()
    saved.persistent(True)
    saved.update(*images)
    for persistent in (False, True):
        mine = make()
        mine.persistent(persistent)
        mine.load_state_dict(saved.state_dict())
        assert float(mine.compute()) == float(saved.compute()) and int(mine.total) == 4


def test_compute_after_loading_data_does_not_warn_before_update(make, images) -> None:
    """Issue 27: ``compute()`` after ``load_state_dict`` warned "called before update" although the value is right."""
    saved = make(per_sample=True)
    saved.persistent(True)
    saved.update(*images)
    for per_sample in (True, False):
        source = saved if per_sample else make()
        if not per_sample:
            source.persistent(True)
            source.update(*images)
        mine = make(per_sample=per_sample)
        mine.load_state_dict(source.state_dict())
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            torch.testing.assert_close(mine.compute(), source.compute())
    empty = make()
    empty.persistent(True)
    fresh = make()
    fresh.load_state_dict(empty.state_dict())
    with pytest.warns(UserWarning, match="before the ``update`` method"):
        fresh.compute()  # nothing loaded: TorchMetrics' warning stays


def test_a_misspelled_option_lists_the_valid_ones() -> None:
    """Issue 27: ``top_precent`` got TorchMetrics' generic "Unexpected keyword arguments"."""
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['top_precent'\] \(did you mean 'top_precent' → "
                                         r"'top_percent'\?\); .*'top_percent'.*'sync_on_compute'"):
        PEFeatureDistance("pe_alex", top_precent=10)


def _gather_with(other: PEFeatureDistance):
    """A ``dist_sync_fn`` of a world of two: this process and one whose metric is ``other``."""
    import json

    record = json.dumps(other.provenance().to_dict(), sort_keys=True).encode("utf-8")

    def gather(tensor: torch.Tensor, group: object = None) -> list[torch.Tensor]:
        if tensor.dtype == torch.int32:  # the record
            return [tensor, torch.tensor(list(record), dtype=torch.int32)]
        return [tensor, tensor.clone()]

    return gather


def test_sync_refuses_processes_of_another_configuration(make, images) -> None:
    """Item 2: a DDP-like sync of mixed configurations averaged silently."""
    mine = make(25)
    mine.update(*images)
    before = float(mine.sum_scores)
    with pytest.raises(ValueError, match=r"^cannot sync: process 1 holds pe_alex scores made under another"):
        mine._sync_dist(_gather_with(make(50)))
    assert float(mine.sum_scores) == before
    mine._sync_dist(_gather_with(make(25)))
    assert float(mine.sum_scores) == pytest.approx(2 * before)


def test_two_process_sync_of_mixed_configurations_is_refused_on_every_rank(images, tmp_path) -> None:
    """Two spawned interpreters (gloo) whose metrics keep other channel shares: both refuse the synced compute."""
    import torch.multiprocessing as mp

    worker_dir = str(Path(__file__).parent)
    if worker_dir not in sys.path:
        sys.path.insert(0, worker_dir)
    mixed_shard = importlib.import_module("ddp_worker").mixed_shard
    preds, target = images
    shards = [(preds[:2], target[:2]), (preds[2:], target[2:])]
    mp.spawn(mixed_shard, args=(2, str(tmp_path / "store"), str(tmp_path), shards), nprocs=2, join=True)
    for rank in range(2):
        message = (tmp_path / f"rank{rank}.txt").read_text(encoding="utf-8")
        assert message.startswith(f"cannot sync: process {1 - rank} holds pe_alex scores made under another"), message
        assert "top" in message or "spec" in message
