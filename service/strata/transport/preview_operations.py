"""The Preview RPC: wire request in, ``Previews.preview``, the transition matrix out."""

from __future__ import annotations

from strata.api.strata.v1 import preview_pb2 as pb
from strata.preview import PreviewResult
from strata.preview.service import Previews
from strata.transport.context import Context
from strata.transport.convert import to_datetime, to_timestamp


def preview_message(result: PreviewResult) -> pb.PreviewResponse:
    """A ``PreviewResult`` as its wire message (the same fields as ``PreviewResult.to_dict``)."""
    return pb.PreviewResponse(
        ruleset=result.ruleset,
        kind=result.kind,
        candidate=pb.PreviewSide(label=result.candidate.label, checksum=result.candidate.checksum),
        baseline=pb.PreviewSide(label=result.baseline.label, checksum=result.baseline.checksum),
        as_of=to_timestamp(result.as_of),
        method=result.method,
        fallbacks=[
            pb.PreviewFallback(side=f.side, rule=f.rule, field=f.field, reason=f.reason)
            for f in result.fallbacks
        ],
        database=result.database,
        total=result.total,
        changed=result.changed,
        changed_share=result.changed_share,
        classes=result.classes,
        before=result.before,
        after=result.after,
        cells=[
            pb.TransitionCell(
                from_class=cell.before,
                to_class=cell.after,
                count=cell.count,
                share=cell.share,
                samples=cell.samples,
            )
            for cell in result.cells
        ],
        elapsed_seconds=result.elapsed_s,
    )


def preview(previews: Previews, request: pb.PreviewRequest, context: Context) -> pb.PreviewResponse:
    """The Preview RPC (bound to a ``Previews`` by ``Operations``)."""
    result = previews.preview(
        request.name,
        candidate=request.candidate,
        candidate_content=request.candidate_content,
        against=request.against,
        as_of=to_datetime(request.as_of) if request.HasField("as_of") else None,
        deadline=context.deadline,
    )
    return preview_message(result)
