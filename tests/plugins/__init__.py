"""Tests of the TorchMetrics and pyiqa adapter packages (``plugins/``)."""
