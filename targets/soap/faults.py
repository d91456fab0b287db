"""SOAP fault codes of the library target, and how a client maps them back to the domain (no spyne import)."""

from __future__ import annotations

from typing import Final

from targets.core.errors import ErrorKind

__all__ = [
    "FAULT_CODES",
    "SOAP_ENV_PREFIX",
    "TNS",
    "VALIDATION_FAULT_CODES",
    "error_kind_for_fault",
    "local_fault_code",
]

# Target namespace of every element and type in wsdl/library.wsdl.
TNS: Final = "urn:library-bench:v1"

# spyne writes faultcode as a QName with this prefix bound to the SOAP 1.1 envelope namespace, so zeep's
# `Fault.code` reads e.g. "soap11env:Client.NotFound"; `local_fault_code` drops the prefix.
SOAP_ENV_PREFIX: Final = "soap11env"

# Domain error -> SOAP 1.1 faultcode (local part), the SOAP column of the error table in docs/ARCHITECTURE.md.
FAULT_CODES: Final[dict[ErrorKind, str]] = {
    ErrorKind.NOT_FOUND: "Client.NotFound",
    ErrorKind.INVALID_ARGUMENT: "Client.InvalidArgument",
    ErrorKind.ALREADY_EXISTS: "Client.AlreadyExists",
    ErrorKind.FAILED_PRECONDITION: "Client.FailedPrecondition",
    ErrorKind.INTERNAL: "Server",
    # Not the client's fault and not a bug: a service this one depends on did not answer (split topology).
    ErrorKind.UNAVAILABLE: "Server.Unavailable",
}

# Faults raised before the core is reached: the request is not a valid SOAP 1.1 message for this contract.
# They mean "InvalidArgument" to a client (the gRPC/REST targets refuse the same inputs while decoding).
# All travel with HTTP 500, as SOAP 1.1 prescribes for faults, except RequestNotAllowed (405).
VALIDATION_FAULT_CODES: Final = frozenset(
    {
        "Client.SchemaValidationError",  # XML Schema validation of the Body failed: wrong type, missing or
        #                                  unexpected element, xsi:nil on a required field, unknown operation
        "Client.XMLSyntaxError",  # not well-formed XML, or an encoding the parsers cannot read
        "Client.DTDForbidden",  # the document carries a DOCTYPE (refused before the XML tree is built)
        "Client.SoapError",  # not a SOAP 1.1 Envelope (SOAP 1.2, no Envelope, no or empty Body, a Fault)
        "Client.ResourceNotFound",  # the Body element is a schema type, not an operation (e.g. <Book>)
        "Client.RequestNotAllowed",  # not a POST with a Content-Type (HTTP 405)
        "Client.ValidationError",  # spyne's own value checks (not expected with schema validation on)
    }
)

_BY_CODE: Final = {code: kind for kind, code in FAULT_CODES.items()}


def local_fault_code(code: str | None) -> str:
    """`soap11env:Client.NotFound` -> `Client.NotFound` (the prefix is the server's choice, not the code)."""
    if not code:
        return ""
    return code.rpartition(":")[2]


def error_kind_for_fault(code: str | None) -> ErrorKind:
    """The domain error a fault code means: validation faults are InvalidArgument, unknown ones Internal."""
    local = local_fault_code(code)
    kind = _BY_CODE.get(local)
    if kind is not None:
        return kind
    if local in VALIDATION_FAULT_CODES or local == "Client" or local.startswith("Client."):
        return ErrorKind.INVALID_ARGUMENT
    return ErrorKind.INTERNAL
