"""schemathesis over the Live Data API's own OpenAPI document: generated good and bad input
for every operation, against `livecli serve` over loopback; every answer must be a documented
status with a body that matches its documented schema, and never a 500.

Driven through schemathesis's Python API (a Hypothesis strategy per operation and mode) rather
than its pytest plugin, which does not run under pytest 9. Bounded: MAX_EXAMPLES per operation
and mode, no shrinking phase, so the module runs in well under a minute. The server streams the
simulated market; generated requests may stop and start it, which the API must survive too.
"""

from __future__ import annotations

import signal

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402

from tests.serve_server import ServeProcess  # noqa: E402

pytestmark = pytest.mark.slow
MAX_EXAMPLES = 20
# Operations that take no input at all: there is nothing to make invalid.
NO_INPUT = {"POST /api/live/stop", "GET /api/live/status"}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    srv = ServeProcess(tmp_path_factory.mktemp("schema"), "RELIANCE", "INFY", "-i", "5min")
    yield srv
    assert srv.signal(signal.SIGTERM) == 0, srv.stderr()
    assert "Traceback" not in srv.stderr(), srv.stderr()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_operation_survives_generated_input(served, mode):
    schema = schemathesis.openapi.from_url(served.url + "/openapi.json")
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) == 8, [op.label for op in operations]
    for op in operations:
        @given(case=op.as_strategy(generation_mode=mode))
        @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
                  phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck))
        def run(case):
            case.call_and_validate(base_url=served.url)

        if mode == GenerationMode.NEGATIVE and op.label in NO_INPUT:
            with pytest.raises(Unsatisfiable):
                run()
        else:
            run()
