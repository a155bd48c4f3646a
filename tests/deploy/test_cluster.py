"""Many nodes on one Redis (issue 10): release binaries started with
`CHARLA_REDIS_URL` on a `redis-server` of the test's own
(docs/protocol.md, "Many nodes (Redis)", rules 41 and 42).

- Members on three nodes chat: one order per room, ids contiguous across
  nodes, each message exactly once, one `ack` per `ref`, ack first.
- `joined.members`, `presence` counts, `/api/rooms`, `rooms` events and
  `charla_cluster_nodes` agree on every node.
- Resume on the other node with `after` and `epoch`: no gap, no duplicate.
- A `ref` resent through the other node gets the original id.
- A node killed with SIGKILL: its members leave on the others (heartbeat);
  a node stopped with SIGTERM: at once.
- Redis stopped mid-traffic and restarted on its data: `unavailable`,
  `/healthz` 503, then recovery with every acked message once, ids
  contiguous.
- Redis unreachable at start, and a TLS Redis with a self-signed
  certificate: start-up refusals that name the URL without its password.

Every wait is for an event (or a bounded poll of an HTTP answer); a failed
wait reports the events the client had received (its trace)."""

import asyncio
import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request

import pytest
import websockets
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from conftest import WAIT_SECONDS, RedisTls, free_port

ROOM = "cluster"
TOKEN = "cluster-test-token"
# Flood control off and room for a burst in each outbox: the tests send
# bursts on purpose.
UNLIMITED = {"CHARLA_MSG_RATE": "0", "CHARLA_OUTBOX_FRAMES": "4096"}
# Messages each of two senders sends at once in the ordering test.
BURST = 200
# Longest wait for a burst to reach every member.
BURST_SECONDS = 60
# A node killed without a word: its members leave within 5 s (rule 41);
# the test allows twice that.
DEAD_NODE_SECONDS = 10
# A node stopped with SIGTERM removes its members at once.
STOPPED_NODE_SECONDS = 2
# After the closing handshake, drop the TCP connection this soon (as in
# test_durability.py).
CLOSE_SECONDS = 0.05
# Events shown when a wait fails.
TRACE_EVENTS = 25


# --- HTTP ---------------------------------------------------------------


def request(url: str, body: dict | None = None) -> tuple[int, dict]:
    """GET (or POST `body` with the API token): the status and the JSON answer."""
    data, headers = None, {}
    if body is not None:
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, data=data, headers=headers), timeout=WAIT_SECONDS
        ) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def health(node) -> tuple[int, dict]:
    return request(f"{node.http}/healthz")


def directory(node) -> tuple[int, dict]:
    return request(f"{node.http}/api/rooms")


def post(node, text: str) -> tuple[int, dict]:
    return request(f"{node.http}/api/rooms/{ROOM}/messages", {"from": "bot", "text": text})


def stored(node) -> list[dict]:
    """The room's whole history over HTTP, page after page (200 at most each)."""
    messages: list[dict] = []
    while True:
        after = messages[-1]["id"] if messages else 0
        status, answer = request(f"{node.http}/api/rooms/{ROOM}/messages?after={after}&limit=200")
        assert status == 200, answer
        if not answer["messages"]:
            return messages
        messages += answer["messages"]


def cluster_nodes(node) -> float | None:
    """`charla_cluster_nodes` from /metrics."""
    with urllib.request.urlopen(f"{node.http}/metrics", timeout=WAIT_SECONDS) as response:
        text = response.read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "charla_cluster_nodes":
                return sample.value
    return None


def poll(read, done, seconds: float = WAIT_SECONDS):
    """Calls `read()` until `done(value)` or `seconds` have passed; the last
    value (the caller asserts on it, so a timeout shows what was seen)."""
    deadline = time.monotonic() + seconds
    while not done(value := read()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return value


def members_listed(node, count: int) -> None:
    """Waits until `node`'s /api/rooms lists the room with `count` members.

    A node answers `joined` before Redis has the new member, so a join on
    another node right after may not list it yet (the spec: the lists agree
    "once events have propagated"); tests that join across nodes wait for
    this first."""
    room = [{"name": ROOM, "members": count}]
    listed = poll(
        lambda: directory(node),
        lambda answer: [{"name": r["name"], "members": r["members"]} for r in answer[1]["rooms"]] == room,
    )
    assert [(r["name"], r["members"]) for r in listed[1]["rooms"]] == [(ROOM, count)], listed


def poll_all(nodes, read, done, seconds: float = WAIT_SECONDS) -> list:
    """`poll` until `done` holds for every node's answer at the same time."""
    return poll(lambda: [read(node) for node in nodes], lambda values: all(map(done, values)), seconds)


# --- WebSocket ----------------------------------------------------------


class Peer:
    """One WebSocket connection to one node; keeps every event it received
    (its trace, shown when a wait fails)."""

    def __init__(self, ws, label: str):
        self.ws = ws
        self.label = label
        self.events: list[dict] = []
        self.session = ""
        self.member: dict = {}

    @classmethod
    async def connect(cls, node, name: str) -> "Peer":
        ws = await websockets.connect(
            f"{node.ws}?name={name}", max_queue=None, close_timeout=CLOSE_SECONDS
        )
        peer = cls(ws, f"{name} on :{node.port}")
        welcome = (await peer.until(lambda e: True, "welcome"))[1]
        assert welcome["type"] == "welcome", peer.trace()
        peer.session = welcome["session"]
        peer.member = {"id": welcome["session"], "name": name}
        return peer

    def trace(self, last: int = TRACE_EVENTS, around: dict | None = None) -> str:
        """The last events received, or those `around` one of them."""
        end = len(self.events)
        if around is not None:
            end = min(end, next(i for i, e in enumerate(self.events) if e is around) + last // 2)
        first = max(0, end - last)
        lines = [
            f"#{first + n} {json.dumps(event, ensure_ascii=False)}"
            for n, event in enumerate(self.events[first:end])
        ]
        return "\n  ".join([f"{self.label}: {len(self.events)} events, these:", *lines])

    def disorder(self, messages: list[dict], first: int, last: int) -> str:
        """Where `messages` (events of this peer) stop being ids `first`..`last`
        in order, each once: the trace around that event."""
        for expected, message in zip(range(first, last + 1), messages):
            if message["id"] != expected:
                return f"message {expected} expected, got {message['id']}; {self.trace(around=message)}"
        return f"{len(messages)} messages for {last - first + 1} ids; {self.trace()}"

    async def send(self, **message) -> None:
        await self.ws.send(json.dumps(message))

    async def until(self, wanted, what: str, seconds: float = WAIT_SECONDS) -> tuple[list[dict], dict]:
        """Events up to the first one `wanted` accepts: (the ones before, that
        one). Fails with the trace if none comes within `seconds`."""
        before = []
        try:
            async with asyncio.timeout(seconds):
                while True:
                    event = json.loads(await self.ws.recv())
                    self.events.append(event)
                    if wanted(event):
                        return before, event
                    before.append(event)
        except TimeoutError:
            raise AssertionError(f"no {what} within {seconds} s; {self.trace()}") from None
        except websockets.ConnectionClosed as closed:
            raise AssertionError(f"closed ({closed}) while waiting for {what}; {self.trace()}") from None

    async def join(self, room: str = ROOM, **fields) -> dict:
        await self.send(type="join", room=room, **fields)
        return (await self.until(lambda e: e["type"] in ("joined", "error"), f"answer to join {room}"))[1]

    async def say(self, text: str, ref: str, room: str = ROOM) -> tuple[list[dict], dict]:
        """Sends a `say` and waits for its answer (`ack` or `error` with `ref`)."""
        await self.send(type="say", room=room, text=text, ref=ref)
        return await self.until(
            lambda e: e["type"] in ("ack", "error") and e.get("ref") == ref, f"answer to say {ref}"
        )

    async def message(self, what: str = "a message", seconds: float = WAIT_SECONDS) -> dict:
        """The next `message` event."""
        return (await self.until(lambda e: e["type"] == "message", what, seconds))[1]

    async def has_message(self, id_: int, seconds: float = WAIT_SECONDS) -> dict:
        """Message `id_`, received already or awaited now. (On another node a
        message comes through Redis, so a barrier alone does not wait for it.)"""
        for event in self.events:
            if event["type"] == "message" and event["id"] == id_:
                return event
        return (
            await self.until(lambda e: e["type"] == "message" and e["id"] == id_, f"message {id_}", seconds)
        )[1]

    async def barrier(self) -> list[dict]:
        """Every event the node's rooms sent before now (docs/protocol.md,
        rule 36: a `leave` of a room not joined is answered in order)."""
        await self.send(type="leave", room="barrier-nowhere", ref="barrier")
        before, answer = await self.until(lambda e: e.get("ref") == "barrier", "the barrier's answer")
        assert answer["code"] == "not_joined", answer
        return before

    async def close(self) -> None:
        await self.ws.close()


def messages_in(events: list[dict]) -> list[dict]:
    return [event for event in events if event["type"] == "message"]


def errors_in(events: list[dict]) -> list[dict]:
    """The `error` events, but for the barriers' answers."""
    return [event for event in events if event["type"] == "error" and event.get("ref") != "barrier"]


def ids(messages: list[dict]) -> list[int]:
    return [message["id"] for message in messages]


def records(events: list[dict]) -> list[dict]:
    """`message` events as the HTTP API gives them: without `type` (rule 17)."""
    return [{key: value for key, value in event.items() if key != "type"} for event in events]


def presence(event: str, peer: Peer) -> dict:
    """The `presence` event for `peer`, without its count."""
    return {"type": "presence", "room": ROOM, "event": event, "member": peer.member}


def by_name(*peers: Peer) -> list[dict]:
    """Members as `joined.members` lists them: by name, then id."""
    return sorted((peer.member for peer in peers), key=lambda m: (m["name"], m["id"]))


async def close_all(*peers: Peer) -> None:
    for peer in peers:
        await peer.close()


# --- One room across nodes -------------------------------------------------


def test_members_on_three_nodes_get_one_order_with_contiguous_ids(redis, start_nodes):
    a, b, c = start_nodes(redis, 3, **UNLIMITED)

    async def scenario():
        ana = await Peer.connect(a, "ana")
        bo = await Peer.connect(b, "bo")
        cy = await Peer.connect(c, "cy")
        for peer in (ana, bo, cy):
            joined = await peer.join()
            assert joined["type"] == "joined", peer.trace()

        # Both ways, one message at a time.
        _, ack = await ana.say("hola bo", "ana-hello")
        assert ack == {"type": "ack", "ref": "ana-hello", "room": ROOM, "id": 1}, ana.trace()
        own, seen = await ana.message("ana's copy"), await bo.message("ana's message")
        assert own == seen, (ana.trace(), bo.trace())
        assert (seen["id"], seen["from"], seen["text"]) == (1, ana.member, "hola bo"), bo.trace()
        _, ack = await bo.say("hola ana", "bo-hello")
        assert ack == {"type": "ack", "ref": "bo-hello", "room": ROOM, "id": 2}, bo.trace()
        own, seen = await bo.message("bo's copy"), await ana.message("bo's message")
        assert own == seen, (ana.trace(), bo.trace())
        assert (seen["id"], seen["from"], seen["text"]) == (2, bo.member, "hola ana"), ana.trace()

        # Then both at once, as fast as they can.
        last = 2 + 2 * BURST

        async def burst(peer: Peer) -> None:
            name = peer.member["name"]
            for n in range(BURST):
                await peer.send(type="say", room=ROOM, text=f"{name} {n}", ref=f"{name}-{n}")

        async def collect(peer: Peer) -> None:
            await peer.until(
                lambda e: e["type"] == "message" and e["id"] >= last,
                f"message {last}",
                BURST_SECONDS,
            )

        await asyncio.gather(burst(ana), burst(bo), collect(ana), collect(bo), collect(cy))
        # Something doubled would most likely come before the barrier's answer.
        for peer in (ana, bo, cy):
            await peer.barrier()
        history = {node.port: stored(node) for node in (a, b, c)}
        await close_all(ana, bo, cy)
        return ana, bo, cy, history, last

    ana, bo, cy, history, last = asyncio.run(scenario())

    # Every member joined before message 1 and got every message since.
    orders = {peer.label: messages_in(peer.events) for peer in (ana, bo, cy)}
    for peer in (ana, bo, cy):
        assert errors_in(peer.events) == [], peer.trace()
    # Every member's disorder at once, to tell who sees it.
    disorders = [
        peer.disorder(orders[peer.label], 1, last)
        for peer in (ana, bo, cy)
        if ids(orders[peer.label]) != list(range(1, last + 1))
    ]
    assert disorders == [], "ids in order, each once:\n" + "\n".join(disorders)
    everything = orders[cy.label]
    for peer in (ana, bo):
        assert orders[peer.label] == everything, f"{peer.label} and {cy.label} saw one order"
    sent = sorted(f"{name} {n}" for name in ("ana", "bo") for n in range(BURST))
    assert sorted(m["text"] for m in everything[2:]) == sent, "each message exactly once"

    for sender in (ana, bo):
        name = sender.member["name"]
        events = sender.events
        acks = [event for event in events if event["type"] == "ack" and not event["ref"].endswith("-hello")]
        assert [ack["ref"] for ack in acks] == [f"{name}-{n}" for n in range(BURST)], (
            "one ack per ref, in request order"
        )
        copies = {m["text"]: m for m in everything if m["from"] == sender.member}
        assert [copies[f"{name} {n}"]["id"] for n in range(BURST)] == [ack["id"] for ack in acks], (
            "each ack carries its message's id"
        )
        assert ids(acks) == sorted(ids(acks)), "a sender's messages keep its order"
        for ack in acks:
            copy = next(m for m in orders[sender.label] if m["id"] == ack["id"])
            assert events.index(ack) < events.index(copy), f"ack first (rule 20): {ack}"

    for port, messages in history.items():
        assert messages == records(everything), f"GET …/messages on :{port} holds the same messages"


def test_joined_members_presence_and_the_directory_agree_on_every_node(redis, start_nodes):
    a, b = start_nodes(redis, 2)

    async def scenario():
        ana = await Peer.connect(a, "ana")
        joined = await ana.join()
        assert joined["members"] == [ana.member], ana.trace()

        await asyncio.to_thread(members_listed, b, 1)
        bo = await Peer.connect(b, "bo")
        joined = await bo.join()
        assert joined["members"] == by_name(ana, bo), bo.trace()
        arrival = (await ana.until(lambda e: e["type"] == "presence", "bo's join"))[1]
        assert arrival == {**presence("join", bo), "count": 2}, ana.trace()

        cy = await Peer.connect(a, "cy")
        joined = await cy.join()
        assert joined["members"] == by_name(ana, bo, cy), cy.trace()
        for peer in (ana, bo):
            arrival = (await peer.until(lambda e: e["type"] == "presence", "cy's join"))[1]
            assert arrival == {**presence("join", cy), "count": 3}, peer.trace()
        assert len({ana.session, bo.session, cy.session}) == 3, "session ids are unique across nodes"
        assert (await ana.say("hello", "r1"))[1]["id"] == 1, ana.trace()

        three = {"rooms": [{"name": ROOM, "members": 3, "last_id": 1}]}
        both = await asyncio.to_thread(poll_all, (a, b), directory, lambda answer: answer == (200, three))
        assert both == [(200, three)] * 2, "GET /api/rooms on A and on B"

        watcher = await Peer.connect(b, "dee")
        await watcher.send(type="watch_rooms")
        listed = (await watcher.until(lambda e: e["type"] == "rooms", "a rooms event"))[1]
        assert listed == {"type": "rooms", **three}, watcher.trace()

        await bo.send(type="leave", room=ROOM)
        assert (await bo.until(lambda e: e["type"] == "left", "left"))[1] == {"type": "left", "room": ROOM}
        for peer in (ana, cy):
            departure = (await peer.until(lambda e: e["type"] == "presence", "bo's leave"))[1]
            assert departure == {**presence("leave", bo), "count": 2}, peer.trace()
        two = {"rooms": [{"name": ROOM, "members": 2, "last_id": 1}]}
        both = await asyncio.to_thread(poll_all, (a, b), directory, lambda answer: answer == (200, two))
        assert both == [(200, two)] * 2, "GET /api/rooms on A and on B after bo left"
        # `rooms` events are coalesced to one a second (rule 33).
        listed = (await watcher.until(lambda e: e["type"] == "rooms" and e != listed, "a new rooms event"))[1]
        assert listed == {"type": "rooms", **two}, watcher.trace()

        counted = await asyncio.to_thread(poll_all, (a, b), cluster_nodes, lambda n: n == 2)
        assert counted == [2, 2], "charla_cluster_nodes on A and B"
        await close_all(ana, bo, cy, watcher)

    asyncio.run(scenario())


def test_a_client_resumes_on_the_other_node_without_gap_or_duplicate(redis, start_nodes):
    a, b = start_nodes(redis, 2, **UNLIMITED)
    k = 5

    async def scenario():
        ana = await Peer.connect(a, "ana")
        first = await ana.join()
        bo = await Peer.connect(b, "bo")
        joined = await bo.join()
        assert joined["epoch"] == first["epoch"], "one epoch per room, on every node"

        for n in range(1, k + 1):
            assert (await bo.say(f"before {n}", f"before-{n}"))[1]["id"] == n, bo.trace()
        await ana.has_message(k)
        assert ids(messages_in(ana.events)) == list(range(1, k + 1)), ana.trace()
        await ana.close()

        for n in range(k + 1, 2 * k + 1):
            assert (await bo.say(f"while away {n}", f"away-{n}"))[1]["id"] == n, bo.trace()
        await bo.has_message(2 * k)
        missed = [m for m in messages_in(bo.events) if m["id"] > k]

        back = await Peer.connect(b, "ana")
        resumed = await back.join(after=k, epoch=first["epoch"])
        assert resumed["type"] == "joined", back.trace()
        assert (resumed["epoch"], resumed["complete"]) == (first["epoch"], True), resumed
        assert ids(resumed["history"]) == list(range(k + 1, 2 * k + 1)), back.trace()
        assert resumed["history"] == missed, "the same records on both nodes"

        assert (await bo.say("live", "live"))[1]["id"] == 2 * k + 1, bo.trace()
        live = await back.message("the live message")
        tail = await back.barrier()
        await close_all(back, bo)
        return live, tail, back

    live, tail, back = asyncio.run(scenario())
    assert (live["id"], live["text"]) == (2 * k + 1, "live"), back.trace()
    assert messages_in(tail) == [], f"nothing after the live message; {back.trace()}"


def test_a_ref_resent_through_the_other_node_gets_the_original_id(redis, start_nodes):
    a, b = start_nodes(redis, 2)

    async def scenario():
        ana = await Peer.connect(a, "ana")
        await ana.join()
        bo = await Peer.connect(b, "bo")
        await bo.join()
        assert (await ana.say("first", "shared-ref"))[1]["id"] == 1, ana.trace()
        assert (await ana.say("second", "other-ref"))[1]["id"] == 2, ana.trace()
        await bo.has_message(2)

        # Ana's connection to A drops; she reconnects to B and resends.
        await ana.close()
        again = await Peer.connect(b, "ana")
        await again.join(after=2)
        before, resent = await again.say("first, resent", "shared-ref")
        assert resent == {"type": "ack", "ref": "shared-ref", "room": ROOM, "id": 1}, again.trace()
        assert messages_in(before) == [], again.trace()
        assert messages_in(await bo.barrier()) == [], f"a resend is not broadcast; {bo.trace()}"
        assert (await again.say("third", "new-ref"))[1]["id"] == 3, again.trace()
        await close_all(again, bo)

    asyncio.run(scenario())
    for node in (a, b):
        assert [(m["id"], m["text"]) for m in stored(node)] == [(1, "first"), (2, "second"), (3, "third")]


def test_history_is_trimmed_to_charla_history_on_every_node(redis, start_nodes):
    """Redis keeps each room's last `CHARLA_HISTORY` messages (say.lua trims
    in steps; every read stops at the limit): HTTP pages, `join` and a
    resume from before the window all see exactly the retained ones."""
    kept = 20
    a, b = start_nodes(
        redis, 2, CHARLA_API_TOKEN=TOKEN, CHARLA_HISTORY=str(kept), CHARLA_JOIN_HISTORY="10"
    )
    sent = 3 * 32 + 7  # past several trim steps, and not on one
    for n in range(1, sent + 1):
        status, answer = post((a, b)[n % 2], f"message {n}")
        assert (status, answer["id"]) == (201, n), answer
    retained = list(range(sent - kept + 1, sent + 1))
    for node in (a, b):
        assert ids(stored(node)) == retained, node.port
        status, newest = request(f"{node.http}/api/rooms/{ROOM}/messages?limit=200")
        assert (status, ids(newest["messages"])) == (200, retained), newest
        status, older = request(f"{node.http}/api/rooms/{ROOM}/messages?before={sent - 5}&limit=200")
        assert (status, ids(older["messages"])) == (200, retained[: kept - 6]), older

    async def scenario():
        ana = await Peer.connect(a, "ana")
        joined = await ana.join()
        assert (ids(joined["history"]), joined["complete"]) == (retained[-10:], True), ana.trace()
        bo = await Peer.connect(b, "bo")
        resumed = await bo.join(after=1, epoch=joined["epoch"])
        assert (ids(resumed["history"]), resumed["complete"]) == (retained, False), bo.trace()
        caught_up = await bo.join(room=ROOM + "-2", after=0)
        assert caught_up["history"] == [] and caught_up["complete"], bo.trace()
        await close_all(ana, bo)

    asyncio.run(scenario())


# --- Nodes that stop --------------------------------------------------------


async def wait_for_leaves(peer: Peer, leaving: list[Peer], seconds: float) -> tuple[list[dict], float]:
    """`presence` `leave` events on `peer` until every one of `leaving` has
    left; the events and the seconds it took."""
    started = time.monotonic()
    wanted = {p.session for p in leaving}
    gone: list[dict] = []

    def left(event: dict) -> bool:
        if event["type"] == "presence" and event["event"] == "leave":
            gone.append(event)
        return {e["member"]["id"] for e in gone} >= wanted

    await peer.until(left, f"leaves of {sorted(p.label for p in leaving)}", seconds)
    return gone, time.monotonic() - started


async def members_of_a_node_and_one_elsewhere(a, b) -> tuple[Peer, Peer, Peer]:
    """ana and cy on node `a`, bo on node `b`, all in the room."""
    ana = await Peer.connect(a, "ana")
    cy = await Peer.connect(a, "cy")
    bo = await Peer.connect(b, "bo")
    for peer in (ana, cy):
        await peer.join()
    await asyncio.to_thread(members_listed, b, 2)
    joined = await bo.join()
    assert joined["members"] == by_name(ana, bo, cy), bo.trace()
    return ana, cy, bo


def test_a_killed_nodes_members_leave_on_the_other_nodes(redis, start_nodes):
    a, b = start_nodes(redis, 2)

    async def scenario():
        ana, cy, bo = await members_of_a_node_and_one_elsewhere(a, b)
        assert a.kill() == -9
        gone, seconds = await wait_for_leaves(bo, [ana, cy], DEAD_NODE_SECONDS)
        await close_all(ana, cy, bo)
        return ana, cy, bo, gone, seconds

    ana, cy, bo, gone, seconds = asyncio.run(scenario())
    assert sorted(e["member"]["name"] for e in gone) == ["ana", "cy"], bo.trace()
    assert gone[-1]["count"] == 1, bo.trace()
    assert seconds < DEAD_NODE_SECONDS, seconds
    answer = poll(lambda: directory(b), lambda answer: answer[1]["rooms"] == [])
    assert answer == (200, {"rooms": []}), "bo closed too: nobody is left"


def test_a_stopped_nodes_members_leave_at_once(redis, start_nodes):
    a, b = start_nodes(redis, 2)

    async def scenario():
        ana, cy, bo = await members_of_a_node_and_one_elsewhere(a, b)
        a.terminate()
        gone, seconds = await wait_for_leaves(bo, [ana, cy], STOPPED_NODE_SECONDS)
        await close_all(ana, cy, bo)
        return bo, gone, seconds

    bo, gone, seconds = asyncio.run(scenario())
    assert sorted(e["member"]["name"] for e in gone) == ["ana", "cy"], bo.trace()
    assert gone[-1]["count"] == 1, bo.trace()
    assert seconds < STOPPED_NODE_SECONDS, seconds
    assert a.stop() == 0


# --- Redis failures ---------------------------------------------------------

# Acks each sender collects before Redis is stopped.
ACKS_BEFORE_OUTAGE = 10
# Longest wait for the nodes to notice the outage, and to recover from it
# (the spec: reconnect tries at most 2 s apart, healthy within about 5 s).
OUTAGE_SECONDS = 20


class Sender:
    """A member sending one `say` after another, each waiting for its answer."""

    def __init__(self, peer: Peer):
        self.peer = peer
        self.prefix = peer.member["name"]
        self.sent = 0
        self.acked: dict[str, int] = {}
        self.refused: list[str] = []
        self.texts: dict[str, str] = {}
        self.warmed_up = asyncio.Event()
        self.saw_refusal = asyncio.Event()

    async def say(self, ref: str | None = None) -> dict:
        if ref is None:
            ref = f"{self.prefix}-{self.sent}"
            self.texts[ref] = f"{self.prefix} {self.sent}"
            self.sent += 1
        answer = (await self.peer.say(self.texts[ref], ref))[1]
        if answer["type"] == "ack":
            assert self.acked.setdefault(ref, answer["id"]) == answer["id"], self.peer.trace()
            if len(self.acked) >= ACKS_BEFORE_OUTAGE:
                self.warmed_up.set()
        else:
            assert answer["code"] == "unavailable", self.peer.trace()
            self.refused.append(ref)
            self.saw_refusal.set()
        return answer

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.say()


async def within(seconds: float, what: str, awaitable):
    try:
        async with asyncio.timeout(seconds):
            return await awaitable
    except TimeoutError:
        raise AssertionError(f"{what}: not within {seconds} s") from None


def test_redis_stopped_mid_traffic_and_restarted_loses_and_doubles_nothing(redis, start_nodes):
    a, b = start_nodes(redis, 2, CHARLA_API_TOKEN=TOKEN, **UNLIMITED)

    async def scenario():
        ana = await Peer.connect(a, "ana")
        bo = await Peer.connect(b, "bo")
        for peer in (ana, bo):
            await peer.join()
        senders = [Sender(ana), Sender(bo)]
        stop = asyncio.Event()
        traffic = asyncio.gather(*(sender.run(stop) for sender in senders))
        await within(
            WAIT_SECONDS,
            "acks before the outage",
            asyncio.gather(*(sender.warmed_up.wait() for sender in senders)),
        )

        assert await asyncio.to_thread(redis.stop) == 0, redis.log.read_text()
        await within(
            OUTAGE_SECONDS,
            "an `unavailable` on each node",
            asyncio.gather(*(sender.saw_refusal.wait() for sender in senders)),
        )
        stop.set()
        await within(OUTAGE_SECONDS, "the senders' last answers", traffic)
        outage_health = await asyncio.to_thread(
            poll_all, (a, b), health, lambda answer: answer[0] == 503, OUTAGE_SECONDS
        )
        outage_post = await asyncio.to_thread(post, a, "during the outage")
        # Still down: one more say on each node is refused.
        outage_says = [await sender.say() for sender in senders]

        await asyncio.to_thread(redis.start)
        recovered_health = await asyncio.to_thread(
            poll_all, (a, b), health, lambda answer: answer[0] == 200, OUTAGE_SECONDS
        )
        # Resent with their refs, the refused messages are stored once.
        resends = [await sender.say(ref) for sender in senders for ref in list(sender.refused)]
        fresh = [await sender.say() for sender in senders]
        posted = await asyncio.to_thread(post, b, "after the outage")
        assert posted[0] == 201, posted
        for peer in (ana, bo):
            await peer.has_message(posted[1]["id"])
            await peer.barrier()
        history = {node.port: stored(node) for node in (a, b)}
        await close_all(ana, bo)
        return (
            senders, outage_health, outage_post, outage_says, recovered_health,
            resends, fresh, posted, history,
        )

    (
        senders, outage_health, outage_post, outage_says, recovered_health,
        resends, fresh, posted, history,
    ) = asyncio.run(scenario())
    ana, bo = (sender.peer for sender in senders)

    assert outage_health == [(503, {"status": "storage_failing"})] * 2, "/healthz while Redis is down"
    assert outage_post[0] == 503 and outage_post[1]["error"] == "unavailable", outage_post
    for answer in outage_says:
        assert (answer["type"], answer.get("code")) == ("error", "unavailable"), answer
    assert recovered_health == [(200, {"status": "ok"})] * 2, "/healthz once Redis is back"
    for answer in resends + fresh:
        assert answer["type"] == "ack", answer
    assert posted[0] == 201, posted

    acks = [(ref, id_, sender.texts[ref]) for sender in senders for ref, id_ in sender.acked.items()]
    assert sorted(ref for ref, _, _ in acks) == sorted(ref for s in senders for ref in s.texts), (
        "every ref acked in the end"
    )
    acked_ids = sorted(id_ for _, id_, _ in acks)
    assert len(set(acked_ids)) == len(acked_ids), f"no id acked for two refs: {acked_ids}"
    expected = sorted([(id_, text) for _, id_, text in acks] + [(posted[1]["id"], "after the outage")])
    last = len(expected)
    for port, messages in history.items():
        assert ids(messages) == list(range(1, last + 1)), f"contiguous on :{port}: {ids(messages)}"
        assert [(m["id"], m["text"]) for m in messages] == expected, f"each acked message once on :{port}"
    disorders = [
        peer.disorder(messages_in(peer.events), 1, last)
        for peer in (ana, bo)
        if ids(messages_in(peer.events)) != list(range(1, last + 1))
    ]
    assert disorders == [], "live, in order, once:\n" + "\n".join(disorders)
    for peer in (ana, bo):
        assert records(messages_in(peer.events)) == history[a.port], peer.label


# --- Start-up refusals --------------------------------------------------------


@pytest.mark.parametrize("variable", ["CHARLA_REDIS_URL", "REDIS_URL"])
def test_an_unreachable_redis_stops_startup_naming_the_url_without_its_password(run_to_exit, variable):
    port = free_port()  # nothing listens there
    started = time.monotonic()
    exited = run_to_exit(**{variable: f"redis://:hunter2@127.0.0.1:{port}"})
    seconds = time.monotonic() - started

    assert exited.code == 1, (exited.code, exited.said)
    assert f"cannot reach Redis at redis://:***@127.0.0.1:{port}" in exited.said, exited.said
    assert "CHARLA_REDIS_URL" in exited.said, exited.said
    everything = json.dumps(exited.logs) + exited.stderr
    assert "hunter2" not in everything, everything
    assert seconds < 7, f"gave up after {seconds:.1f} s (the spec: about 5 s)"


def redis_has_tls() -> bool:
    """Debian's redis-server is built with TLS (linked with OpenSSL);
    `redis-server --version` does not say so, the linked libraries do."""
    binary = shutil.which("redis-server") or "redis-server"
    linked = subprocess.run(["ldd", binary], capture_output=True, text=True)
    return "libssl" in linked.stdout


@pytest.fixture
def tls_redis(start_redis, tmp_path):
    """A Redis speaking TLS only, with a self-signed certificate for
    127.0.0.1 (an end-entity one, as a hosted Redis presents: a client that
    verifies finds no trusted issuer)."""
    if not shutil.which("redis-server") or not redis_has_tls():
        pytest.skip("this redis-server is built without TLS")
    if not shutil.which("openssl"):
        pytest.skip("openssl is missing")
    certificate, key = tmp_path / "redis.crt", tmp_path / "redis.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(certificate),
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-addext", "basicConstraints=critical,CA:FALSE"],
        check=True,
        capture_output=True,
    )
    return start_redis(RedisTls(certificate, key, certificate))


def test_tls_with_a_self_signed_certificate_needs_insecure_tls(tls_redis, run_to_exit, start_server):
    assert tls_redis.url.startswith("rediss://")
    refused = run_to_exit(CHARLA_REDIS_URL=tls_redis.url)
    assert refused.code == 1, (refused.code, refused.said)
    assert f"cannot reach Redis at {tls_redis.url}" in refused.said, refused.said
    assert "certificate" in refused.said.lower(), refused.said

    first = start_server(CHARLA_REDIS_URL=tls_redis.url, CHARLA_REDIS_INSECURE_TLS="true")
    # `#insecure` at the end of the URL is the same setting.
    second = start_server(CHARLA_REDIS_URL=f"{tls_redis.url}#insecure")

    async def scenario():
        ana = await Peer.connect(first, "ana")
        await ana.join()
        bo = await Peer.connect(second, "bo")
        await bo.join()
        acked = (await ana.say("over TLS", "tls-1"))[1]
        seen = await bo.message("ana's message over TLS")
        await close_all(ana, bo)
        return acked, seen

    acked, seen = asyncio.run(scenario())
    assert acked == {"type": "ack", "ref": "tls-1", "room": ROOM, "id": 1}
    assert (seen["id"], seen["text"]) == (1, "over TLS")
    assert health(first) == (200, {"status": "ok"})
    assert first.stop() == 0
    assert second.stop() == 0


# --- People across nodes (docs/protocol.md, rules 49 and 50) -------------


async def identify(peer: Peer, secret: str | None = None) -> dict:
    if secret is None:
        await peer.send(type="identify")
    else:
        await peer.send(type="identify", secret=secret)
    answer = (await peer.until(lambda e: e["type"] in ("identity", "error"), "identity"))[1]
    assert answer["type"] == "identity", peer.trace()
    peer.member = {"id": answer["id"], "name": peer.member["name"]}
    return answer


async def change(peer: Peer, ref: str, **request) -> dict:
    """An `edit` or `delete` and its answer (`ack` or `error`)."""
    await peer.send(room=ROOM, ref=ref, **request)
    return (
        await peer.until(lambda e: e["type"] in ("ack", "error") and e.get("ref") == ref, f"answer to {ref}")
    )[1]


def delete_as_moderator(node, message_id: int) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    url = f"{node.http}/api/rooms/{ROOM}/messages/{message_id}"
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, method="DELETE", headers=headers), timeout=WAIT_SECONDS
        ) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_an_identity_on_two_nodes_is_one_member_and_edits_and_deletes_reach_both(redis, start_nodes):
    a, b = start_nodes(redis, 2, CHARLA_API_TOKEN=TOKEN, **UNLIMITED)

    async def scenario():
        ana = await Peer.connect(a, "ana")
        issued = await identify(ana)
        await ana.join()
        # The same person on a second connection, through the other node.
        tab = await Peer.connect(b, "ana")
        again = await identify(tab, issued["secret"])
        assert again == {"type": "identity", "id": issued["id"]}, tab.trace()
        bo = await Peer.connect(b, "bo")
        await identify(bo)
        members_listed(b, 1)
        await tab.join()
        members_listed(a, 2)
        joined = await bo.join()
        assert [m["id"] for m in joined["members"]].count(issued["id"]) == 2, joined
        said = (await ana.say("helo from A", "s1"))[1]
        await bo.has_message(said["id"])
        # The author edits through the other node; bo may not.
        edited = await change(tab, "e1", type="edit", id=said["id"], text="hello from A")
        refused = await change(bo, "e2", type="delete", id=said["id"])
        resent = await change(tab, "e1", type="edit", id=said["id"], text="hello again")
        await ana.has_message(edited["id"])
        await bo.has_message(edited["id"])
        second = (await bo.say("spam", "s2"))[1]
        status, deleted = delete_as_moderator(a, second["id"])
        gone = await bo.has_message(deleted.get("id", -1))
        late = await Peer.connect(a, "cy")
        history = (await late.join())["history"]
        # One of ana's two connections leaves: she is still in the room.
        await ana.close()
        left = (await bo.until(lambda e: e["type"] == "presence" and e["event"] == "leave", "a leave"))[1]
        await close_all(tab, bo, late)
        return issued, edited, refused, resent, status, deleted, gone, history, left

    issued, edited, refused, resent, status, deleted, gone, history, left = asyncio.run(scenario())
    assert (edited["type"], refused["type"], refused["code"]) == ("ack", "error", "not_author")
    assert resent == edited, "a resent edit gets the original id, through either node"
    assert status == 200, deleted
    assert (gone["deletes"], gone["from"]["name"]) == (deleted["id"] - 1, "moderator")
    messages = {m["id"]: m for m in history}
    first = messages[edited["id"] - 1]
    assert (first["text"], first["from"]["id"]) == ("hello from A", issued["id"])
    assert first["edited"] == messages[edited["id"]]["at"]
    assert (messages[gone["deletes"]]["text"], messages[gone["deletes"]]["deleted"]) == ("", True)
    assert stored(b) == [{k: v for k, v in m.items() if k != "type"} for m in history]
    assert (left["member"]["id"], left["count"]) == (issued["id"], 3), left
