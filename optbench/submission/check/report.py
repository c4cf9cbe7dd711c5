"""What `optbench check` returns: the violations (rule, message, where) and the notes of what was checked."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Violation:
    rule: str
    message: str
    where: str  # file:line, file, or log:line

    def __str__(self) -> str:
        return f"{self.where}: [{self.rule}] {self.message}"


@dataclass
class Report:
    subject: str
    violations: list[Violation] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what was checked / skipped, the verdict

    @property
    def ok(self) -> bool:
        return not self.violations

    def add(self, rule: str, message: str, where: str) -> None:
        self.violations.append(Violation(rule, message, where))

    def extend(self, other: "Report") -> None:
        self.violations += other.violations
        self.notes += other.notes

    def rules(self) -> set[str]:
        return {v.rule for v in self.violations}
