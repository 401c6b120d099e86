"""Turning a failed weight download inside pyiqa into one line that names the metric and the file it needs.

pyiqa downloads a metric's weights on first use (``pyiqa.utils.download_util.load_file_from_url``); offline, that
ends in a bare ``<urlopen error …>``. :func:`explain_download_failure` reads the URL and the expected file from
the failing call's frame and says what to do.
"""

from __future__ import annotations

import os
import traceback

__all__ = ["explain_download_failure"]

_DOWNLOAD_FUNCTION = "load_file_from_url"
_METRIC_NAME_HOLDERS = ("create_metric", "__init__")


def _frames(error: BaseException):
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield from (frame for frame, _ in traceback.walk_tb(error.__traceback__))
        error = error.__cause__ or error.__context__


def explain_download_failure(error: BaseException, metric: str | None = None) -> str | None:
    """One line naming the metric, the weight file and where it was expected, if ``error`` is a failed download.

    Args:
        error: an exception raised while pyiqa built a metric.
        metric: the metric's name, if the caller knows it (else read from pyiqa's frames).

    Returns:
        The message, or ``None`` when ``error`` did not come from a weight download.

    Example:
        >>> explain_download_failure(ValueError("not a download")) is None
        True
    """
    download = None
    for frame in _frames(error):
        if frame.f_code.co_name == _DOWNLOAD_FUNCTION and "url" in frame.f_locals:
            download = dict(frame.f_locals)
        elif metric is None and frame.f_code.co_name in _METRIC_NAME_HOLDERS:
            name = frame.f_locals.get("metric_name")
            metric = name if isinstance(name, str) else metric
    if download is None:
        return None
    url = str(download.get("url"))
    target = download.get("cached_file")
    if target is None:
        folder, name = download.get("model_dir") or "", download.get("file_name") or os.path.basename(url)
        target = os.path.join(str(folder), str(name))
    reason = " ".join(str(error).split()) or type(error).__name__
    who = f"pyiqa metric {metric!r}" if metric else "a pyiqa metric"
    return (f"{who} needs the weight file {os.path.basename(str(target))}, expected at {target}, and could not "
            f"download it from {url} ({reason}); copy the file there (its folder follows TORCH_HOME) or run once "
            f"with internet access")
