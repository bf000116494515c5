"""The bench's summary: each target, what was measured against what, and whether it was met."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Line:
    name: str
    measured: str
    target: str
    met: bool


@dataclass
class Report:
    machine: str
    lines: list[Line] = field(default_factory=list)

    def ratio(self, name: str, value: float, baseline: float, *, target: float, unit: str) -> None:
        ratio = value / baseline if baseline else 0.0
        self.lines.append(
            Line(name, f"{value:,.0f} vs {baseline:,.0f} {unit} = {ratio:.2f}x", f">= {target:g}x", ratio >= target)
        )

    def absolute(self, name: str, value: float, *, target: float, unit: str, at_most: bool = False) -> None:
        met = value <= target if at_most else value >= target
        self.lines.append(Line(name, f"{value:,.1f} {unit}", f"{'<=' if at_most else '>='} {target:,g} {unit}", met))

    def note(self, name: str, measured: str) -> None:
        """A figure shown for context, with no target of its own (a baseline's latency, say)."""
        self.lines.append(Line(name, measured, "-", True))

    def check(self, name: str, ok: bool, detail: str = "") -> None:
        self.lines.append(Line(name, "ok" if ok else f"FAILED: {detail}", "ok", ok))

    @property
    def all_met(self) -> bool:
        return all(line.met for line in self.lines)

    def render(self) -> str:
        if not self.lines:
            return "no targets measured"
        width = max(len(line.name) for line in self.lines)
        measured = max(len(line.measured) for line in self.lines)
        rows = [f"Results on {self.machine}:"]
        for line in self.lines:
            mark = "met" if line.met else "MISSED"
            rows.append(f"  {line.name:<{width}}  {line.measured:<{measured}}  target {line.target:<14} {mark}")
        return "\n".join(rows)
