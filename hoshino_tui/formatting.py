"""Numbers as the panes show them: counts, rates, sizes, durations, ages, money and plurals."""

from __future__ import annotations

import math

from agent.wording import noun

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


def plural(n: float, word: str, many: str | None = None) -> str:
    """'1 object', '2 objects', '30,199 requests'; many is the plural when adding 's' is wrong."""
    shown = f"{n:,}" if isinstance(n, int) else count(n)
    return f"{shown} {noun(n, word, many)}"


def period(value: float) -> str:
    """How long one of something takes: '500 ms', '2.5 s', '60 s', '5 min', '2 h'."""
    if value < 1:
        return seconds(value)
    if value < 10:
        return f"{value:.2g} s"
    if value < 120:
        return f"{value:.0f} s"
    if value < 7200:
        return f"{value / 60:.2g} min"
    return f"{value / 3600:.2g} h"


def rate(per_second: float, unit: str = "", many: str | None = None) -> str:
    """A rate that reads right at any speed: '250/s', '62.5 polls/s', '0.5 polls/s', '1 poll / 60 s'.

    Slower than one in ten seconds, the time between two reads better than a fraction per second."""
    name = f" {many or unit + 's'}" if unit else ""
    if per_second <= 0:
        return f"0{name}/s"
    if per_second >= 0.95:
        shown = count(per_second)
        return f"{shown}{' ' + unit if unit and shown == '1' else name}/s"
    if per_second >= 0.095:
        return f"{per_second:.1f}{name}/s"
    return f"1{' ' + unit if unit else ''} / {period(1 / per_second)}"


def dollars(value: float) -> str:
    """Money to three significant digits without exponents: '$0', '$0.00113', '$6.03', '$6,503'."""
    if value == 0:
        return "$0"
    if abs(value) < 0.0001:
        return "<$0.0001"
    if abs(value) >= 100:
        return f"${value:,.0f}"
    decimals = max(2, 2 - math.floor(math.log10(abs(value))))
    return f"${value:.{decimals}f}"
