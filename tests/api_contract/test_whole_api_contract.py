"""Every operation of the hub's whole API is documented, and answers as documented."""

from __future__ import annotations

from openapi_spec_validator import validate

from . import test_workflow_contract as workflow
from .contract import ContractClient

H = dict[str, dict[str, str]]


async def test_document_is_valid_openapi_and_names_are_unique(contract: ContractClient) -> None:
    validate(contract.doc)
    ids = [op.spec["operationId"] for op in contract.operations]
    assert len(ids) == len(set(ids)), "operationId used twice"
    for op in contract.operations:
        assert op.spec.get("summary"), f"{op.method} {op.template} has no summary"
        if op.spec.get("security"):
            assert {"401", "403"} <= set(op.spec["responses"]), op.template


async def test_parameterless_reads_answer_as_documented(
    contract: ContractClient, staff_headers: H
) -> None:
    """A sweep over every GET without path parameters, as admin: status and body declared."""
    swept = []
    for op in contract.operations:
        if op.method != "GET" or "{" in op.template:
            continue
        required = [p for p in op.spec.get("parameters", []) if p.get("required")]
        if required:
            continue
        await contract.call("GET", op.template, headers=staff_headers["admin"])
        swept.append(op.template)
    assert "/api/broadcasts" in swept and "/api/staff" in swept


async def test_this_areas_operations_are_all_exercised(
    contract: ContractClient, staff_headers: H
) -> None:
    await workflow.test_create_preview_submit_approve_schedule(contract, staff_headers)
    await workflow.test_error_answers_are_declared(contract, staff_headers)
    await workflow.test_staff_and_test_endpoints(contract, staff_headers)
    mine = {
        (op.method, op.template)
        for op in contract.operations
        if op.spec["tags"] in (["broadcasts"], ["staff"])
    }
    missing = sorted(mine - contract.covered)
    assert not missing, f"not exercised by the contract tests: {missing}"
