"""Run inputs on the board and compare every answer with the golden model."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ddnhw import golden

__all__ = ["RunReport", "run_and_check"]


@dataclass
class RunReport:
    """The result of :func:`run_and_check`. ``mismatches`` lists the rows that differ from the
    golden model; times are from the link's clock (wall time on a real port)."""

    n: int
    outputs: np.ndarray
    expected: np.ndarray
    mismatches: list
    seconds: float
    latency_s: np.ndarray
    stats: dict = field(default_factory=dict)

    @property
    def vectors_per_second(self):
        return self.n / self.seconds if self.seconds > 0 else float("inf")

    def summary(self) -> str:
        lat = self.latency_s
        lines = [f"{self.n} vectors, {len(self.mismatches)} mismatches vs golden; "
                 f"{self.vectors_per_second:,.1f} vectors/s; round trip median "
                 f"{1e3 * float(np.median(lat)) if lat.size else 0:.3f} ms, max "
                 f"{1e3 * float(lat.max()) if lat.size else 0:.3f} ms"]
        s = self.stats
        lines.append(f"link: {s['frames_sent']} frames sent, {s['retries']} retries, "
                     f"{s['timeouts']} timeouts, device errors {s['errors'] or 'none'}")
        for row in self.mismatches[:5]:
            lines.append(f"  row {row}: board {self.outputs[row].tolist()} != golden "
                         f"{self.expected[row].tolist()}")
        return "\n".join(lines)


def run_and_check(link, graph, x, *, check_ident=True) -> RunReport:
    """Check the board's identity against ``graph`` (unless ``check_ident`` is False), run
    every row of ``x`` on it and compare with ``ddnhw.golden.run(graph, x)`` exactly."""
    x = golden.check_input(graph, x)
    expected = golden.run(graph, x)
    if check_ident:
        link.check(graph)
    t0 = link.clock()
    outputs, latency = link.infer(x)
    seconds = link.clock() - t0
    bad = np.flatnonzero(np.any(outputs != expected, axis=1)).tolist()
    st = link.stats
    stats = {"frames_sent": st.frames_sent, "retries": st.retries, "timeouts": st.timeouts,
             "errors": dict(st.errors), "stale_replies": st.stale_replies,
             "bytes_out": st.bytes_out, "bytes_in": st.bytes_in}
    return RunReport(len(x), outputs, expected, bad, seconds, latency, stats)
