"""A bounded schema fuzz of the server's own OpenAPI document (schemathesis): valid and invalid bodies for every
route, against the real server over loopback. Whatever arrives, the answer is never a 5xx."""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402

pytestmark = pytest.mark.slow
EXAMPLES = 25
"""Per operation and mode: ~10 operations x 2 modes x 25 = ~500 requests."""


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_no_request_gets_a_server_error(server, mode):
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    seen: list[tuple[str, int]] = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy(generation_mode=schemathesis.GenerationMode(mode)))
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def fuzz(case):
            response = case.call(base_url=server.url, timeout=120)
            seen.append((case.path, response.status_code))
            assert response.status_code < 500, (case.method, case.path, case.body, response.text[:500])
            if response.status_code >= 400:
                assert response.json()["error"]["message"]  # OpenAI's error shape, with a message

        try:
            fuzz()
        except Unsatisfiable:  # negative mode, a route without input (GET /health): nothing to make invalid
            assert mode == "negative" and operation.method.upper() == "GET"
    reached = {path for path, _ in seen}
    assert len(reached) >= (9 if mode == "positive" else 6), reached  # every route (with input, when negative)
    if mode == "negative":
        assert sum(status in (400, 422) for _, status in seen) > len(seen) // 4
    assert server.request("GET", "/health").status == 200
