"""`bench codegen`: files generated from the contracts (proto/, the SOAP service)."""
