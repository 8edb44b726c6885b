"""Numbers as the panes show them: rates, sizes, durations, ages."""

from __future__ import annotations

_UNITS = ("B", "kB", "MB", "GB", "TB")


def count(value: float) -> str:
    """1234567 -> '1.23M', 950 -> '950'."""
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.3g}{suffix}"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def size(value: float) -> str:
    """Bytes in decimal units: 1536 -> '1.54 kB'."""
    for unit in _UNITS:
        if abs(value) < 1000 or unit == _UNITS[-1]:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.3g} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def seconds(value: float) -> str:
    """A short duration: 0.0092 -> '9.2 ms', 0.5 -> '500 ms', 2 -> '2.0 s'."""
    if value < 0.001:
        return f"{value * 1e6:.0f} µs"
    if value < 1:
        return f"{value * 1000:.3g} ms"
    return f"{value:.1f} s"


def uptime(value: float) -> str:
    """Whole seconds as H:MM:SS, days in front when there are any."""
    whole = max(0, int(value))
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{days}d {clock}" if days else clock


def age(value: float) -> str:
    """How long ago: '4s', '3m12s', '2h05m', '3d'."""
    whole = max(0, int(value))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d"
