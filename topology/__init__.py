"""The split topology: a REST gateway in front of a books service and a circulation service (see
docs/ARCHITECTURE.md, "The split topology"); the inter-service protocol is chosen at start-up."""
