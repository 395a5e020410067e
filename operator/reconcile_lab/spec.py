"""The WebApp: the one description of an app's desired state.

Everything else is derived from this module: the CRD's OpenAPI schema (``schema.py``), the
Kubernetes manifests (``declarative/render.py``) and the Docker containers
(``imperative/containers.py``). Rules the OpenAPI schema cannot say are written once here as
:class:`Rule`: a CEL expression for the apiserver and the same predicate in Python for the Docker
twin, with one message. Reading a document with this model, and saying what is wrong with it, is
``parsing.py``'s job.

Purely data: no I/O, no kopf, no kubernetes, no docker.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal, NamedTuple

import pydantic
from pydantic import BaseModel, ConfigDict, Field

GROUP = "reconcile-lab.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "WebApp"
PLURAL = "webapps"
SINGULAR = "webapp"
SHORT_NAMES = ("wa",)

DNS1035 = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
# Kubernetes quantity syntax without a sign: resources are never negative.
QUANTITY = (
    r"^(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE][+-]?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
# A registry/repository[:tag][@digest] reference, as Docker and the kubelet accept it.
IMAGE = r"^[A-Za-z0-9][A-Za-z0-9._/:@-]*$"
# Printable ASCII without spaces: an HTTP path as a probe and wget send it.
HTTP_PATH = r"^/[!-~]*$"
# Text without control characters: kubectl and server-side apply send YAML, which refuses them.
TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
MAX_NAME = 63


# --- quantities -----------------------------------------------------------------------------

_SUFFIXES = {
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
    "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"),
    "P": Decimal("1e15"), "E": Decimal("1e18"),
    "Ki": Decimal(2**10), "Mi": Decimal(2**20), "Gi": Decimal(2**30), "Ti": Decimal(2**40),
    "Pi": Decimal(2**50), "Ei": Decimal(2**60),
}
_QUANTITY_PARTS = re.compile(r"^([0-9.]+)([eE][+-]?[0-9.]+|[A-Za-z]*)$")


def parse_quantity(text: str) -> Decimal:
    """The value of a Kubernetes quantity ("250m" → 0.25, "64Mi" → 67108864)."""
    if not re.match(QUANTITY, text):
        raise ValueError(f"{text!r} is not a Kubernetes quantity")
    number, suffix = _QUANTITY_PARTS.match(text).groups()  # type: ignore[union-attr]
    if suffix[:1] in ("e", "E"):
        return Decimal(number) * Decimal(10) ** Decimal(suffix[1:])
    return Decimal(number) * _SUFFIXES[suffix]


def cpu_cores(text: str) -> float:
    return float(parse_quantity(text))


def memory_bytes(text: str) -> int:
    return int(parse_quantity(text))


# --- cross-field rules ----------------------------------------------------------------------


class Rule(NamedTuple):
    """One rule, said twice: as CEL for the apiserver and as Python for the Docker twin."""

    cel: str
    message: str
    field_path: str  # relative to the object the rule sits on, e.g. ".requests.cpu"
    check: Callable[[Any], bool]


def _le(a: str | None, b: str | None) -> bool:
    return a is None or b is None or parse_quantity(a) <= parse_quantity(b)


def _le_cel(resource: str) -> str:
    return (
        f"!has(self.requests) || !has(self.limits) || !has(self.requests.{resource})"
        f" || !has(self.limits.{resource})"
        f" || quantity(self.requests.{resource}).compareTo(quantity(self.limits.{resource})) <= 0"
    )


def _rules_extra(rules: Sequence[Rule]) -> dict[str, Any]:
    return {
        "x-kubernetes-validations": [
            {"rule": r.cel, "message": r.message, **({"fieldPath": r.field_path} if r.field_path else {})}
            for r in rules
        ]
    }


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    RULES: ClassVar[tuple[Rule, ...]] = ()

    @pydantic.model_validator(mode="after")
    def _check_rules(self) -> _Model:
        for rule in self.RULES:
            if not rule.check(self):
                # pydantic reports this at the model's own location; _describe adds the
                # rule's field path so both engines name the same field.
                raise ValueError(rule.message)
        return self


# --- the model ------------------------------------------------------------------------------

Quantity = Annotated[str, Field(pattern=QUANTITY, max_length=32)]


class EnvVar(_Model):
    """One environment variable."""

    name: str = Field(
        pattern=ENV_NAME, max_length=128,
        description="Variable name: letters, digits and '_', not starting with a digit. Unique.",
    )
    value: str = Field(default="", max_length=4096, pattern=TEXT,
                       description="Variable value: text, without control characters.")


class ResourceList(_Model):
    """An amount of CPU and memory."""

    cpu: Quantity | None = Field(
        default=None, description="CPU in Kubernetes quantity syntax: 1 = one core, 250m = a quarter."
    )
    memory: Quantity | None = Field(
        default=None, description="Memory in Kubernetes quantity syntax, e.g. 64Mi or 1Gi."
    )


class Resources(_Model):
    """What each instance asks for (requests) and may use at most (limits)."""

    RULES: ClassVar[tuple[Rule, ...]] = (
        Rule(_le_cel("cpu"), "cpu request must be less than or equal to cpu limit",
             ".requests.cpu",
             lambda r: not (r.requests and r.limits) or _le(r.requests.cpu, r.limits.cpu)),
        Rule(_le_cel("memory"), "memory request must be less than or equal to memory limit",
             ".requests.memory",
             lambda r: not (r.requests and r.limits) or _le(r.requests.memory, r.limits.memory)),
    )
    model_config = ConfigDict(json_schema_extra=_rules_extra(RULES))

    requests: ResourceList | None = Field(
        default=None,
        description="Reserved for each instance: the scheduler places a pod only where this fits.",
    )
    limits: ResourceList | None = Field(
        default=None,
        description="Hard ceiling for each instance: CPU is throttled, memory over it is killed.",
    )


DEFAULT_RESOURCES = Resources(
    requests=ResourceList(cpu="10m", memory="16Mi"),
    limits=ResourceList(cpu="200m", memory="64Mi"),
)


class HealthCheck(_Model):
    """An HTTP GET that says whether an instance may receive traffic."""

    path: str = Field(
        default="/", pattern=HTTP_PATH, max_length=1024,
        description="HTTP path probed on the app's port; must start with '/'.",
    )
    initialDelaySeconds: int = Field(
        default=0, ge=0, le=3600, description="Seconds to wait after start before the first probe."
    )
    periodSeconds: int = Field(default=5, ge=1, le=3600, description="Seconds between probes.")
    timeoutSeconds: int = Field(default=1, ge=1, le=60, description="Seconds a probe may take.")
    failureThreshold: int = Field(
        default=3, ge=1, le=30,
        description="Consecutive failures before an instance counts as unhealthy.",
    )


class Rollout(_Model):
    """How an image or configuration change replaces running instances."""

    RULES: ClassVar[tuple[Rule, ...]] = (
        Rule("self.maxSurge > 0 || self.maxUnavailable > 0",
             "maxSurge and maxUnavailable must not both be 0: the rollout could never progress",
             ".maxSurge", lambda r: r.maxSurge > 0 or r.maxUnavailable > 0),
    )
    model_config = ConfigDict(json_schema_extra=_rules_extra(RULES))

    maxSurge: int = Field(
        default=1, ge=0, le=100,
        description="Instances that may run above the desired count during a rollout.",
    )
    maxUnavailable: int = Field(
        default=0, ge=0, le=100,
        description="Instances that may be missing below the desired count during a rollout.",
    )
    drainSeconds: int = Field(
        default=3, ge=0, le=20,
        description="Seconds an instance being replaced goes on serving before it is told to "
                    "stop, while Services stop sending it requests (a preStop sleep); 0 stops "
                    "it at once, and requests still routed to it fail.",
    )


class Service(_Model):
    """How the app is reached: always by its name inside; optionally on a node port outside."""

    RULES: ClassVar[tuple[Rule, ...]] = (
        Rule("!has(self.nodePort) || self.type == 'NodePort'",
             "nodePort may only be set when type is NodePort", ".nodePort",
             lambda s: s.nodePort is None or s.type == "NodePort"),
    )
    model_config = ConfigDict(json_schema_extra=_rules_extra(RULES))

    type: Literal["ClusterIP", "NodePort"] = Field(
        default="ClusterIP",
        description="ClusterIP: reachable inside the cluster by name. NodePort: also on every "
        "node's port (with kind, the committed config maps node port 30080 to 127.0.0.1:30080).",
    )
    nodePort: int | None = Field(
        default=None, ge=30000, le=32767,
        description="The node port for type NodePort (30000-32767); chosen by the cluster if unset.",
    )


class Autoscale(_Model):
    """Let the cluster choose the number of instances from their CPU use, between two bounds."""

    RULES: ClassVar[tuple[Rule, ...]] = (
        Rule("self.minReplicas <= self.maxReplicas",
             "minReplicas must be less than or equal to maxReplicas", ".minReplicas",
             lambda a: a.minReplicas <= a.maxReplicas),
    )
    model_config = ConfigDict(json_schema_extra=_rules_extra(RULES))

    minReplicas: int = Field(default=1, ge=1, le=1000,
                             description="Fewest instances, however idle the app is.")
    maxReplicas: int = Field(ge=1, le=1000,
                             description="Most instances, however busy the app is.")
    targetCPUUtilizationPercentage: int = Field(
        default=70, ge=1, le=1000,
        description="Average CPU use to aim for, in percent of each instance's CPU request: "
        "above it instances are added, below it (for scaleInAfterSeconds) removed.",
    )
    scaleInAfterSeconds: int = Field(
        default=60, ge=0, le=3600,
        description="Seconds the load must stay low before instances are removed, so that a "
        "short lull does not shrink the app. Kubernetes' own default is 300.",
    )


def _cpu_requested(spec: Any) -> bool:
    requests = spec.resources.requests
    return spec.autoscale is None or (requests is not None and requests.cpu is not None)


class WebAppSpec(_Model):
    """Desired state of a stateless HTTP app: what runs, how many, and how it is reached."""

    RULES: ClassVar[tuple[Rule, ...]] = (
        Rule("!has(self.autoscale) || (has(self.resources.requests) "
             "&& has(self.resources.requests.cpu))",
             "autoscale needs resources.requests.cpu: CPU use is measured in percent of it",
             ".autoscale", _cpu_requested),
    )
    model_config = ConfigDict(json_schema_extra=_rules_extra(RULES))

    image: str = Field(
        min_length=1, max_length=512, pattern=IMAGE,
        description="Container image to run, e.g. reconcile-lab/hello:v1.",
    )
    replicas: int = Field(
        default=1, ge=0, le=1000,
        description="How many instances should run. 0 stops the app but keeps its definition. "
        "With autoscale the autoscaler sets it (through the scale subresource): leave it out "
        "of the file, or every apply of the file undoes the autoscaler's choice.",
    )
    port: int = Field(
        default=8080, ge=1, le=65535,
        description="TCP port the app listens on; the Service and the probes use it too.",
    )
    env: list[EnvVar] = Field(
        default_factory=list, max_length=64,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
        description="Environment variables for every instance; names are unique.",
    )
    resources: Resources = Field(
        default=DEFAULT_RESOURCES,
        description="CPU and memory per instance. Defaults to small requests and limits so that "
        "an app can never starve its neighbours.",
    )
    healthCheck: HealthCheck | None = Field(
        default=None,
        description="HTTP readiness and liveness check; without it an instance is ready once started.",
    )
    rollout: Rollout = Field(
        default_factory=Rollout,
        json_schema_extra={"default": Rollout().model_dump(mode="json", exclude_none=True)},
        description="How changes replace running instances.",
    )
    service: Service = Field(
        default_factory=Service,
        json_schema_extra={"default": Service().model_dump(mode="json", exclude_none=True)},
        description="How the app is reached.",
    )
    rescheduleAfterSeconds: int = Field(
        default=30, ge=0, le=3600,
        description="Seconds an instance stays on a node that stopped answering (not ready or "
        "unreachable) before it is evicted and made again on a node that is left. Kubernetes' "
        "own default is 300.",
    )

    autoscale: Autoscale | None = Field(
        default=None,
        description="Scale on CPU use: the operator makes a HorizontalPodAutoscaler that sets "
        "replicas between minReplicas and maxReplicas. Without it, replicas is the count.",
    )

    @pydantic.field_validator("env")
    @classmethod
    def _unique_env(cls, env: list[EnvVar]) -> list[EnvVar]:
        seen: set[str] = set()
        for i, var in enumerate(env):
            if var.name in seen:
                raise ValueError(f"Duplicate value: env[{i}].name {var.name!r}")
            seen.add(var.name)
        return env


NAME_RULES: tuple[Rule, ...] = (
    Rule(f"self.metadata.name.matches('{DNS1035}') && size(self.metadata.name) <= {MAX_NAME}",
         f"metadata.name must be a DNS-1035 label (lowercase letters, digits and '-', starting "
         f"with a letter, at most {MAX_NAME} characters) because it also names the Service",
         "", lambda name: bool(re.match(DNS1035, name)) and len(name) <= MAX_NAME),
)


# --- a whole document -----------------------------------------------------------------------


class WebApp(NamedTuple):
    """A validated WebApp document: where it lives and what it wants."""

    name: str
    namespace: str | None
    spec: WebAppSpec


def spec_to_dict(spec: WebAppSpec) -> dict[str, Any]:
    """The spec as the apiserver would store it, defaults filled in."""
    return spec.model_dump(mode="json", exclude_none=True)
