"""CloudWatch alarm evaluation, for simulations: which data points page, and when.

Reads a synthesized ``AWS::CloudWatch::Alarm``'s properties (single metric, one statistic)
and applies CloudWatch's rules: data points fall into periods aligned to the period length;
the alarm looks at the last ``EvaluationPeriods`` periods, each one breaching when its
statistic compares true against the threshold; a period without data counts per
``TreatMissingData``; the alarm is in ALARM when at least ``DatapointsToAlarm`` of them breach.
Its action runs on each change into ALARM: those moments are the notifications.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanThreshold": operator.gt, "GreaterThanOrEqualToThreshold": operator.ge,
    "LessThanThreshold": operator.lt, "LessThanOrEqualToThreshold": operator.le}
STATISTICS: dict[str, Callable[[list[float]], float]] = {
    "Maximum": max, "Minimum": min, "Sum": sum, "Average": lambda v: sum(v) / len(v),
    "SampleCount": len}


@dataclasses.dataclass(frozen=True)
class Alarm:
    period: int
    evaluation_periods: int
    datapoints_to_alarm: int
    threshold: float
    comparison: Callable[[float, float], bool]
    statistic: Callable[[list[float]], float]
    missing: str

    @classmethod
    def from_template(cls, props: dict[str, Any]) -> Alarm:
        n = int(props["EvaluationPeriods"])
        return cls(period=int(props["Period"]), evaluation_periods=n,
                   datapoints_to_alarm=int(props.get("DatapointsToAlarm", n)),
                   threshold=float(props["Threshold"]),
                   comparison=COMPARISONS[props["ComparisonOperator"]],
                   statistic=STATISTICS[props["Statistic"]],
                   missing=props.get("TreatMissingData", "missing"))

    def notifications(self, datapoints: Iterable[tuple[datetime, float]]) -> list[datetime]:
        """When the alarm would notify, evaluated as each data point arrives."""
        by_period: dict[int, list[float]] = {}
        alarming, fired = False, []
        for at, value in sorted(datapoints):
            current = int(at.timestamp()) // self.period
            by_period.setdefault(current, []).append(value)
            verdicts = []
            for p in range(current - self.evaluation_periods + 1, current + 1):
                values = by_period.get(p)
                if values is not None:
                    verdicts.append(self.comparison(self.statistic(values), self.threshold))
                elif self.missing in ("breaching", "notBreaching"):
                    verdicts.append(self.missing == "breaching")
            now_alarming = sum(verdicts) >= self.datapoints_to_alarm
            if now_alarming and not alarming:
                fired.append(at)
            alarming = now_alarming
        return fired
