"""The client environment's token hook (claractl_clara_token, installed by
scripts/clara-client-env.sh): with CLARA_API_TOKEN set, a Clara script written without any token
handling is let in by a platform beyond loopback; the token goes only to Clara API methods."""

from __future__ import annotations

import pytest

from tests.clara_api.support import start_platform

SCRIPT = '''
import grpc
from concurrent import futures

# Another gRPC server in the same script (say, a Triton): what metadata reaches it?
seen = []
def call(request, context):
    seen.extend(k for k, _v in context.invocation_metadata())
    return request
server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("other.Echo", {{
    "Call": grpc.unary_unary_rpc_method_handler(call)}})])
other_port = server.add_insecure_port("127.0.0.1:0")
server.start()
grpc.insecure_channel(f"127.0.0.1:{{other_port}}").unary_unary("/other.Echo/Call")(b"ping")
server.stop(None)

created = error(payloads.create_payload)             # a write: needs the token off loopback
out(dict(created=created, read=[p.name for p in pipelines.list_pipelines()], other_metadata=seen))
'''


@pytest.fixture(scope="module")
def beyond_loopback(tmp_path_factory):
    running = start_platform(tmp_path_factory.mktemp("state"), host="0.0.0.0")
    yield running
    running.stop()


def test_with_the_token_in_the_environment_an_unchanged_script_may_write(beyond_loopback):
    result = beyond_loopback.run(SCRIPT, client_token=beyond_loopback.platform.token)
    assert result["created"] is None and result["read"] == []
    assert "authorization" not in result["other_metadata"]            # only Clara API calls carry it


@pytest.mark.parametrize("token", [None, "not-the-token"])
def test_without_the_right_token_writes_are_refused_and_reads_answer(beyond_loopback, token):
    result = beyond_loopback.run(SCRIPT, client_token=token)
    assert "StatusCode.UNAUTHENTICATED" in result["created"]
    assert result["read"] == []
