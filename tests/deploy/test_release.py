"""The release binary run as the container runs it: from an empty directory,
configured by environment only. Health, pages and assets are served; SIGTERM
closes every client with 1001 and the process exits 0 within 10 s; the
connection cap answers 503 and spares the others; /metrics parses as
Prometheus/OpenMetrics text; JSON logs never carry message text."""

import asyncio
import json
import time
import urllib.error
import urllib.request

import pytest
import websockets
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from conftest import WAIT_SECONDS


def get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=WAIT_SECONDS) as response:
            return response.status, lowercase(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, lowercase(error.headers), error.read()


def lowercase(headers) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


async def receive(ws, wanted: str) -> dict:
    """The next server message of type `wanted`, skipping others."""
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), WAIT_SECONDS))
        if message["type"] == wanted:
            return message


async def member(server, name: str, room: str):
    ws = await websockets.connect(f"{server.ws}?name={name}")
    assert (await receive(ws, "welcome"))["name"] == name
    await ws.send(json.dumps({"type": "join", "room": room}))
    await receive(ws, "joined")
    return ws


def test_serves_health_pages_and_assets_from_an_empty_directory(start_server):
    server = start_server()
    assert get(f"{server.http}/healthz")[::2] == (200, b'{"status":"ok"}')
    status, headers, body = get(f"{server.http}/")
    assert status == 200 and b"<html" in body.lower()
    assert "script-src 'self'" in headers["content-security-policy"]
    status, headers, body = get(f"{server.http}/rooms/general")
    assert status == 200 and b"general" in body
    status, headers, body = get(f"{server.http}/assets/charla.css")
    assert status == 200 and headers["content-type"].startswith("text/css") and body
    assert server.stop() == 0


def test_sigterm_closes_every_client_with_1001_and_exits_0_within_10_s(start_server):
    server = start_server()

    async def scenario():
        clients = [await member(server, f"user{n}", "lobby") for n in range(5)]
        await clients[0].send(json.dumps({"type": "say", "room": "lobby", "text": "bye"}))
        for ws in clients:
            await receive(ws, "message")
        started = time.monotonic()
        server.process.terminate()  # SIGTERM, as a platform sends on restart
        codes = []
        for ws in clients:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(ws.recv(), WAIT_SECONDS)
            codes.append(closed.value.rcvd.code if closed.value.rcvd else None)
        exit_code = await asyncio.to_thread(server.process.wait, WAIT_SECONDS)
        return codes, exit_code, time.monotonic() - started

    codes, exit_code, elapsed = asyncio.run(scenario())
    assert codes == [1001] * 5
    assert exit_code == 0
    assert elapsed < 10, f"took {elapsed:.1f} s"


def test_the_connection_cap_answers_503_and_keeps_the_others(start_server):
    server = start_server(CHARLA_MAX_CONNECTIONS=2)

    async def scenario():
        first = await member(server, "one", "cap")
        second = await member(server, "two", "cap")
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(f"{server.ws}?name=three")
        response = refused.value.response
        for ws, ref in [(first, "a"), (second, "b")]:
            await ws.send(json.dumps({"type": "ping", "ref": ref}))
            assert (await receive(ws, "pong"))["ref"] == ref
        await first.close()
        await second.close()
        return response.status_code, response.headers.get("Retry-After")

    assert asyncio.run(scenario()) == (503, "5")
    assert server.stop() == 0


def test_metrics_parse_as_openmetrics_text(start_server):
    server = start_server()

    async def scenario():
        ws = await member(server, "ana", "metrics")
        await ws.send(json.dumps({"type": "say", "room": "metrics", "text": "counted"}))
        await receive(ws, "message")
        await ws.send(json.dumps({"type": "say", "room": "elsewhere", "text": "refused"}))
        await receive(ws, "error")
        status, headers, body = get(f"{server.http}/metrics")
        await ws.close()
        return status, headers, body.decode()

    status, headers, text = asyncio.run(scenario())
    assert status == 200
    assert headers["content-type"].startswith("application/openmetrics-text")
    families = {family.name: family for family in text_string_to_metric_families(text)}
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in families.values()
        for sample in family.samples
    }
    assert families["charla_connections"].type == "gauge"
    assert families["charla_rooms"].type == "gauge"
    assert families["charla_messages"].type == "counter"
    assert families["charla_fanout_seconds"].type == "histogram"
    assert samples[("charla_connections", ())] == 1
    assert samples[("charla_messages_total", ())] == 1
    assert samples[("charla_deliveries_total", ())] == 1
    assert samples[("charla_errors_total", (("code", "not_joined"),))] == 1
    assert samples[("charla_fanout_seconds_count", ())] == 1
    for name in ["charla_slow_consumers", "charla_rate_limited"]:
        assert families[name].type == "counter"
    server.stop()


def test_json_logs_carry_spans_and_never_message_text(start_server):
    server = start_server()
    secret = "the-secret-text-7f3a"

    async def scenario():
        ws = await member(server, "ana", "private")
        await ws.send(json.dumps({"type": "say", "room": "private", "text": secret}))
        await receive(ws, "message")
        await ws.close()

    asyncio.run(scenario())
    get(f"{server.http}/healthz")
    assert server.stop() == 0
    assert server.logs, "the server logged"
    assert all(isinstance(line, dict) for line in server.logs), "every line is a JSON object"
    raw = json.dumps(server.logs)
    assert secret not in raw, "message text never reaches the logs at info level"
    assert any(line.get("span", {}).get("name") == "session" for line in server.logs)
    requests = [line for line in server.logs if line.get("span", {}).get("name") == "HTTP request"]
    assert any(line["span"].get("http.route") == "/healthz" for line in requests), requests
