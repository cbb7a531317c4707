"""A worker batch that fails part way is retried from the checkpoint: its records are stored and counted once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from onca.cli.deploy_commands import deployed_context
from onca.pipeline.serve import _registry, _sessions
from onca.pipeline.spool import Spool
from onca.pipeline.worker import Worker

from .test_serve_crash import deployed, output
from .test_serve_e2e import ROOT_LOGIN


def test_a_retried_batch_counts_its_records_once(tmp_path: Path) -> None:
    home = tmp_path / "home"
    deployed(home)  # a deployment with the CloudTrail source "ct"
    events = [json.dumps({**ROOT_LOGIN, "eventID": f"retry-{i}"}).encode() for i in range(3)]
    with deployed_context(home) as ctx:
        engine, sessions = _sessions(ctx)
        spool = Spool(home / "spool")
        spool.append("ct", [*events, b"not json"])
        worker = Worker(home, spool, ctx.lake_dir, sessions, _registry(home))
        write, failures = worker.writer.write, []

        def failing_once(*args: Any, **kwargs: Any) -> Any:
            if not failures:
                failures.append(1)
                raise OSError(28, "No space left on device")
            return write(*args, **kwargs)

        worker.writer.write = failing_once  # type: ignore[method-assign]
        try:
            with pytest.raises(OSError, match="No space left"):
                worker.run_once(timeout=2)
            worker.rewind()
            assert worker.run_once(timeout=2) == 1
            counted = worker.counters.published()
        finally:
            worker.close()
            spool.close()
            engine.dispose()
    assert (counted["received"], counted["parsed"], counted["quarantined"]) == (4, 3, 1)
    assert output(home, "query", "SELECT count(*) AS n FROM aws_cloudtrail") == [{"n": 3}]
