"""The OpenAPI document matches the service (issue 17 item 7), checked by reading it and by
schemathesis: every operation, a fixed seed, bounded examples, every check, 0 failures."""

from __future__ import annotations

import os

import pytest
from fastapi.testclient import TestClient

from fusionrec.serving import create_app
from fusionrec.serving.service import Service

schemathesis = pytest.importorskip("schemathesis")


@pytest.fixture
def app_and_key(settings, keys):
    svc = Service(settings)
    svc.reload()  # loaded before the first request: schemathesis' client skips the lifespan
    app = create_app(service=svc)
    yield app, keys[1]
    svc.close()


def test_document_describes_errors_security_and_bounds(app_and_key):
    app, _ = app_and_key
    doc = TestClient(app).get("/openapi.json").json()
    schemes = doc["components"]["securitySchemes"]
    assert {s["type"] for s in schemes.values()} == {"http", "apiKey"}
    rec = doc["paths"]["/v1/recommend"]["post"]
    assert {"400", "401", "403", "413", "422", "431"} <= set(rec["responses"])
    assert rec["security"]
    assert rec["responses"]["422"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/ValidationErrorBody"
    )
    body = doc["components"]["schemas"]["ValidationErrorBody"]
    assert body["properties"]["detail"]["type"] == "string"
    assert body["properties"]["errors"]["type"] == "array"
    assert doc["components"]["schemas"]["RecommendRequest"]["properties"]["k"]["maximum"] == 200
    k = next(
        p
        for p in doc["paths"]["/v1/items/{item_id}/similar"]["get"]["parameters"]
        if p["name"] == "k"
    )
    assert k["schema"]["maximum"] == 200
    assert "409" in doc["paths"]["/v1/admin/reload"]["post"]["responses"]
    assert "404" in doc["paths"]["/v1/items/{item_id}/similar"]["get"]["responses"]
    assert "security" not in doc["paths"]["/healthz"]["get"]


def test_every_422_body_fits_the_documented_schema(client):
    for r in (
        client.post("/v1/recommend", json={"user_id": ""}),
        client.post("/v1/recommend", json={"user_id": "u0", "k": 201}),
        client.get("/v1/items/a/similar?k=201"),
        client.post("/v1/recommend", content="{", headers={"Content-Type": "application/json"}),
    ):
        assert r.status_code == 422, r.text
        body = r.json()
        assert isinstance(body["detail"], str) and isinstance(body.get("errors", []), list)


def test_schemathesis_finds_no_failure(app_and_key):
    """Positive and negative cases for every operation (15 each by default, fixed seed), every
    check. ``FUSIONREC_SCHEMATHESIS_EXAMPLES=200`` runs a longer fuzz with the same test."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as fixed_seed
    from hypothesis.errors import Unsatisfiable

    examples = int(os.environ.get("FUSIONREC_SCHEMATHESIS_EXAMPLES", "15"))
    app, key = app_and_key
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    n_cases = 0
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) >= 9
    for op in operations:
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):

            @fixed_seed(20261203)
            @settings(
                max_examples=examples,
                deadline=None,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=op.as_strategy(generation_mode=mode))
            def run(case) -> None:
                nonlocal n_cases
                n_cases += 1
                case.call_and_validate(headers={"Authorization": f"Bearer {key}"})

            try:
                run()
            except Unsatisfiable:  # no parameters to break (healthz, readyz, metrics, models)
                assert mode is schemathesis.GenerationMode.NEGATIVE
            except Exception as e:  # collect every operation's failure, then report them all
                failures.append(f"{op.method.upper()} {op.path} [{mode.value}]: {str(e)[:1500]}")
    print(f"schemathesis: {n_cases} cases over {len(operations)} operations")
    assert n_cases > 10 * examples
    assert not failures, "\n\n".join(failures)
