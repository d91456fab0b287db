"""SOAP 1.1 target (spyne on cheroot): `server.serve`, the contract in `wsdl`, fault codes in `faults`."""

# Only the spyne-free fault table is re-exported: clients import it without pulling in spyne (`bench codegen`
# imports targets.soap.wsdl, which does).
from targets.soap.faults import (
    FAULT_CODES,
    TNS,
    VALIDATION_FAULT_CODES,
    error_kind_for_fault,
    local_fault_code,
)

__all__ = ["FAULT_CODES", "TNS", "VALIDATION_FAULT_CODES", "error_kind_for_fault", "local_fault_code"]
