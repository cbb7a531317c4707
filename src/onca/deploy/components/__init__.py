"""The nested stacks of a deployment, in dependency order. Later capabilities add resources to them."""

from __future__ import annotations

from onca.deploy.resources import Component


def components() -> list[Component]:
    from onca.deploy.components import bootstrap, core, detections, onboard, web

    return [bootstrap.component(), core.component(), detections.component(), web.component(), onboard.component()]
