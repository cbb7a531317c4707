"""The stack engine: a root stack of nested component stacks, created, updated and rolled back.

Semantics (CloudFormation's, with its gaps closed):
- A failed first deploy deletes what it created, in reverse order, and leaves the root stack
  ROLLBACK_COMPLETE with every event kept; the next deploy simply starts again.
- A failed update puts every touched resource back to its previous properties, restores the metadata
  database snapshot taken before the update, and ends UPDATE_ROLLBACK_COMPLETE with the previous
  parameters and version.
- A rollback that itself fails ends UPDATE_ROLLBACK_FAILED (ROLLBACK_FAILED on a first deploy);
  `continue_rollback(skip=...)` finishes it, skipping named resources with a warning.
- Every step is journalled before and after it runs, so an operation interrupted by a crash is
  found by the next run (the lock's holder is dead and the operation never finished) and rolled back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from onca import __version__
from onca.core import audit
from onca.deploy import snapshots
from onca.deploy.ledger import Ledger, Operation
from onca.deploy.parameters import BY_NAME, PARAMETERS, ParameterError, definitions_for, resolve
from onca.deploy.preflight import Check, PreflightFailed, failed, run_checks
from onca.deploy.releases import load_catalogue
from onca.deploy.resources import (
    Component,
    DeployContext,
    Resource,
    injected_kill,
    rolling_back,
)

CREATE_IN_PROGRESS = "CREATE_IN_PROGRESS"
CREATE_COMPLETE = "CREATE_COMPLETE"
CREATE_FAILED = "CREATE_FAILED"
CREATE_CANCELLED = "CREATE_CANCELLED"
ROLLBACK_IN_PROGRESS = "ROLLBACK_IN_PROGRESS"
ROLLBACK_COMPLETE = "ROLLBACK_COMPLETE"
ROLLBACK_FAILED = "ROLLBACK_FAILED"
UPDATE_IN_PROGRESS = "UPDATE_IN_PROGRESS"
UPDATE_COMPLETE = "UPDATE_COMPLETE"
UPDATE_FAILED = "UPDATE_FAILED"
UPDATE_ROLLBACK_IN_PROGRESS = "UPDATE_ROLLBACK_IN_PROGRESS"
UPDATE_ROLLBACK_COMPLETE = "UPDATE_ROLLBACK_COMPLETE"
UPDATE_ROLLBACK_FAILED = "UPDATE_ROLLBACK_FAILED"
DELETE_IN_PROGRESS = "DELETE_IN_PROGRESS"
DELETE_COMPLETE = "DELETE_COMPLETE"
DELETE_FAILED = "DELETE_FAILED"
DELETE_SKIPPED = "DELETE_SKIPPED"
ROLLBACK_SKIPPED = "ROLLBACK_SKIPPED"

# Root states from which the next deploy starts from scratch.
FRESH_STATES = {ROLLBACK_COMPLETE, DELETE_COMPLETE}
# Root states that only --continue-rollback may leave.
STUCK_STATES = {UPDATE_ROLLBACK_FAILED, ROLLBACK_FAILED}
CANCELLED_REASON = "Resource creation cancelled: another resource failed"


class DeployError(RuntimeError):
    """The operation cannot start; nothing was changed."""


@dataclass
class Outcome:
    """What an operation did, for the CLI to print."""

    root: str
    status: str
    operation: int | None = None
    changes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in (CREATE_COMPLETE, UPDATE_COMPLETE, DELETE_COMPLETE, "NO_CHANGES")


class _Failed(Exception):
    def __init__(self, component: str, resource: str, reason: str) -> None:
        super().__init__(reason)
        self.component, self.resource, self.reason = component, resource, reason


def home_context(home: Path) -> DeployContext | None:
    """The context of the stack deployed in `home` (the most recent one), or None; never creates files."""
    if not (home / "ledger.db").exists():
        return None
    ledger = Ledger(home / "ledger.db")
    try:
        deployed = [r for r in ledger.roots() if r.status not in FRESH_STATES]
    finally:
        ledger.close()
    if not deployed:
        return None
    root = deployed[-1]
    return DeployContext(home=home, stack_name=root.name, params=dict(root.parameters or {}),
                         version=root.version or __version__, first_deploy=False)


def nested_name(root: str, component: str) -> str:
    return f"{root}-{component}"


def error_text(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text if isinstance(err, RuntimeError | OSError | ValueError) else f"{type(err).__name__}: {text}"


class Deployment:
    """All lifecycle operations on the stacks of one deployment home."""

    def __init__(self, home: Path, *, components: Callable[[], list[Component]] | None = None,
                 version: str = __version__) -> None:
        self.home = home
        self.version = version
        self._components_factory = components
        home.mkdir(parents=True, exist_ok=True)
        self.ledger = Ledger(home / "ledger.db")
        # Warnings resource handlers raised through ctx.warn during the current operation.
        self.warnings: list[str] = []

    def close(self) -> None:
        self.ledger.close()

    def components(self) -> list[Component]:
        if self._components_factory is None:
            from onca.deploy.components import components

            return components()
        return self._components_factory()

    # ---- reading -----------------------------------------------------------------------------------

    def root_name(self, requested: str | None = None) -> str | None:
        if requested:
            return requested
        roots = [r for r in self.ledger.roots() if r.status != DELETE_COMPLETE] or self.ledger.roots()
        return roots[-1].name if roots else None

    def context(self, root: str, params: Mapping[str, Any], *, first: bool, version: str | None = None,
                warn: Callable[[str], None] | None = None) -> DeployContext:
        def record(message: str) -> None:
            self.warnings.append(message)
            self.ledger.event(root, "WARNING", message)

        return DeployContext(home=self.home, stack_name=root, params=dict(params), version=version or self.version,
                             first_deploy=first, warn=warn or record)

    # ---- deploy ------------------------------------------------------------------------------------

    def deploy(self, root: str, requested: Mapping[str, Any], *, version: str | None = None,
               kind: str = "update", preflight: bool = True, upgrading: bool = False,
               required_role_version: int | None = None, declared: tuple[str, ...] = ()) -> Outcome:
        """Create the stack, or update it to the requested parameters (and `version`).

        Preflight runs first (unless disabled for drills); on any failed check nothing is touched.
        """
        version = version or self.version
        with self._locked(f"deploy {root}") as recovered:
            record = self.ledger.stack(root)
            if record is not None and record.status in STUCK_STATES:
                raise DeployError(f"stack {root} is {record.status}: run `onca deploy --continue-rollback` "
                                  f"(optionally --skip RESOURCE) before deploying again")
            first = record is None or record.status in FRESH_STATES
            previous = None if first or record is None else record.parameters
            self.warnings = []
            ctx, warnings, checks = self.check(root, requested, previous, first=first, version=version,
                                               preflight=preflight, upgrading=upgrading,
                                               required_role_version=required_role_version, declared=declared)
            if first:
                outcome = self._create(ctx)
            else:
                assert record is not None
                outcome = self._update(ctx, previous or {}, record.version or version, kind)
            outcome.warnings[:0] = warnings + [f"preflight {c.name}: {c.detail}" for c in checks if c.result == "warn"]
            outcome.warnings += self.warnings
            outcome.recovered = recovered
            self._audit(root, outcome, previous, ctx.params)
            for warning in warnings:
                self.ledger.event(root, "WARNING", warning, operation=outcome.operation)
            return outcome

    def _audit(self, root: str, outcome: Outcome, previous: Mapping[str, Any] | None,
               params: Mapping[str, Any]) -> None:
        """Deployment changes go to Onca's own audit log, which OnboardSelf monitors."""
        if outcome.status == "NO_CHANGES":
            return
        if outcome.status in (ROLLBACK_COMPLETE, UPDATE_ROLLBACK_COMPLETE, *STUCK_STATES):
            audit.record(self.home, audit.DEPLOYER, audit.DEPLOYMENT_ROLLED_BACK, root,
                         {"status": outcome.status, "reason": outcome.error or ""}, outcome="failure")
            return
        changed = sorted(k for k in params if previous is not None and previous.get(k) != params.get(k))
        if changed:
            visible = {k: params[k] for k in changed if not (BY_NAME.get(k) and BY_NAME[k].secret)}
            audit.record(self.home, audit.DEPLOYER, audit.DEPLOYMENT_PARAMETERS_CHANGED, root,
                         {"changed": changed, "new": visible})

    def check(self, root: str, requested: Mapping[str, Any], previous: Mapping[str, Any] | None, *, first: bool,
              version: str, preflight: bool = True, upgrading: bool = False,
              required_role_version: int | None = None,
              declared: tuple[str, ...] = ()) -> tuple[DeployContext, list[str], list[Check]]:
        """Resolve the parameters and run preflight; raises PreflightFailed (or ParameterError) on failure."""
        try:
            params, warnings = resolve(requested, previous, definitions_for(previous, declared))
            error = None
        except ParameterError as err:
            if not preflight:
                raise
            params = {p.name: p.default for p in PARAMETERS} | dict(previous or {})
            warnings, error = [], err
        ctx = self.context(root, params, first=first, version=version)
        if not preflight:
            return ctx, warnings, []
        if required_role_version is None and not ctx.database_url.startswith("sqlite"):
            release = load_catalogue().get(version)
            required_role_version = release.deployer_role if release else None
        checks = run_checks(ctx, self.ledger, parameter_error=error, upgrading=upgrading,
                            required_role_version=required_role_version)
        if failed(checks):
            raise PreflightFailed(checks)
        return ctx, warnings, checks

    def _locked(self, operation: str) -> _LockedOperation:
        return _LockedOperation(self, operation)

    def _create(self, ctx: DeployContext) -> Outcome:
        root = ctx.stack_name
        op = self.ledger.begin_operation(root, "create", from_version=None, to_version=ctx.version,
                                         previous_parameters=None, parameters=dict(ctx.params))
        self.ledger.set_stack(root, root=root, status=CREATE_IN_PROGRESS, reason="User initiated", operation=op)
        outcome = Outcome(root, CREATE_IN_PROGRESS, op)
        components = self.components()
        try:
            for position, component in enumerate(components, start=1):
                stack = nested_name(root, component.name)
                self.ledger.set_stack(stack, root=root, component=component.name, position=position,
                                      status=CREATE_IN_PROGRESS, operation=op)
                for index, resource in enumerate(component.resources):
                    self._step(ctx, op, component, index, resource, "create", None, None)
                    outcome.changes.append(f"created {component.name}/{resource.name}")
                self.ledger.set_stack(stack, root=root, status=CREATE_COMPLETE, operation=op)
                injected_kill(f"after:{component.name}")
        except _Failed as failure:
            self._cancel_rest(root, op, components, failure.component)
            return self._fail(ctx, op, failure, outcome, create=True)
        self.ledger.set_stack(root, root=root, status=CREATE_COMPLETE, operation=op, version=ctx.version,
                              parameters=dict(ctx.params))
        self.ledger.finish_operation(op, CREATE_COMPLETE)
        outcome.status, outcome.notices = CREATE_COMPLETE, ctx.notices
        return outcome

    def _fail(self, ctx: DeployContext, op: int, failure: _Failed, outcome: Outcome, *, create: bool) -> Outcome:
        """Record the failed component and roll the operation back."""
        root = ctx.stack_name
        self.ledger.set_stack(nested_name(root, failure.component), root=root,
                              status=CREATE_FAILED if create else UPDATE_FAILED, operation=op,
                              reason=f"Resource {failure.resource} failed: {failure.reason}")
        self.ledger.set_stack(root, root=root, status=ROLLBACK_IN_PROGRESS if create else UPDATE_ROLLBACK_IN_PROGRESS,
                              operation=op, reason=f"The following resource(s) failed to "
                              f"{'create' if create else 'update'}: [{failure.component}/{failure.resource}]. "
                              "Rolling back.")
        outcome.status = self._rollback(ctx, self.ledger.operation(op), create=create)
        outcome.error = f"{failure.component}/{failure.resource}: {failure.reason}"
        return outcome

    def _cancel_rest(self, root: str, op: int, components: list[Component], failed: str) -> None:
        names = [c.name for c in components]
        for component in names[names.index(failed) + 1:]:
            self.ledger.event(nested_name(root, component), CREATE_CANCELLED, CANCELLED_REASON, operation=op)

    def _update(self, ctx: DeployContext, previous: dict[str, Any], from_version: str, kind: str) -> Outcome:
        root = ctx.stack_name
        components = self.components()
        plan = self._plan(ctx, components)
        if not plan and from_version == ctx.version and dict(ctx.params) == previous:
            return Outcome(root, "NO_CHANGES")
        op = self.ledger.begin_operation(root, kind, from_version=from_version, to_version=ctx.version,
                                         previous_parameters=previous, parameters=dict(ctx.params))
        outcome = Outcome(root, UPDATE_IN_PROGRESS, op)
        snapshot = snapshots.take(ctx, self.home / "backups" / "snapshots" / f"operation-{op}")
        if snapshot is not None:
            self.ledger.set_operation_snapshot(op, str(snapshot))
        self.ledger.set_stack(root, root=root, status=UPDATE_IN_PROGRESS, reason="User initiated", operation=op)
        try:
            for position, component in enumerate(components, start=1):
                stack = nested_name(root, component.name)
                record = self.ledger.stack(stack)
                touched = [(i, r) for i, r in enumerate(component.resources) if (component.name, r.name) in plan]
                for resource in component.resources:
                    existing = self.ledger.resource(stack, resource.name)
                    if existing is not None and (component.name, resource.name) not in plan:
                        ctx.outputs[f"{component.name}/{resource.name}"] = existing.outputs
                if not touched:
                    continue
                new_stack = record is None or record.status == DELETE_COMPLETE
                status = CREATE_IN_PROGRESS if new_stack else UPDATE_IN_PROGRESS
                self.ledger.set_stack(stack, root=root, component=component.name, position=position, status=status,
                                      operation=op)
                for index, resource in touched:
                    existing = self.ledger.resource(stack, resource.name)
                    action = "create" if existing is None else "update"
                    self._step(ctx, op, component, index, resource, action,
                               None if existing is None else existing.properties,
                               None if existing is None else existing.outputs)
                    outcome.changes.append(f"{action}d {component.name}/{resource.name}")
                done = CREATE_COMPLETE if status == CREATE_IN_PROGRESS else UPDATE_COMPLETE
                self.ledger.set_stack(stack, root=root, status=done, operation=op)
                injected_kill(f"after:{component.name}")
        except _Failed as failure:
            return self._fail(ctx, op, failure, outcome, create=False)
        self.ledger.set_stack(root, root=root, status=UPDATE_COMPLETE, operation=op, version=ctx.version,
                              parameters=dict(ctx.params))
        self.ledger.finish_operation(op, UPDATE_COMPLETE)
        outcome.status, outcome.notices = UPDATE_COMPLETE, ctx.notices
        return outcome

    def _plan(self, ctx: DeployContext, components: list[Component]) -> set[tuple[str, str]]:
        """(component, resource) pairs whose properties differ from the ledger, or that do not exist yet."""
        changed = set()
        for component in components:
            stack = nested_name(ctx.stack_name, component.name)
            for resource in component.resources:
                existing = self.ledger.resource(stack, resource.name)
                if existing is None or existing.properties != resource.properties(ctx):
                    changed.add((component.name, resource.name))
        return changed

    def _step(self, ctx: DeployContext, op: int, component: Component, index: int, resource: Resource,
              action: str, old_props: Any, old_outputs: Any) -> None:
        stack = nested_name(ctx.stack_name, component.name)
        label = f"{component.name}/{resource.name}"
        try:
            props = resource.properties(ctx)
        except Exception as err:  # a resource that cannot even plan fails like any other
            self.ledger.resource_event(stack, resource.name, f"{action.upper()}_FAILED", error_text(err), op)
            raise _Failed(component.name, resource.name, error_text(err)) from err
        seq = self.ledger.begin_step(op, stack, resource.name, action, old_properties=old_props,
                                     old_outputs=old_outputs, new_properties=props)
        self.ledger.resource_event(stack, resource.name, f"{action.upper()}_IN_PROGRESS", "", op)
        injected_kill(f"before:{label}")
        try:
            if action == "create":
                outputs = resource.create(ctx, props)
            else:
                outputs = resource.update(ctx, old_props or {}, props, old_outputs or {})
        except Exception as err:  # any handler failure starts the rollback
            self.ledger.set_step(op, seq, "failed")
            self.ledger.resource_event(stack, resource.name, f"{action.upper()}_FAILED", error_text(err), op)
            raise _Failed(component.name, resource.name, error_text(err)) from err
        self.ledger.set_resource(stack, resource.name, position=index, status=f"{action.upper()}_COMPLETE",
                                 properties=props, outputs=outputs or {}, operation=op)
        self.ledger.set_step(op, seq, "done")
        ctx.outputs[label] = outputs or {}
        injected_kill(f"after:{label}")

    # ---- rollback ----------------------------------------------------------------------------------

    def _resource_index(self) -> dict[tuple[str, str], tuple[Component, Resource]]:
        return {(c.name, r.name): (c, r) for c in self.components() for r in c.resources}

    def _rollback(self, ctx: DeployContext, op: Operation | None, *, create: bool,
                  skip: Iterable[str] = ()) -> str:
        """Undo the journalled steps of `op` in reverse order; returns the root's final status."""
        assert op is not None
        root = op.root
        skip = set(skip)
        failed_state = ROLLBACK_FAILED if create else UPDATE_ROLLBACK_FAILED
        old_ctx = ctx if create else self.context(root, op.previous_parameters or {}, first=False,
                                                  version=op.from_version)
        with rolling_back():
            failure = self._undo_steps(ctx, old_ctx, op, create=create, skip=skip)
        if failure is not None:
            label, err = failure
            self.ledger.set_stack(root, root=root, status=failed_state, operation=op.id,
                                  reason=f"Rollback of {label} failed: {error_text(err)}. Run `onca deploy "
                                         f"--continue-rollback` (with --skip {label} to leave it as it is).")
            self.ledger.finish_operation(op.id, failed_state)
            return failed_state
        if create:
            for stack in reversed(self.ledger.stacks(root)):
                if stack.component is not None and stack.status != DELETE_COMPLETE:
                    self.ledger.set_stack(stack.name, root=root, status=DELETE_COMPLETE, operation=op.id,
                                          reason="Rollback")
            final = ROLLBACK_COMPLETE
        else:
            if op.snapshot:
                snapshots.restore(old_ctx, Path(op.snapshot))
            for stack in self.ledger.stacks(root):
                if stack.component is None or stack.status == DELETE_COMPLETE:
                    continue
                if not self.ledger.resources(stack.name):  # a component this update had added
                    self.ledger.set_stack(stack.name, root=root, status=DELETE_COMPLETE, operation=op.id,
                                          reason="Rollback")
                elif stack.status not in (CREATE_COMPLETE, UPDATE_COMPLETE):
                    self.ledger.set_stack(stack.name, root=root, status=UPDATE_ROLLBACK_COMPLETE, operation=op.id)
            final = UPDATE_ROLLBACK_COMPLETE
        self.ledger.set_stack(root, root=root, status=final, operation=op.id,
                              reason="Rolled back" + ("" if create else f" to version {op.from_version}"))
        self.ledger.finish_operation(op.id, final)
        return final

    def _undo_steps(self, ctx: DeployContext, old_ctx: DeployContext, op: Operation, *, create: bool,
                    skip: set[str]) -> tuple[str, BaseException] | None:
        """Undo the journalled steps in reverse; the first failure stops and is returned."""
        index = self._resource_index()
        for step in reversed(self.ledger.steps(op.id)):
            if step.state not in ("started", "done", "failed"):
                continue
            component = self.ledger.stack(step.stack)
            comp_name = component.component if component is not None else step.stack
            label = f"{comp_name}/{step.resource}"
            if label in skip or step.resource in skip:
                self.ledger.set_step(op.id, step.seq, "skipped")
                self.ledger.resource_event(step.stack, step.resource, DELETE_SKIPPED if step.action == "create"
                                           else ROLLBACK_SKIPPED,
                                           "Skipped by --skip: left as it is, possibly inconsistent", op.id)
                continue
            found = index.get((comp_name or "", step.resource))
            try:
                if found is None:
                    raise RuntimeError(f"resource {label} is not part of this release; use --skip {label}")
                _component, resource = found
                if step.action == "create":
                    self.ledger.resource_event(step.stack, step.resource, DELETE_IN_PROGRESS, "Rollback", op.id)
                    recorded = self.ledger.resource(step.stack, step.resource)
                    resource.delete(ctx, step.new_properties or {},
                                    recorded.outputs if recorded else {})
                    self.ledger.drop_resource(step.stack, step.resource, operation=op.id, reason="Rollback")
                else:
                    self.ledger.resource_event(step.stack, step.resource, UPDATE_IN_PROGRESS, "Rollback", op.id)
                    recorded = self.ledger.resource(step.stack, step.resource)
                    outputs = resource.update(old_ctx, step.new_properties or {}, step.old_properties or {},
                                              recorded.outputs if recorded else step.old_outputs or {})
                    self.ledger.set_resource(step.stack, step.resource, position=recorded.position if recorded else 0,
                                             status=UPDATE_COMPLETE, properties=step.old_properties or {},
                                             outputs=outputs or step.old_outputs or {}, operation=op.id,
                                             reason="Rollback")
            except Exception as err:  # a failed rollback is a state, reported and recoverable
                status = DELETE_FAILED if step.action == "create" else UPDATE_FAILED
                self.ledger.resource_event(step.stack, step.resource, status, f"Rollback failed: {error_text(err)}",
                                           op.id)
                return label, err
            self.ledger.set_step(op.id, step.seq, "undone")
        return None

    def continue_rollback(self, root: str, skip: Iterable[str] = ()) -> Outcome:
        with self._locked(f"continue-rollback {root}") as recovered:
            record = self.ledger.stack(root)
            if record is None or record.status not in STUCK_STATES:
                raise DeployError(f"stack {root} is {record.status if record else 'not deployed'}: "
                                  "there is no failed rollback to continue")
            op = next((o for o in reversed(self.ledger.operations(root)) if o.status in STUCK_STATES), None)
            if op is None:
                raise DeployError(f"no operation of {root} ended in a failed rollback")
            create = op.status == ROLLBACK_FAILED
            params = op.parameters if create else (op.previous_parameters or {})
            ctx = self.context(root, params or {}, first=create, version=op.to_version if create else op.from_version)
            self.ledger.set_stack(root, root=root, operation=op.id, reason="Continuing the rollback",
                                  status=ROLLBACK_IN_PROGRESS if create else UPDATE_ROLLBACK_IN_PROGRESS)
            status = self._rollback(ctx, op, create=create, skip=skip)
            outcome = Outcome(root, status, op.id, recovered=recovered)
            skipped = [f"{s.stack}/{s.resource}" for s in self.ledger.steps(op.id) if s.state == "skipped"]
            if skipped:
                outcome.warnings.append("left as they were, possibly inconsistent with the rest of the stack: "
                                        + ", ".join(skipped) + " — check them by hand, then run `onca deploy`")
            return outcome

    def recover(self, root: str) -> list[str]:
        """Roll back (or finish) an operation that a crash interrupted; the lock must be held."""
        op = self.ledger.unfinished_operation(root)
        if op is None:
            return []
        notes = [f"operation {op.id} ({op.kind}, started {time.ctime(op.started_at)}, pid {op.pid}) was "
                 "interrupted"]
        self.ledger.event(root, "INTERRUPTED_OPERATION_DETECTED", notes[0], operation=op.id)
        if op.kind == "teardown":
            outcome = self._teardown(root, op, delete_data=bool((op.parameters or {}).get("_delete_data")))
            notes.append(f"the teardown was resumed: {outcome.status}")
            return notes
        create = op.kind == "create"
        ctx = self.context(root, op.parameters or {}, first=create, version=op.to_version)
        status_now = ROLLBACK_IN_PROGRESS if create else UPDATE_ROLLBACK_IN_PROGRESS
        self.ledger.set_stack(root, root=root, status=status_now, operation=op.id,
                              reason="Rolling back an interrupted operation")
        final = self._rollback(ctx, op, create=create)
        notes.append(f"it was rolled back: {final}")
        return notes

    # ---- teardown ----------------------------------------------------------------------------------

    def teardown(self, root: str, *, delete_data: bool = False) -> Outcome:
        with self._locked(f"teardown {root}") as recovered:
            record = self.ledger.stack(root)
            if record is None or record.status == DELETE_COMPLETE:
                raise DeployError(f"stack {root} is not deployed")
            params = dict(record.parameters or {})
            op = self.ledger.begin_operation(root, "teardown", from_version=record.version, to_version=None,
                                             previous_parameters=params,
                                             parameters={**params, "_delete_data": delete_data})
            outcome = self._teardown(root, self.ledger.operation(op), delete_data=delete_data)
            outcome.recovered = recovered
            return outcome

    def _teardown(self, root: str, op: Operation | None, *, delete_data: bool) -> Outcome:
        assert op is not None
        params = {k: v for k, v in (op.parameters or {}).items() if k != "_delete_data"}
        ctx = self.context(root, params, first=False, version=op.from_version)
        ctx.params = {**params, "_delete_data": delete_data}
        index = self._resource_index()
        self.ledger.set_stack(root, root=root, status=DELETE_IN_PROGRESS, reason="User initiated", operation=op.id)
        for stack in reversed(self.ledger.stacks(root)):
            if stack.component is None or stack.status == DELETE_COMPLETE:
                continue
            self.ledger.set_stack(stack.name, root=root, status=DELETE_IN_PROGRESS, operation=op.id)
            for recorded in reversed(self.ledger.resources(stack.name)):
                found = index.get((stack.component, recorded.name))
                self.ledger.resource_event(stack.name, recorded.name, DELETE_IN_PROGRESS, "", op.id)
                try:
                    if found is not None:
                        found[1].delete(ctx, recorded.properties, recorded.outputs)
                except Exception as err:
                    reason = error_text(err)
                    self.ledger.resource_event(stack.name, recorded.name, DELETE_FAILED, reason, op.id)
                    self.ledger.set_stack(stack.name, root=root, status=DELETE_FAILED, reason=reason, operation=op.id)
                    self.ledger.set_stack(root, root=root, status=DELETE_FAILED, operation=op.id,
                                          reason=f"{stack.component}/{recorded.name}: {reason}")
                    self.ledger.finish_operation(op.id, DELETE_FAILED)
                    return Outcome(root, DELETE_FAILED, op.id, error=f"{stack.component}/{recorded.name}: {reason}")
                self.ledger.drop_resource(stack.name, recorded.name, operation=op.id)
            self.ledger.set_stack(stack.name, root=root, status=DELETE_COMPLETE, operation=op.id)
        self.ledger.set_stack(root, root=root, status=DELETE_COMPLETE, operation=op.id)
        self.ledger.finish_operation(op.id, DELETE_COMPLETE)
        return Outcome(root, DELETE_COMPLETE, op.id)


class _LockedOperation:
    """Holds the ledger lock for one operation and first recovers what a crashed run left behind."""

    def __init__(self, deployment: Deployment, operation: str) -> None:
        self.deployment = deployment
        self.operation = operation

    def __enter__(self) -> list[str]:
        ledger = self.deployment.ledger
        stale = ledger.acquire(self.operation)
        notes: list[str] = []
        if stale is not None:
            notes.append(f"a stale lock was found ({stale.operation} by pid {stale.pid}, which is no longer "
                         "running)")
        try:
            for root in ledger.roots():
                notes += self.deployment.recover(root.name)
        except BaseException:
            ledger.release()
            raise
        return notes

    def __exit__(self, *exc: object) -> None:
        self.deployment.ledger.release()
