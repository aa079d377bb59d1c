"""docs/grafana/salon.json cannot rot: it is valid Grafana JSON with a Prometheus data
source variable, and every metric its queries name is one a real node exports."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.support.metrics import exported_names, scrape_text
from tests.support.nodes import NodeFactory, free_port

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "salon.json"
METRIC = re.compile(r"\b((?:salon|process)_[a-z0-9_]+)\b")
# what the dashboard must show (issue #15): one family per line of its metrics list
REQUIRED = {
    "salon_rooms",
    "salon_participants",
    "salon_listeners",
    "salon_speakers",
    "salon_worker_listeners",
    "salon_worker_sessions",
    "salon_worker_packets_per_second",
    "salon_worker_packets_sent_total",
    "salon_worker_cpu_percent",
    "salon_worker_fanout_microseconds_per_packet",
    "salon_trunks",
    "salon_event_loop_lag_seconds_bucket",
    "salon_media_late_ticks_total",
    "salon_federation_deliveries",
    "salon_federation_delivery_failures_total",
    "salon_inbox_accepted_total",
    "salon_inbox_refused_total",
}


def queries(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


@pytest.mark.timeout(30)
async def test_dashboard_names_only_exported_metrics(node_factory: NodeFactory) -> None:
    dashboard = json.loads(DASHBOARD.read_text("utf-8"))
    assert dashboard["schemaVersion"] >= 36
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    panel_ids = [p["id"] for p in dashboard["panels"]]
    assert len(panel_ids) == len(set(panel_ids))
    for panel in dashboard["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel
        assert panel["targets"], panel["title"]

    address = f"127.0.0.1:{free_port()}"
    await node_factory(metrics_address=address)
    exported = exported_names(await scrape_text(address))
    named = {m for expr in queries(dashboard) for m in METRIC.findall(expr)}
    assert named, "the dashboard queries no metric"
    assert named <= exported, f"not exported: {sorted(named - exported)}"
    assert named >= REQUIRED, f"not on the dashboard: {sorted(REQUIRED - named)}"
    instance_query = variables["instance"]["query"]["query"]
    assert set(METRIC.findall(instance_query)) <= exported
