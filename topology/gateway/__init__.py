"""The gateway (P) of the split topology: the public REST API and the web pages, in front of A and B."""
