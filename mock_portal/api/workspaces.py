"""[sandbox] handlers of workspaces: the operator's `/sandbox/workspaces`, anyone's `/sandbox/workspace`. Thin."""

from __future__ import annotations

from typing import Any

from mock_portal import store
from mock_portal.api.context import request_caller, request_portal
from mock_portal.api.render import Reply, empty, reply
from mock_portal.portal import workspaces as ws

Json = dict[str, Any]


def _operator() -> None:
    caller = request_caller()
    ws.require_operator(caller or ws.Caller(ws.Role.WORKSPACE, ""))


def _view(row: store.Workspace) -> Json:
    return {
        "id": row.id,
        "name": row.name,
        "created_at": row.created_at.isoformat(),
        "quotas": {
            "max_facilities": row.max_facilities,
            "max_submissions_per_minute": row.max_submissions_per_minute,
            "max_documents": row.max_documents,
        },
    }


def list_workspaces() -> Reply:
    _operator()
    return reply([_view(row) for row in request_portal().repo.list_workspaces()])


def create_workspace(body: Json) -> Reply:
    _operator()
    portal = request_portal()
    new = ws.NewWorkspace(
        id=body.get("id"),
        name=str(body.get("name") or ""),
        quotas=ws.parse_quotas(body.get("quotas"), ws.default_quotas(portal)),
    )
    row, key = ws.create(portal, new)
    return reply({**_view(row), "key": key}, 201)


def get_workspace(id: str) -> Reply:  # noqa: A002 - the spec's parameter name
    _operator()
    row = request_portal().repo.get_workspace(id)
    if row is None:
        raise ws.not_found(id)
    return reply(_view(row))


def delete_workspace(id: str) -> tuple[str, int]:  # noqa: A002 - the spec's parameter name
    _operator()
    ws.delete(request_portal(), id)
    return empty()


def get_current_workspace() -> Reply:
    portal = request_portal()
    caller = request_caller()
    return reply({**ws.describe(portal), "role": caller.role.value if caller else ws.Role.OPERATOR.value})
