"""What `optbench check` returns: violations (rules broken), warnings (guidelines not followed) and notes.

Whether a finding is a violation or a warning is decided by its rule's kind in check.rules (the one table)."""

from __future__ import annotations

from dataclasses import dataclass, field

from optbench.submission.check.rules import is_guideline


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
    warnings: list[Violation] = field(default_factory=list)  # guidelines (check.rules): reported, never failing
    notes: list[str] = field(default_factory=list)  # what was checked / skipped, the verdict

    @property
    def ok(self) -> bool:
        return not self.violations

    def add(self, rule: str, message: str, where: str) -> None:
        """A finding of `rule`: a warning when the rule is a guideline, else a violation."""
        (self.warnings if is_guideline(rule) else self.violations).append(Violation(rule, message, where))

    def extend(self, other: "Report") -> None:
        self.violations += other.violations
        self.warnings += other.warnings
        self.notes += other.notes

    def rules(self) -> set[str]:
        """The rules broken (violations only)."""
        return {v.rule for v in self.violations}

    def guidelines(self) -> set[str]:
        """The guidelines not followed (warnings)."""
        return {v.rule for v in self.warnings}
