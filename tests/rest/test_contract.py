"""The published OpenAPI document is exact: it validates, states the core's rules, and admits no request the
target refuses (requests generated from the served schema, the way a generated client builds them, sent to a
real target)."""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from targets.core import LIMITS
from targets.rest.app import ITEM_SCHEMA_EXTENSION
from tests.rest.conftest import RestProcess

NDJSON = "application/x-ndjson"
_serials = itertools.count(1)


@pytest.fixture(scope="module")
def spec(rest_target: RestProcess) -> dict[str, Any]:
    document: dict[str, Any] = httpx.get(f"{rest_target.url}/openapi.json", timeout=10).json()
    return document


def operation(spec: dict[str, Any], operation_id: str) -> dict[str, Any]:
    for item in spec["paths"].values():
        for op in item.values():
            if op.get("operationId") == operation_id:
                return dict(op)
    raise AssertionError(f"no operation {operation_id}")


def component(spec: dict[str, Any], name: str) -> dict[str, Any]:
    return dict(spec["components"]["schemas"][name])


# ---- the document ---------------------------------------------------------------------------------------
def test_openapi_validates_against_the_version_it_declares(spec: dict[str, Any]) -> None:
    assert spec["openapi"] == "3.1.0"
    validate(spec)  # picks the validator from the `openapi` field
    # The check has teeth: a 3.2 keyword in a 3.1 document (what the NDJSON media types used to carry) fails.
    broken = copy.deepcopy(spec)
    media = broken["paths"]["/books:bulk"]["post"]["requestBody"]["content"][NDJSON]
    media["itemSchema"] = media.pop(ITEM_SCHEMA_EXTENSION)
    with pytest.raises(OpenAPIValidationError):
        validate(broken)


def test_the_validation_rules_are_published(spec: dict[str, Any]) -> None:
    book = component(spec, "AddBookRequest")["properties"]
    assert (book["year"]["minimum"], book["year"]["maximum"]) == (LIMITS["year_min"], LIMITS["year_max"])
    assert (book["copies"]["minimum"], book["copies"]["maximum"]) == (0, LIMITS["copies_max"])
    assert book["title"]["maxLength"] == LIMITS["title_max"] and book["title"]["minLength"] == 1
    assert book["isbn"]["format"] == "isbn" and "pattern" in book["isbn"]
    user = component(spec, "AddUserRequest")["properties"]
    assert user["email"]["maxLength"] == LIMITS["email_max"] and "pattern" in user["email"]
    loan = component(spec, "CreateLoanRequest")["properties"]
    assert (loan["days"]["minimum"], loan["days"]["maximum"]) == (1, 365)
    assert loan["user_id"]["minimum"] == 1
    update = component(spec, "StatusUpdateRequest")["properties"]
    assert update["status"]["enum"] == ["OVERDUE", "LOST", "RETURNED"]
    category = operation(spec, "ListBooksByCategory")["parameters"][0]["schema"]
    assert category["maxLength"] == LIMITS["category_max"] and "pattern" in category


def test_an_empty_ndjson_body_is_optional_in_the_contract_and_accepted(
    spec: dict[str, Any], rest_target: RestProcess
) -> None:
    for name in ("BulkAddBooks", "UpdateLoanStatus"):
        body = operation(spec, name)["requestBody"]
        assert body["required"] is False and "empty" in body["description"], name
    with httpx.Client(base_url=rest_target.url, timeout=10) as http:
        added = http.post("/books:bulk", content=b"", headers={"content-type": NDJSON})
        assert (added.status_code, added.json()) == (201, {"added": 0, "ids": []})
        updated = http.post("/loans/status", content=b"")
        assert (updated.status_code, updated.content) == (200, b"")


@pytest.mark.parametrize("method", ["GET", "OPTIONS", "HEAD", "PUT"])
def test_a_fixed_path_is_never_taken_for_an_id(rest_target: RestProcess, method: str) -> None:
    """/loans/status is POST only; /loans/{loan_id} must not answer it ("loan_id must be an integer")."""
    with httpx.Client(base_url=rest_target.url, timeout=10) as http:
        response = http.request(method, "/loans/status")
        assert response.status_code == 405
        assert response.headers["allow"] == "POST"
        assert http.get("/loans/overdue").status_code == 200
        assert http.get("/loans/1").json()["id"] == 1
        assert http.get("/loans/statuses").status_code == 422  # any other segment is still an id


# ---- schema-valid requests are accepted -----------------------------------------------------------------
def _isbn_digits(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        body = "979" + f"{next(_serials) + 500_000:09d}"  # unique: never a duplicate of another example
        total = sum(int(d) * (1 if i % 2 == 0 else 3) for i, d in enumerate(body))
        return body + str((10 - total % 10) % 10)
    body = f"{next(_serials) + 800_000_000:09d}"
    check = (11 - sum((10 - i) * int(d) for i, d in enumerate(body)) % 11) % 11
    return body + ("X" if check == 10 else str(check)) if draw(st.booleans()) or check != 10 else body + "x"


@st.composite
def isbns(draw: st.DrawFn) -> str:
    """The `isbn` format: an ISBN-10 or -13 with its check digit, hyphens and spaces anywhere."""
    separators = st.text(alphabet="- ", max_size=2)
    return "".join(draw(separators) + ch for ch in _isbn_digits(draw)) + draw(separators)


FORMATS = {"isbn": isbns()}
# Keywords that only describe; every other keyword of a property must be understood by `from_schema`, so a
# rule added to the document later cannot be silently ignored by this test.
_ANNOTATIONS = {"title", "description", "examples", "default"}


def from_schema(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values valid against one flat schema of this document (objects of strings, integers and enums)."""
    keywords = set(schema) - _ANNOTATIONS
    if "enum" in schema:
        assert keywords <= {"enum", "type"}, schema
        return st.sampled_from(schema["enum"])
    if schema.get("type") == "object":
        assert keywords <= {"type", "properties", "required", "additionalProperties"}, schema
        assert schema.get("additionalProperties") is False
        required = set(schema.get("required", ()))
        fields = {name: from_schema(sub) for name, sub in schema["properties"].items()}
        optional = {name: fields.pop(name) for name in list(fields) if name not in required}
        return st.fixed_dictionaries(fields, optional=optional)
    if schema.get("type") == "integer":
        assert keywords <= {"type", "minimum", "maximum"}, schema
        return st.integers(schema.get("minimum"), schema.get("maximum"))
    assert schema.get("type") == "string", schema
    assert keywords <= {"type", "minLength", "maxLength", "pattern", "format"}, schema
    pattern = schema.get("pattern", ".*")
    if "format" in schema:
        strategy = FORMATS[schema["format"]].filter(lambda text: re.fullmatch(pattern, text) is not None)
    else:
        strategy = st.from_regex(pattern, fullmatch=True)
    low, high = schema.get("minLength", 0), schema.get("maxLength", 10**9)
    return strategy.filter(lambda text: low <= len(text) <= high)


EXAMPLES = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
)
REFUSED = {400, 413, 422}


@pytest.fixture(scope="module")
def http(rest_target: RestProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=rest_target.url, timeout=10) as client:
        yield client


def _assert_accepted(response: httpx.Response, sent: object) -> None:
    assert response.status_code not in REFUSED, f"schema-valid {sent!r} refused: {response.text}"
    assert response.status_code < 500, response.text


def test_schema_valid_requests_are_never_refused(spec: dict[str, Any], http: httpx.Client) -> None:
    strategies = {
        name: from_schema(component(spec, name))
        for name in ("AddBookRequest", "AddUserRequest", "CreateLoanRequest", "StatusUpdateRequest")
    }
    category = from_schema(operation(spec, "ListBooksByCategory")["parameters"][0]["schema"])
    book_id = from_schema(operation(spec, "GetBook")["parameters"][0]["schema"])

    @EXAMPLES
    @given(
        book=strategies["AddBookRequest"],
        user=strategies["AddUserRequest"],
        loan=strategies["CreateLoanRequest"],
        lines=st.lists(strategies["AddBookRequest"], max_size=3),
        updates=st.lists(strategies["StatusUpdateRequest"], max_size=3),
        category=category,
        book_id=book_id,
    )
    def check(
        book: dict[str, Any],
        user: dict[str, Any],
        loan: dict[str, Any],
        lines: list[dict[str, Any]],
        updates: list[dict[str, Any]],
        category: str,
        book_id: int,
    ) -> None:
        # 404 (no such record) and 409 (a duplicate, no copy left) are answers about the state, not refusals.
        _assert_accepted(http.post("/books", content=orjson.dumps(book)), book)
        _assert_accepted(http.post("/users", content=orjson.dumps(user)), user)
        _assert_accepted(http.post("/loans", content=orjson.dumps(loan)), loan)
        body = b"".join(orjson.dumps(line) + b"\n" for line in lines)
        _assert_accepted(http.post("/books:bulk", content=body), lines)
        body = b"".join(orjson.dumps(update) + b"\n" for update in updates)
        _assert_accepted(http.post("/loans/status", content=body), updates)
        _assert_accepted(http.get("/books", params={"category": category}), category)
        _assert_accepted(http.get(f"/books/{book_id}"), book_id)

    check()
