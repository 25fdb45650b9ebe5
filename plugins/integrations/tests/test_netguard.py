"""The SSRF guard (trellis.netguard) that every outgoing call of the plugin uses:
refused addresses, the admin's allow-list, DNS pinning, and webhook URLs refused
when saved.  Nothing here connects anywhere but 127.0.0.1."""

from __future__ import annotations

import socket

import pytest

from trellis import netguard

from integrations_testkit import allow_loopback, receiver  # noqa: F401

REFUSED = [
    ("http://10.1.2.3/hook", "private"),
    ("http://172.16.0.1/", "private"),
    ("http://192.168.1.10:8080/", "private"),
    ("http://100.64.0.1/", "private"),            # carrier-grade NAT
    ("http://127.0.0.1:5000/", "loopback"),
    ("http://127.8.9.10/", "loopback"),
    ("http://localhost/", "loopback"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),   # cloud metadata
    ("http://[::1]/", "loopback"),
    ("http://[fe80::1]/", "link-local"),
    ("http://[fc00::5]/", "private"),
    ("http://[::ffff:10.0.0.1]/", "private"),     # IPv4-mapped IPv6
    ("http://[::ffff:127.0.0.1]/", "loopback"),
    ("http://[64:ff9b::a00:1]/", "private"),      # NAT64 of 10.0.0.1
    ("http://[2002:a00:1::]/", "private"),        # 6to4 of 10.0.0.1
    ("http://0.0.0.0/", "unspecified"),
    ("http://224.0.0.1/", "multicast"),
    ("http://240.0.0.1/", "reserved"),
]


@pytest.mark.parametrize("url,what", REFUSED, ids=[u for u, _ in REFUSED])
def test_internal_addresses_are_refused(url, what):
    with pytest.raises(netguard.BlockedTarget, match=what):
        netguard.check_url(url, allowed=[])


def test_bad_urls_are_refused():
    for url, message in [("ftp://example.com/", "Only http"), ("http:///x", "no host"),
                         ("http://user:pw@example.com/", "credentials"),
                         ("http://example.com:99999/", "Not a valid URL"),
                         ("javascript:alert(1)", "Only http")]:
        with pytest.raises(netguard.BlockedTarget, match=message):
            netguard.check_syntax(url)


def test_the_allow_list_lets_named_networks_through():
    loopback = netguard.parse_networks("127.0.0.0/8, ::1")
    assert netguard.check_url("http://127.0.0.1:8000/", allowed=loopback) == "127.0.0.1"
    assert netguard.check_url("http://[::1]:8000/", allowed=loopback) == "::1"
    with pytest.raises(netguard.BlockedTarget):  # only what is listed
        netguard.check_url("http://10.0.0.1/", allowed=loopback)
    with pytest.raises(netguard.BlockedTarget):  # the mapped form needs its v4 network
        netguard.check_url("http://[::ffff:10.0.0.1]/", allowed=netguard.parse_networks("::/0"))
    with pytest.raises(ValueError, match="'10.0.0.300'"):
        netguard.parse_networks("10.0.0.300")


def test_a_host_with_any_internal_address_is_refused(monkeypatch):
    def resolve(host, port, *args, **kwargs):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    with pytest.raises(netguard.BlockedTarget, match="10.0.0.7 is a private"):
        netguard.check_url("http://mixed.example/", allowed=[])


def test_the_checked_address_is_the_one_connected_to(monkeypatch, receiver):
    """DNS rebinding: the name is resolved once; a second answer (here an internal
    address) is never used, because the request connects to the checked address."""
    answers = ["127.0.0.1", "10.9.9.9"]
    calls = []
    real = socket.getaddrinfo

    def resolve(host, port, *args, **kwargs):
        if host == "rebind.test":
            calls.append(host)
            address = answers.pop(0)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    port = receiver.server.server_port
    answer = netguard.request("POST", f"http://rebind.test:{port}/hook", body="{}",
                              allowed=netguard.parse_networks("127.0.0.0/8"))
    assert answer.status == 200 and answer.address == "127.0.0.1"
    assert calls == ["rebind.test"]
    assert receiver.requests[0]["headers"]["Host"] == f"rebind.test:{port}"


def test_the_core_setting_is_the_admins_switch(trellis_app_factory, api_login, receiver):
    app = trellis_app_factory(plugins=["integrations"])
    client = app.test_client()
    headers = api_login(client)
    # saving a webhook to an internal literal address is refused with a field error
    for url in ("http://127.0.0.1:9/x", "http://[::ffff:192.168.0.1]/", "http://localhost/"):
        answer = client.post("/api/v1/webhook/", headers=headers,
                             json={"name": "Inside", "url": url})
        assert answer.status_code == 400, url
        assert "allowed_private_networks" in answer.get_json()["message"]["url"][0]
    with app.app_context():
        with pytest.raises(netguard.BlockedTarget):
            netguard.request("POST", receiver.url)
    allow_loopback(app)
    ok = client.post("/api/v1/webhook/", headers=headers,
                     json={"name": "Local", "url": receiver.url})
    assert ok.status_code == 201
    with app.app_context():
        assert netguard.request("POST", receiver.url, body="{}").status == 200
    bad = client.put("/api/v1/settings/core", headers=headers,
                     json={"allowed_private_networks": "10.0.0.0/33"})
    assert bad.status_code == 400
    assert "allowed_private_networks" in bad.get_json()["message"]
