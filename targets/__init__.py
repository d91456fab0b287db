"""The library service and its protocol adapters (gRPC, REST, SOAP); `python -m targets serve` starts one."""
