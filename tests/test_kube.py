"""The operator's Kubernetes client (controller/kube.py) against a stand-in API server: what each
answer becomes, and what is sent. The real API server is exercised by tests/operator."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml
from aiohttp import web

from controller.failure import Classification
from controller.kube import ApiError, Conflict, KubeApi, ObjectRef, transient

REF = ObjectRef("team", "run", "uid-1")


@pytest.fixture
async def api(
    tmp_path: Path,
) -> AsyncIterator[tuple[KubeApi, list[dict[str, Any]], dict[str, Any]]]:
    """A KubeApi whose server sits under a path prefix (as behind an API proxy). `answers` maps
    "METHOD path" to (status, body); every request is recorded."""
    seen: list[dict[str, Any]] = []
    answers: dict[str, Any] = {}

    async def handle(request: web.Request) -> web.Response:
        body = await request.text()
        seen.append(
            {
                "method": request.method,
                "path": request.path,
                "query": dict(request.query),
                "headers": dict(request.headers),
                "body": json.loads(body) if body else None,
            }
        )
        status, answer = answers.get(f"{request.method} {request.path}", (404, {"message": "nf"}))
        return web.json_response(answer, status=status)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    # Loaded the way the operator loads it: a kubeconfig with a bearer token, as a
    # ServiceAccount's (the `kubernetes` package files it under "BearerToken").
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {"name": "c", "cluster": {"server": f"http://127.0.0.1:{port}/proxy/"}}
                ],
                "users": [{"name": "u", "user": {"token": "token-1"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    configuration = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(str(kubeconfig), client_configuration=configuration)
    kube = KubeApi(configuration)
    try:
        yield kube, seen, answers
    finally:
        await kube.close()
        await runner.cleanup()


STATUS_PATH = "/proxy/apis/aks.gitops.dev/v1alpha1/namespaces/team/runcommands/run/status"


async def test_a_status_patch_is_conditional_and_returns_the_object(
    api: tuple[KubeApi, list[dict[str, Any]], dict[str, Any]],
) -> None:
    kube, seen, answers = api
    answers[f"PATCH {STATUS_PATH}"] = (200, {"metadata": {"resourceVersion": "8"}})
    written = await kube.patch_status(REF, {"state": "Running", "gone": None}, "7")
    assert written == {"metadata": {"resourceVersion": "8"}}
    (request,) = seen
    assert request["headers"]["Content-Type"] == "application/merge-patch+json"
    assert request["headers"]["Authorization"] == "Bearer token-1"
    assert request["body"] == {
        "metadata": {"uid": "uid-1", "resourceVersion": "7"},
        "status": {"state": "Running", "gone": None},
    }


async def test_answers_become_data_or_classified_errors(
    api: tuple[KubeApi, list[dict[str, Any]], dict[str, Any]],
) -> None:
    kube, _, answers = api
    assert await kube.patch_status(REF, {}, "7") is None  # 404: the object is gone
    assert await kube.read_secret("team", "absent") is None
    answers[f"PATCH {STATUS_PATH}"] = (409, {"message": "the object has been modified"})
    with pytest.raises(Conflict):
        await kube.patch_status(REF, {}, "7")
    answers[f"PATCH {STATUS_PATH}"] = (503, {"message": "etcd is restarting"})
    with pytest.raises(ApiError, match="etcd is restarting") as unavailable:
        await kube.patch_status(REF, {}, "7")
    assert transient(unavailable.value)
    answers[f"PATCH {STATUS_PATH}"] = (403, {"message": "forbidden", "reason": "Forbidden"})
    with pytest.raises(ApiError) as forbidden:
        await kube.patch_status(REF, {}, "7")
    assert not transient(forbidden.value)
    # One error shape: the Status body's reason is the code, and the status classifies it.
    assert (forbidden.value.code, forbidden.value.message) == ("Forbidden", "forbidden")
    assert forbidden.value.classification is Classification.FINAL
    assert (unavailable.value.code, unavailable.value.retryable) == ("Http503", True)


async def test_a_label_selector_and_a_secret_are_read_as_sent(
    api: tuple[KubeApi, list[dict[str, Any]], dict[str, Any]],
) -> None:
    kube, seen, answers = api
    answers["GET /proxy/api/v1/namespaces/team/secrets/creds"] = (
        200, {"metadata": {"resourceVersion": "3"}, "data": {"k": "dmFsdWU="}},
    )  # fmt: skip
    answers["GET /proxy/apis/aks.gitops.dev/v1alpha1/namespaces/team/runcommands"] = (
        200, {"items": [{"metadata": {"name": "child"}}]},
    )  # fmt: skip
    found = await kube.read_secret("team", "creds")
    assert found is not None and found.data == {"k": b"value"} and found.resource_version == "3"
    children = await kube.list_runcommands("team", "aks.gitops.dev/set=s")
    assert [c["metadata"]["name"] for c in children] == ["child"]
    assert seen[-1]["query"] == {"labelSelector": "aks.gitops.dev/set=s"}


async def test_an_unreachable_api_server_is_transient() -> None:
    configuration = kubernetes.client.Configuration()
    configuration.host = "http://127.0.0.1:9"  # discard: nothing listens
    kube = KubeApi(configuration)
    try:
        with pytest.raises(Exception) as raised:
            await kube.read_secret("team", "creds")
        assert transient(raised.value)
    finally:
        await kube.close()
