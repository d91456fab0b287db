"""The harness-side launcher: three processes with their pids and CPUs, counting relays on every hop."""

from __future__ import annotations

import os

import pytest

from bench.clients import make_client
from tests.topology.conftest import BACKEND_PROTOCOLS, StartTopology
from topology.launch import HOPS


@pytest.mark.parametrize("backend", BACKEND_PROTOCOLS)
def test_relays_count_the_bytes_of_each_hop(backend: str, start_topology: StartTopology) -> None:
    topology = start_topology(backend, wiretap=True)
    assert set(topology.taps) == set(HOPS)
    client = make_client("rest-lean", topology.address)
    try:
        client.get_book(1)
        after_read = topology.hop_bytes()
        assert all(sent > 0 and received > 0 for sent, received in (after_read["gateway->books"],))
        loan = client.create_loan(1, 3)
        after_loan = topology.hop_bytes()
        client.return_loan(loan.id)
        topology.restart("books")  # the relay's upstream is the same port: it keeps counting
        client.get_book(1)
    finally:
        client.close()
    final = topology.hop_bytes()
    # B calls A only for the loan (reserve) and its return (release), never for the book read
    assert after_read["circulation->books"] == (0, 0)
    assert all(v > 0 for v in after_loan["circulation->books"])
    assert after_loan["gateway->books"] == after_read["gateway->books"], "a loan does not touch A directly"
    assert all(v > 0 for v in after_loan["gateway->circulation"])
    assert final["gateway->books"][0] > after_loan["gateway->books"][0]
    # the gateway and B really are behind the relays: their addresses are the relays'
    assert (
        topology.gateway.argv[topology.gateway.argv.index("--books") + 1]
        == topology.taps["gateway->books"].address
    )


def test_each_process_runs_on_the_cpus_it_was_given(start_topology: StartTopology) -> None:
    cpus = sorted(os.sched_getaffinity(0))
    placement = {"gateway": cpus[0], "books": cpus[-1], "circulation": cpus[-1]}
    topology = start_topology("rest", placement=",".join(f"{r}={c}" for r, c in placement.items()))
    assert len(set(topology.pids.values())) == 3
    for role, pid in topology.pids.items():
        assert os.sched_getaffinity(pid) == {placement[role]}, role
    one = start_topology("grpc", cpu=cpus[-1])
    assert all(os.sched_getaffinity(pid) == {cpus[-1]} for pid in one.pids.values())
