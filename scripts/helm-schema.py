#!/usr/bin/env python3
"""Generate helm/events-cache/values.schema.json from values.yaml.

Every key of values.yaml gets a schema: the type of its default, and the refinements
listed in OVERRIDES below (enums, patterns, ranges, Kubernetes objects that stay
free-form). `config`, the daemon's own configuration, gets the schema derived from the
daemon's configuration model (daemon/config/), secrets excluded. Objects the chart
defines refuse unknown keys, so a misspelt value fails `helm install` instead of being
ignored; `global` is allowed at the root so the chart
works as a subchart.

    scripts/helm-schema.py            # rewrite values.schema.json
    scripts/helm-schema.py --check    # exit 1 if it is out of date
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "helm" / "events-cache"
sys.path.insert(0, str(ROOT))

from daemon.config.render import chart_schema  # noqa: E402

SCHEMA = CHART / "values.schema.json"

K8S_OBJECT = {"type": "object"}  # a Kubernetes structure validated by the API server
PULL_POLICY = {"type": "string", "enum": ["Always", "IfNotPresent", "Never"]}
DIGEST = {"type": "string", "pattern": r"^(sha256:[a-f0-9]{64})?$"}
PORT = {"type": "integer", "minimum": 1, "maximum": 65535}
SECRET_NAME = {
    "type": "string",
    "pattern": r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?)?$",
    "maxLength": 253,
}
DURATION = {"type": "string", "pattern": r"^([0-9]+(ms|s|m|h))+$"}

OVERRIDES: dict[str, dict[str, Any]] = {
    "image.pullPolicy": PULL_POLICY,
    "image.digest": DIGEST,
    "ingest.image.pullPolicy": PULL_POLICY,
    "ingest.image.digest": DIGEST,
    "redis.image.pullPolicy": PULL_POLICY,
    "redis.image.digest": DIGEST,
    "updateStrategy": K8S_OBJECT,
    "replicaCount": {"type": "integer", "minimum": 0},
    "revisionHistoryLimit": {"type": "integer", "minimum": 0},
    "ingest.name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
    "ingest.shutdownSeconds": {"type": "integer", "minimum": 0},
    "ingest.securityContext": K8S_OBJECT,
    "ingest.service.type": {"type": "string", "enum": ["ClusterIP", "NodePort", "LoadBalancer"]},
    "sidecar.name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
    "sidecar.apiPort": PORT,
    "sidecar.ingestPort": {"type": "integer", "minimum": 0, "maximum": 65535},
    "sidecar.resources": K8S_OBJECT,
    "sidecar.startupProbe": K8S_OBJECT,
    "sidecar.livenessProbe": K8S_OBJECT,
    "sidecar.readinessProbe": K8S_OBJECT,
    "sidecar.securityContext": K8S_OBJECT,
    "demo.rate": {"type": "number", "exclusiveMinimum": 0},
    "demo.ids": {"type": "integer", "minimum": 1},
    "demo.errorRatio": {"type": "number", "minimum": 0, "maximum": 1},
    "demo.resources": K8S_OBJECT,
    "socket.dir": {"type": "string", "pattern": r"^/.+"},
    "socket.name": {"type": "string", "pattern": r"^[^/]+$"},
    "socket.medium": {"type": "string", "enum": ["", "Memory"]},
    "socket.sizeLimit": {"type": ["string", "null"]},
    "auth.existingSecret": SECRET_NAME,
    "externalRedis.port": PORT,
    "externalRedis.database": {"type": "integer", "minimum": 0},
    "externalRedis.existingSecret": SECRET_NAME,
    "externalRedis.tls.caSecret": SECRET_NAME,
    "redis.maxmemoryPolicy": {
        "type": "string",
        "enum": [
            "noeviction",
            "allkeys-lru",
            "allkeys-lfu",
            "allkeys-random",
            "volatile-lru",
            "volatile-lfu",
            "volatile-random",
            "volatile-ttl",
        ],
    },
    "redis.resources": K8S_OBJECT,
    "redis.podSecurityContext": K8S_OBJECT,
    "redis.securityContext": K8S_OBJECT,
    "redis.livenessProbe": K8S_OBJECT,
    "redis.readinessProbe": K8S_OBJECT,
    "service.type": {"type": "string", "enum": ["ClusterIP", "NodePort", "LoadBalancer"]},
    "service.port": PORT,
    "ingress.hosts": {
        "type": "array",
        "items": {
            "type": "object",
            "additionalProperties": False,
            "required": ["host"],
            "properties": {
                "host": {"type": "string"},
                "paths": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["path"],
                        "properties": {
                            "path": {"type": "string"},
                            "pathType": {
                                "type": "string",
                                "enum": ["Prefix", "Exact", "ImplementationSpecific"],
                            },
                        },
                    },
                },
            },
        },
    },
    "podSecurityContext": K8S_OBJECT,
    "terminationGracePeriodSeconds": {"type": ["integer", "null"], "minimum": 0},
    "metrics.serviceMonitor.interval": DURATION,
    "metrics.serviceMonitor.scrapeTimeout": DURATION,
    "metrics.podMonitor.interval": DURATION,
    "metrics.podMonitor.scrapeTimeout": DURATION,
    "metrics.prometheusRule.disabledAlerts": {"type": "array", "items": {"type": "string"}},
    "metrics.prometheusRule.alertLabels": {
        "type": "object",
        "additionalProperties": {"type": "string"},
    },
    "dashboards.labels": {"type": "object", "additionalProperties": {"type": "string"}},
    "dashboards.annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    "dashboards.label": {"type": "string", "minLength": 1},
    "dashboards.namespace": {
        "type": "string",
        "pattern": r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?)?$",
        "maxLength": 63,
    },
    "podDisruptionBudget.minAvailable": {"type": ["integer", "string"]},
    "podDisruptionBudget.maxUnavailable": {"type": ["integer", "string"]},
    "autoscaling.minReplicas": {"type": "integer", "minimum": 1},
    "autoscaling.maxReplicas": {"type": "integer", "minimum": 1},
    "autoscaling.targetCPUUtilizationPercentage": {"type": "integer", "minimum": 0},
    "autoscaling.targetMemoryUtilizationPercentage": {"type": "integer", "minimum": 0},
    "networkPolicy.egress.redisPorts": {"type": "array", "items": PORT},
    "commonLabels": {"type": "object", "additionalProperties": {"type": "string"}},
    "podLabels": {"type": "object", "additionalProperties": {"type": "string"}},
    "podAnnotations": {"type": "object", "additionalProperties": {"type": "string"}},
    "nodeSelector": {"type": "object", "additionalProperties": {"type": "string"}},
}


def infer(value: Any, path: str, descriptions: dict[str, str]) -> dict[str, Any]:
    """The schema of one value: its override, else the type of its default."""
    if path in OVERRIDES:
        schema = dict(OVERRIDES[path])
    elif isinstance(value, dict) and value:
        schema = {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                k: infer(v, f"{path}.{k}" if path else k, descriptions) for k, v in value.items()
            },
        }
    elif isinstance(value, dict):
        schema = {"type": "object"}
    elif isinstance(value, list):
        schema = {"type": "array"}
    elif isinstance(value, bool):
        schema = {"type": "boolean"}
    elif isinstance(value, int):
        schema = {"type": "integer"}
    elif isinstance(value, float):
        schema = {"type": "number"}
    elif isinstance(value, str):
        schema = {"type": "string"}
    else:
        raise SystemExit(f"{path}: no type for a default of {value!r}; add an override")
    if path in descriptions:
        schema = {"description": descriptions[path], **schema}
    return schema


def render() -> str:
    """The schema text."""
    # Import here: the docs generator parses the same comments.
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from importlib import import_module

    docs = import_module("helm-docs")
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    descriptions = {row.key: row.description for row in docs.parse(CHART / "values.yaml")}
    schema = infer(values, "", descriptions)
    # The daemon's configuration: generated from its model, like docs/configuration.md.
    schema["properties"]["config"] = {
        "description": descriptions["config"],
        **chart_schema(),
    }
    schema["properties"]["global"] = {
        "type": "object",
        "description": "Values shared with parent and sibling charts.",
    }
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "events-cache chart values",
        **schema,
    }
    return json.dumps(schema, indent=2) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the file is stale")
    args = parser.parse_args()
    text = render()
    if args.check:
        if SCHEMA.read_text() != text:
            print(f"{SCHEMA} is stale: run scripts/helm-schema.py", file=sys.stderr)
            return 1
        return 0
    SCHEMA.write_text(text)
    print(f"wrote {SCHEMA}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
