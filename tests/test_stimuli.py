"""Gratings: spectral content checked with an FFT, plus range, shape, contrast, phases, device/dtype, errors."""

from __future__ import annotations

import math

import pytest
import torch

from pe_iqa.analysis.stimuli import DEFAULT_VIEWING, ViewingCondition, oriented_gratings, radial_gratings

# 256 px at 64 px/deg: one FFT bin is 1/256 cycles/pixel = 0.25 cycles/degree.
VIEW = ViewingCondition(pixels_per_degree=64.0, size=256)


def _windowed_spectrum(image: torch.Tensor) -> torch.Tensor:
    """|FFT|² of one grey plane (``(H, W)``) after removing the mean and applying a 2-D Hann window."""
    plane = image.double() - image.double().mean()
    n = plane.shape[-1]
    window = torch.hann_window(n, periodic=False, dtype=torch.float64)
    return torch.fft.fft2(plane * window[:, None] * window[None, :]).abs() ** 2


def _radial_peak_cycles_per_pixel(image: torch.Tensor) -> float:
    """Radius (cycles/pixel) of the annulus with the highest mean spectral power."""
    power = _windowed_spectrum(image)
    n = power.shape[-1]
    k = torch.fft.fftfreq(n, dtype=torch.float64)
    ky, kx = torch.meshgrid(k, k, indexing="ij")
    bins = torch.round(torch.sqrt(kx**2 + ky**2) * n).long().flatten()
    total = torch.zeros(int(bins.max()) + 1, dtype=torch.float64).index_add_(0, bins, power.flatten())
    count = torch.zeros_like(total).index_add_(0, bins, torch.ones_like(power.flatten()))
    profile = total / count.clamp_min(1)
    profile[0] = 0.0  # DC (already ~0 after removing the mean)
    return int(torch.argmax(profile)) / n


def _peak_bin(image: torch.Tensor) -> tuple[int, int]:
    """(kx, ky) of the strongest Fourier component in signed bins; kx along columns, ky along rows."""
    power = _windowed_spectrum(image)
    n = power.shape[-1]
    iy, ix = divmod(int(torch.argmax(power)), n)
    signed = torch.fft.fftfreq(n) * n
    return int(signed[ix]), int(signed[iy])


@pytest.mark.slow  # 3.7 s measured (quick-tier run, 2 shared cores)
@pytest.mark.parametrize("cpd", [1.0, 2.5, 5.0, 7.9, 12.0, 20.0, 30.0])
def test_radial_grating_spectral_peak_at_requested_frequency(cpd: float) -> None:
    image = radial_gratings(torch.tensor([cpd]), VIEW, n_phases=1)[0, 0]
    expected = cpd / VIEW.pixels_per_degree  # cycles per pixel
    assert _radial_peak_cycles_per_pixel(image) == pytest.approx(expected, abs=1.0 / VIEW.size + 1e-12)


@pytest.mark.slow  # 6.6 s measured (quick-tier run, 2 shared cores)
@pytest.mark.parametrize("cpd", [4.0, 7.9, 16.0])
@pytest.mark.parametrize("degrees", [0, 20, 30, 45, 90, 120, 150, 170])
def test_oriented_grating_spectral_peak_at_frequency_and_orientation(cpd: float, degrees: float) -> None:
    theta = math.radians(degrees)
    image = oriented_gratings(cpd, torch.tensor([theta]), VIEW, n_phases=1)[0, 0]
    kx, ky = _peak_bin(image)
    radius_bins = cpd / VIEW.pixels_per_degree * VIEW.size
    # θ is the direction of the wave vector with x to the right (columns) and y DOWN (rows); a real cosine has
    # power at ±k, so either sign of the expected vector is a match.
    expected_x, expected_y = radius_bins * math.cos(theta), radius_bins * math.sin(theta)
    matches = [abs(s * kx - expected_x) <= 1.0 and abs(s * ky - expected_y) <= 1.0 for s in (1, -1)]
    assert any(matches), f"peak at bins ({kx}, {ky}), expected ±({expected_x:.1f}, {expected_y:.1f})"


def test_oriented_grating_convention_in_image_space() -> None:
    theta = torch.tensor([0.0, math.pi / 2])
    vertical, horizontal = oriented_gratings(4.0, theta, VIEW, n_phases=1)[:, 0]
    # θ = 0: luminance varies along x only (vertical bars); θ = π/2: along y only (horizontal bars).
    torch.testing.assert_close(vertical, vertical[:1].expand_as(vertical))
    torch.testing.assert_close(horizontal, horizontal[:, :1].expand_as(horizontal))
    assert float(vertical[0].std()) > 0.1 and float(horizontal[:, 0].std()) > 0.1
    # θ = π/4 with y down: constant along the anti-diagonal direction (x + y constant), varying along x = y.
    diagonal = oriented_gratings(4.0, torch.tensor([math.pi / 4]), VIEW, n_phases=1)[0, 0]
    anti = torch.stack([diagonal[i, 100 - i] for i in range(101)])
    assert float(anti.std()) < 1e-5
    main = torch.stack([diagonal[i, i] for i in range(101)])
    assert float(main.std()) > 0.1


def test_orientation_is_periodic_in_pi() -> None:
    a = oriented_gratings(6.0, torch.tensor([0.3]), VIEW, n_phases=1)
    b = oriented_gratings(6.0, torch.tensor([0.3 + math.pi]), VIEW, n_phases=1)
    # cos(-x) = cos(x): θ + π flips the wave vector; with zero phase the image is the same.
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


@pytest.mark.parametrize("maker", ["radial", "oriented"])
def test_shape_range_and_achromatic(maker: str) -> None:
    view = ViewingCondition(64.0, 64)
    if maker == "radial":
        images = radial_gratings(torch.tensor([1.0, 4.0, 8.0]), view, n_phases=5, contrast=1.0)
        expected_n = 3 * 5
    else:
        images = oriented_gratings(8.0, torch.linspace(0, math.pi, 7)[:-1], view, n_phases=5, contrast=1.0)
        expected_n = 6 * 5
    assert images.shape == (expected_n, 3, 64, 64)
    assert images.dtype == torch.float32
    assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0
    torch.testing.assert_close(images[:, 0], images[:, 1], rtol=0, atol=0)
    torch.testing.assert_close(images[:, 0], images[:, 2], rtol=0, atol=0)


@pytest.mark.parametrize("contrast, mean", [(0.5, 0.5), (0.25, 0.5), (1.0, 0.5), (0.3, 0.4)])
def test_michelson_contrast_and_mean(contrast: float, mean: float) -> None:
    # Odd size: the pixel grid contains the centre, so the radial grating's phase-0 crest (r = 0) and its trough
    # (r = half a period = 4 px at 8 cpd, 64 px/deg) are sampled exactly.
    view = ViewingCondition(64.0, 65)
    radial = radial_gratings(torch.tensor([8.0]), view, n_phases=1, contrast=contrast, mean=mean)[0, 0].double()
    high, low = float(radial.max()), float(radial.min())
    assert (high - low) / (high + low) == pytest.approx(contrast, abs=1e-6)
    assert high == pytest.approx(mean * (1 + contrast), abs=1e-6)
    oriented = oriented_gratings(8.0, torch.tensor([0.0]), view, n_phases=1, contrast=contrast, mean=mean)[0, 0]
    high, low = float(oriented.max()), float(oriented.min())
    assert (high - low) / (high + low) == pytest.approx(contrast, abs=1e-6)
    # whole periods across the field (64 px = 8 periods of 8 px plus one column): mean close to the grey level
    assert float(oriented[:, :64].double().mean()) == pytest.approx(mean, abs=1e-6)


@pytest.mark.parametrize("maker", ["radial", "oriented"])
def test_phases_differ_and_opposite_phases_cancel(maker: str) -> None:
    view = ViewingCondition(64.0, 64)
    if maker == "radial":
        images = radial_gratings(torch.tensor([5.0]), view, n_phases=4, mean=0.5).double()
    else:
        images = oriented_gratings(5.0, torch.tensor([0.7]), view, n_phases=4, mean=0.5).double()
    for i in range(4):
        for j in range(i + 1, 4):
            assert float((images[i] - images[j]).abs().max()) > 0.1, f"phases {i} and {j} are the same image"
    # phases 0, π/2, π, 3π/2: images 0 and 2 (and 1 and 3) are in antiphase around the mean grey level
    torch.testing.assert_close(images[0] + images[2], torch.full_like(images[0], 1.0), atol=1e-6, rtol=0)
    torch.testing.assert_close(images[1] + images[3], torch.full_like(images[1], 1.0), atol=1e-6, rtol=0)


def test_order_is_frequency_major_and_orientation_major() -> None:
    view = ViewingCondition(64.0, 64)
    freqs = torch.tensor([2.0, 6.0])
    batch = radial_gratings(freqs, view, n_phases=3)
    for index, f in enumerate(freqs.tolist()):
        single = radial_gratings(torch.tensor([f]), view, n_phases=3)
        torch.testing.assert_close(batch[3 * index:3 * index + 3], single)
    thetas = torch.tensor([0.0, 1.0, 2.0])
    batch = oriented_gratings(6.0, thetas, view, n_phases=2)
    for index, theta in enumerate(thetas.tolist()):
        torch.testing.assert_close(batch[2 * index:2 * index + 2], oriented_gratings(6.0, torch.tensor([theta]), view,
                                                                                     n_phases=2))


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64])
def test_dtype_honoured(dtype: torch.dtype) -> None:
    view = ViewingCondition(64.0, 32)
    assert radial_gratings(torch.tensor([4.0]), view, dtype=dtype).dtype == dtype
    assert oriented_gratings(4.0, torch.tensor([0.0]), view, dtype=dtype).dtype == dtype


def _devices() -> list[str]:
    devices = ["cpu", "meta"]
    if torch.cuda.is_available():
        devices.append("cuda")
    return devices


@pytest.mark.parametrize("device", _devices())
def test_device_honoured(device: str) -> None:
    view = ViewingCondition(64.0, 32)
    radial = radial_gratings(torch.tensor([4.0]), view, device=device)
    oriented = oriented_gratings(4.0, torch.tensor([0.0, 1.0]), view, device=device)
    assert radial.device.type == device and oriented.device.type == device
    if device != "meta":
        torch.testing.assert_close(radial.cpu(), radial_gratings(torch.tensor([4.0]), view), atol=1e-6, rtol=0)


def test_default_viewing_condition() -> None:
    assert DEFAULT_VIEWING.pixels_per_degree == 64.0
    assert DEFAULT_VIEWING.nyquist_cpd == 32.0
    assert DEFAULT_VIEWING.field_deg == pytest.approx(224 / 64)


def test_nyquist_limit() -> None:
    view = ViewingCondition(64.0, 32)
    radial_gratings(torch.tensor([31.9]), view)  # just below Nyquist: fine
    oriented_gratings(31.9, torch.tensor([0.0]), view)
    with pytest.raises(ValueError, match="Nyquist"):
        radial_gratings(torch.tensor([1.0, 32.0]), view)
    with pytest.raises(ValueError, match="Nyquist"):
        oriented_gratings(40.0, torch.tensor([0.0]), view)
    with pytest.raises(ValueError, match="Nyquist"):
        radial_gratings(torch.tensor([20.0]), ViewingCondition(32.0, 32))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_phases": 0}, "n_phases"),
        ({"n_phases": 1.5}, "n_phases"),
        ({"contrast": 0.0}, "contrast"),
        ({"contrast": 1.2}, "contrast"),
        ({"mean": 0.0}, "mean"),
        ({"mean": 1.0}, "mean"),
        ({"mean": 0.8, "contrast": 0.5}, "clip"),
    ],
)
def test_bad_common_arguments(kwargs: dict, match: str) -> None:
    view = ViewingCondition(64.0, 32)
    with pytest.raises(ValueError, match=match):
        radial_gratings(torch.tensor([4.0]), view, **kwargs)
    with pytest.raises(ValueError, match=match):
        oriented_gratings(4.0, torch.tensor([0.0]), view, **kwargs)


def test_bad_frequencies_and_orientations() -> None:
    view = ViewingCondition(64.0, 32)
    for freqs in (torch.tensor([]), torch.tensor([0.0]), torch.tensor([-1.0, 2.0]), torch.tensor([float("nan")])):
        with pytest.raises(ValueError, match="freqs"):
            radial_gratings(freqs, view)
    with pytest.raises(ValueError, match="freqs"):
        oriented_gratings(0.0, torch.tensor([0.0]), view)
    with pytest.raises(ValueError, match="orientations"):
        oriented_gratings(4.0, torch.tensor([]), view)


def test_bad_viewing_condition() -> None:
    with pytest.raises(TypeError, match="viewing"):
        radial_gratings(torch.tensor([4.0]), viewing=64.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="pixels_per_degree"):
        ViewingCondition(0.0, 64)
    with pytest.raises(ValueError, match="size"):
        ViewingCondition(64.0, 4)
    with pytest.raises(ValueError, match="size"):
        ViewingCondition(64.0, 64.5)  # type: ignore[arg-type]
