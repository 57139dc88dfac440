"""The registry's RPCs: wire message in, a ``Registry`` use case, wire message out.

The caller's token names the author of a publish and the actor of every
change in the audit log, so neither can be claimed in the request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from google.protobuf.message import Message

from strata.api.strata.v1 import registry_pb2 as pb
from strata.errors import InvalidArgument, Problem
from strata.registry.records import AuditRecord, Head, VersionRecord
from strata.registry.service import Registry
from strata.shadows import Shadow
from strata.shadows import default_seed as default_shadow_seed
from strata.splits import Split
from strata.transport.context import Context
from strata.transport.convert import to_timestamp

DEFAULT_AUDIT_PAGE = 100
Revisioned = (
    pb.ActivateRequest
    | pb.RollbackRequest
    | pb.SetAliasRequest
    | pb.SetSplitRequest
    | pb.EndSplitRequest
    | pb.SetShadowRequest
    | pb.EndShadowRequest
)


def split_message(split: Split) -> pb.Split:
    arms = [pb.SplitArm(version=v, weight=w) for v, w in zip(split.versions, split.weights, strict=True)]
    return pb.Split(arms=arms, seed=split.seed, coverage=split.coverage)


def ruleset_message(head: Head, split: Split | None = None, shadow: Shadow | None = None) -> pb.Ruleset:
    message = pb.Ruleset(
        name=head.name,
        kind=head.kind,
        revision=head.revision,
        latest_version=head.latest_version,
        aliases=dict(head.aliases),
    )
    if head.active_version is not None:
        message.active_version = head.active_version
    if split is not None:
        message.split.CopyFrom(split_message(split))
    if shadow is not None:
        message.shadow.CopyFrom(pb.Shadow(version=shadow.version, share=shadow.share, seed=shadow.seed))
    return message


def version_message(record: VersionRecord) -> pb.RulesetVersion:
    return pb.RulesetVersion(
        name=record.name,
        version=record.version,
        kind=record.kind,
        checksum=record.checksum,
        author=record.author,
        created_at=to_timestamp(record.created_at),
        note=record.note,
        content=record.content or "",
    )


def audit_message(entry: AuditRecord) -> pb.AuditEntry:
    message = pb.AuditEntry(
        id=entry.id,
        at=to_timestamp(entry.at),
        actor=entry.actor,
        action=entry.action,
        ruleset=entry.ruleset,
        detail=entry.detail,
    )
    if entry.from_version is not None:
        message.from_version = entry.from_version
    if entry.to_version is not None:
        message.to_version = entry.to_version
    return message


def expected_revision(request: Revisioned) -> int:
    """The revision the caller quotes; required, so that no change is made blind."""
    if not request.HasField("expected_revision"):
        raise InvalidArgument(
            "a change must quote the ruleset's revision",
            [Problem("required: the revision from ListRulesets or ListVersions", field="expected_revision")],
        )
    return request.expected_revision


class RegistryOperations:
    """One method per RegistryService RPC."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def handlers(self) -> dict[str, Callable[[Any, Context], Message]]:
        return {
            "PublishVersion": self.publish_version,
            "ListRulesets": self.list_rulesets,
            "ListVersions": self.list_versions,
            "GetVersion": self.get_version,
            "DiffVersions": self.diff_versions,
            "Activate": self.activate,
            "Rollback": self.rollback,
            "SetAlias": self.set_alias,
            "SetSplit": self.set_split,
            "EndSplit": self.end_split,
            "SetShadow": self.set_shadow,
            "EndShadow": self.end_shadow,
            "ListAudit": self.list_audit,
        }

    def publish_version(
        self, request: pb.PublishVersionRequest, context: Context
    ) -> pb.PublishVersionResponse:
        published = self.registry.publish(
            request.content, context.principal.name, request.note, name=request.name or None
        )
        return pb.PublishVersionResponse(
            version=version_message(published.version), created=published.created
        )

    def list_rulesets(self, request: pb.ListRulesetsRequest, context: Context) -> pb.ListRulesetsResponse:
        splits, shadows = self.registry.splits(), self.registry.shadows()
        rulesets = [
            ruleset_message(head, splits.get(head.name), shadows.get(head.name))
            for head in self.registry.rulesets()
        ]
        return pb.ListRulesetsResponse(rulesets=rulesets)

    def list_versions(self, request: pb.ListVersionsRequest, context: Context) -> pb.ListVersionsResponse:
        head = self.registry.head(request.name)
        versions = [version_message(record) for record in self.registry.versions(request.name)]
        return pb.ListVersionsResponse(ruleset=self._ruleset(head), versions=versions)

    def get_version(self, request: pb.GetVersionRequest, context: Context) -> pb.RulesetVersion:
        return version_message(self.registry.version(request.name, request.version))

    def diff_versions(self, request: pb.DiffVersionsRequest, context: Context) -> pb.DiffVersionsResponse:
        diff = self.registry.diff(request.name, request.from_version, request.to_version)
        return pb.DiffVersionsResponse(diff=diff)

    def activate(self, request: pb.ActivateRequest, context: Context) -> pb.Ruleset:
        revision = expected_revision(request)
        head = self.registry.activate(request.name, request.version, revision, context.principal.name)
        return self._ruleset(head)

    def rollback(self, request: pb.RollbackRequest, context: Context) -> pb.Ruleset:
        head = self.registry.rollback(request.name, expected_revision(request), context.principal.name)
        return self._ruleset(head)

    def set_alias(self, request: pb.SetAliasRequest, context: Context) -> pb.Ruleset:
        revision = expected_revision(request)
        head = self.registry.set_alias(
            request.name, request.alias, request.version, revision, context.principal.name
        )
        return self._ruleset(head)

    def set_split(self, request: pb.SetSplitRequest, context: Context) -> pb.Ruleset:
        revision = expected_revision(request)
        arms = request.split.arms
        split = Split(
            tuple(arm.version for arm in arms),
            tuple(arm.weight for arm in arms),
            request.split.seed or request.name,
            request.split.coverage if request.split.HasField("coverage") else 1.0,
        )
        head = self.registry.set_split(request.name, split, revision, context.principal.name)
        return self._ruleset(head)

    def end_split(self, request: pb.EndSplitRequest, context: Context) -> pb.Ruleset:
        head = self.registry.end_split(request.name, expected_revision(request), context.principal.name)
        return self._ruleset(head)

    def set_shadow(self, request: pb.SetShadowRequest, context: Context) -> pb.Ruleset:
        revision = expected_revision(request)
        given = request.shadow
        shadow = Shadow(
            given.version,
            given.share if given.HasField("share") else 1.0,
            given.seed or default_shadow_seed(request.name),
        )
        head = self.registry.set_shadow(request.name, shadow, revision, context.principal.name)
        return self._ruleset(head)

    def end_shadow(self, request: pb.EndShadowRequest, context: Context) -> pb.Ruleset:
        head = self.registry.end_shadow(request.name, expected_revision(request), context.principal.name)
        return self._ruleset(head)

    def _ruleset(self, head: Head) -> pb.Ruleset:
        return ruleset_message(head, self.registry.split(head.name), self.registry.shadow(head.name))

    def list_audit(self, request: pb.ListAuditRequest, context: Context) -> pb.ListAuditResponse:
        before = request.before if request.HasField("before") else None
        entries = self.registry.audit(request.ruleset, request.limit or DEFAULT_AUDIT_PAGE, before)
        return pb.ListAuditResponse(entries=[audit_message(entry) for entry in entries])
