"""REST target: FastAPI on uvicorn, streams as NDJSON, errors as RFC 9457 problem+json."""

# Modules: `wire` (the JSON wire format; clients import it, and it needs neither FastAPI nor uvicorn),
# `schemas` (pydantic models), `decoding`, `responses`, `problems` (error mapping), `middleware` (body limit),
# `app` (`create_app`) and `server` (`serve`, run by `python -m targets serve rest`). Nothing is imported
# here, so that importing `targets.rest.wire` stays light.
