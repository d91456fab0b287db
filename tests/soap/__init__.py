"""Tests of the SOAP target (spyne on cheroot), always against a real server process."""
