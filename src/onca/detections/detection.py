"""A loaded detection (rule, scheduled rule or policy) and its evaluation in test and production mode.

Test mode (spec §3.4) runs every defined auxiliary function even when the matcher did not alert, and
keeps each function's exception. Production mode runs the auxiliaries only for alerting events and
replaces their exceptions by the documented defaults, so that a broken title() never loses an alert.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from onca.detections import functions as fn

MATCHER_NAME = {"rule": "rule", "scheduled_rule": "rule", "policy": "policy"}
ALERT_VALUE = {"rule": True, "scheduled_rule": True, "policy": False}


@dataclass
class Evaluation:
    """Everything one test-mode run of a detection produced."""

    detection_output: bool | None = None
    trigger_alert: bool = False
    filter_output: bool | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, BaseException] = field(default_factory=dict)


@dataclass(slots=True)
class RuleMatch:
    """One alerting event of a rule, with what production mode derives from it."""

    rule_id: str
    event_index: int
    title: str
    dedup: str
    severity: str | None
    alert_context: str | None
    destinations: list[str] | None
    unique: str | None
    description: str
    reference: str
    runbook: str


class Detection:
    """A detection whose code is loaded; `module` holds rule()/policy() and the auxiliary functions."""

    def __init__(
        self,
        *,
        detection_id: str,
        analysis_type: str,
        module: ModuleType,
        spec: Mapping[str, Any],
        inline_filter: Callable[[Mapping], bool] | None = None,
        severity: str | None = None,
    ) -> None:
        self.detection_id = detection_id
        self.analysis_type = analysis_type
        self.module = module
        self.spec = spec
        self.inline_filter = inline_filter
        # PAT does not hand the YAML severity to the runtime in tests, so DEFAULT gives None there.
        self.severity = severity
        self.matcher_name = MATCHER_NAME[analysis_type]
        self.alert_value = ALERT_VALUE[analysis_type]
        self.suppress_alert = spec.get("CreateAlert") is False
        self.default_dedup = fn.default_dedup(detection_id)
        if not hasattr(module, self.matcher_name):
            raise AssertionError(f"detection needs to have a method named '{self.matcher_name}'")
        self.defined = {name for name in fn.AUX_ORDER if hasattr(module, name)}

    # ---- test mode -------------------------------------------------------------------------------

    def evaluate_test(self, event: Any, destinations: Mapping[str, str]) -> Evaluation:
        result = Evaluation()
        module = self.module
        did = self.detection_id
        if self.inline_filter is not None:
            try:
                result.filter_output = bool(self.inline_filter(_raw(event)))
            except Exception as err:
                result.errors["filter"] = err
        filter_error = "filter" in result.errors
        try:
            if result.filter_output is False:
                result.detection_output = False
            elif not filter_error:
                result.detection_output = fn.call_bool(did, getattr(module, self.matcher_name), event)
        except BaseException as err:
            result.errors["detection"] = err
        result.trigger_alert = result.detection_output is self.alert_value and not filter_error

        outputs = result.outputs
        for name in fn.AUX_ORDER:
            if name not in self.defined and name != "dedup":
                continue
            try:
                outputs[name] = self._aux(name, event, outputs, destinations)
            except BaseException as err:
                result.errors[name] = err
        return result

    def _aux(self, name: str, event: Any, outputs: dict[str, Any], destinations: Mapping[str, str]) -> Any:
        did = self.detection_id
        module = self.module
        if name == "dedup":
            if "dedup" not in self.defined:
                return outputs.get("title") or self.default_dedup
            value = fn.call_str(did, module.dedup, event)
            return fn.truncate(value) if value else self.default_dedup
        if name == "severity":
            return fn.severity_of(did, module.severity, event, self.severity)
        if name == "alert_context":
            return fn.alert_context_of(did, module.alert_context, event)
        if name == "destinations":
            return fn.destinations_of(did, module.destinations, event, destinations)
        return fn.truncate(fn.call_str(did, getattr(module, name), event))

    # ---- production mode -------------------------------------------------------------------------

    def match(self, event: Any, event_index: int, destinations: Mapping[str, str]) -> RuleMatch:
        """The match for an alerting event; a failing auxiliary function falls back to its default."""
        did = self.detection_id
        module = self.module
        defined = self.defined
        title = self._safe(lambda: fn.truncate(fn.call_str(did, module.title, event)), did) \
            if "title" in defined else None
        severity = self._safe(lambda: fn.severity_of(did, module.severity, event, self.severity),
                              self.severity) if "severity" in defined else self.severity
        if "dedup" in defined:
            dedup = self._safe(lambda: fn.truncate(fn.call_str(did, module.dedup, event)), "") or self.default_dedup
        else:
            dedup = title or self.default_dedup
        context = None
        if "alert_context" in defined:
            try:
                context = fn.alert_context_of(did, module.alert_context, event)
            except Exception as err:
                context = json.dumps({fn.ALERT_CONTEXT_ERROR_KEY: repr(err)})
        spec = self.spec
        return RuleMatch(
            rule_id=did,
            event_index=event_index,
            title=title if title is not None else did,
            dedup=dedup,
            severity=severity,
            alert_context=context,
            destinations=self._safe(lambda: fn.destinations_of(did, module.destinations, event, destinations),
                                    None) if "destinations" in defined else None,
            unique=self._safe(lambda: fn.truncate(fn.call_str(did, module.unique, event)), None)
            if "unique" in defined else None,
            description=self._optional_text("description", event, spec.get("Description", "")),
            reference=self._optional_text("reference", event, spec.get("Reference", "")),
            runbook=self._optional_text("runbook", event, spec.get("Runbook", "")),
        )

    def _optional_text(self, name: str, event: Any, default: str) -> str:
        if name not in self.defined:
            return default or ""
        func = getattr(self.module, name)
        return self._safe(lambda: fn.truncate(fn.call_str(self.detection_id, func, event)), "")

    @staticmethod
    def _safe(compute: Callable[[], Any], default: Any) -> Any:
        try:
            return compute()
        except Exception:
            return default


def _raw(event: Any) -> Any:
    raw_view = getattr(event, "raw_view", None)
    return raw_view() if raw_view is not None else event
