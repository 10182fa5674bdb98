"""Schema-driven fuzzing of `shortlist serve`'s OpenAPI document (schemathesis): valid and invalid bodies generated
from the schema for every operation, sent over real HTTP to the test server; none may get a 5xx, and every answer
must match its documented schema. Examples are bounded so the run stays short."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, Phase, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

if TYPE_CHECKING:
    from .conftest import LiveServer

MAX_EXAMPLES = 30


def _openapi_document() -> dict[str, Any]:
    """The document the test server serves at /openapi.json (built without loading the model)."""
    from shortlist.server import create_app

    from .conftest import LIMITS

    return create_app(api_key="", limits=LIMITS).openapi()


schema = schemathesis.openapi.from_dict(_openapi_document())


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_no_server_errors_and_answers_match_the_schema(case: Any, live: LiveServer) -> None:
    case.call_and_validate(
        base_url=live.url,
        checks=[not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance],
        timeout=60,
    )
