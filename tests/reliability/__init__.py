"""Reliability tests (issue 6): faults injected into a real server, agents and database."""
