"""History that survives the process (issue 9): the release binary on one
SQLite file, stopped and started again.

- SIGTERM, then a restart on the same file: history, `GET …/messages` pages,
  `join` with `after` (and `complete`), `ref` dedupe and `joined.epoch`
  answer as before, and ids continue.
- SIGKILL right after the last ack of a burst: every acked message is there.
- Start-up refusals (exit status 1, a line naming the path and
  `CHARLA_DATABASE`): a garbage file, a newer schema, a missing directory, a
  read-only directory, a file another process holds.
- A disk that fills up under traffic: `unavailable`, no ack and no broadcast,
  `/healthz` 503 `storage_failing`, a post 503; then recovery by itself with
  contiguous ids.
- The in-memory mode: a client resuming across a restart is told
  (`complete: false`) thanks to the epoch.

The tests that mount a tmpfs need root and skip otherwise."""

import asyncio
import errno
import json
import os
import sqlite3
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import websockets

from conftest import WAIT_SECONDS, tmpfs

ROOM = "durable"
TOKEN = "durability-test-token"
# Flood control off: the tests send bursts on purpose.
UNLIMITED = {"CHARLA_MSG_RATE": "0"}
# After the closing handshake the server waits (about 1 s) for the client to
# drop the TCP connection while the client waits for the server to: a client
# that has nothing left to hear drops it after this long.
CLOSE_SECONDS = 0.05


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


def history(server, query: str = "limit=200") -> list[dict]:
    status, answer = request(f"{server.http}/api/rooms/{ROOM}/messages?{query}")
    assert status == 200, answer
    return answer["messages"]


def health(server) -> tuple[int, dict]:
    return request(f"{server.http}/healthz")


# --- WebSocket ----------------------------------------------------------


class Client:
    """One WebSocket connection speaking Charla's protocol."""

    def __init__(self, ws):
        self.ws = ws

    @classmethod
    async def connect(cls, server, name: str) -> "Client":
        # An unbounded queue: a burst's acks and copies wait here, not in the
        # server's outbox.
        ws = await websockets.connect(
            f"{server.ws}?name={name}", max_queue=None, close_timeout=CLOSE_SECONDS
        )
        client = cls(ws)
        assert (await client.next())["type"] == "welcome"
        return client

    async def send(self, **message) -> None:
        await self.ws.send(json.dumps(message))

    async def next(self) -> dict:
        return json.loads(await asyncio.wait_for(self.ws.recv(), WAIT_SECONDS))

    async def until(self, wanted) -> tuple[list[dict], dict]:
        """Events up to the first one `wanted` accepts: (the ones before, that one)."""
        before = []
        while not wanted(event := await self.next()):
            before.append(event)
        return before, event

    async def join(self, room: str = ROOM, **fields) -> dict:
        await self.send(type="join", room=room, **fields)
        return (await self.until(lambda e: e["type"] in ("joined", "error")))[1]

    async def say(self, text: str, ref: str, room: str = ROOM) -> tuple[list[dict], dict]:
        """Sends a `say` and waits for its answer (`ack` or `error` with `ref`)."""
        await self.send(type="say", room=room, text=text, ref=ref)
        return await self.until(lambda e: e["type"] in ("ack", "error") and e.get("ref") == ref)

    async def barrier(self) -> list[dict]:
        """Every event the rooms sent before now (docs/protocol.md, rule 36:
        a `leave` of a room not joined is answered in order, by the rooms)."""
        await self.send(type="leave", room="barrier-nowhere", ref="barrier")
        before, answer = await self.until(lambda e: e.get("ref") == "barrier")
        assert answer["code"] == "not_joined", answer
        return before

    async def close(self) -> None:
        await self.ws.close()


def messages_in(events: list[dict]) -> list[dict]:
    return [event for event in events if event["type"] == "message"]


def records(events: list[dict]) -> list[dict]:
    """`message` events as the HTTP API gives them: without `type` (rule 17)."""
    return [{key: value for key, value in event.items() if key != "type"} for event in events]


def ids(messages: list[dict]) -> list[int]:
    return [message["id"] for message in messages]


# --- Restarts -----------------------------------------------------------

# Pages compared before and after the restart (docs/protocol.md, rule 13).
PAGES = [
    "limit=200",
    "",
    "limit=10",
    "after=5&limit=10",
    "before=20&limit=5",
    "after=3&before=12",
    "after=25",
    "after=31",
    "before=1",
]


def test_after_sigterm_a_restart_keeps_history_pages_resume_refs_ids_and_epoch(
    start_server, tmp_path
):
    env = {"CHARLA_DATABASE": tmp_path / "charla.db", "CHARLA_API_TOKEN": TOKEN, **UNLIMITED}
    first = start_server(**env)

    async def before_restart():
        ana = await Client.connect(first, "ana")
        joined = await ana.join()
        assert (joined["history"], joined["complete"]) == ([], True)
        acks = [(await ana.say(f"message {n}", f"ref-{n}"))[1] for n in range(1, 31)]
        assert [(ack["type"], ack["id"]) for ack in acks] == [("ack", n) for n in range(1, 31)]
        status, posted = request(
            f"{first.http}/api/rooms/{ROOM}/messages", {"from": "bot", "text": "posted"}
        )
        assert (status, posted) == (201, {"id": 31})
        await ana.barrier()
        # A second connection resuming, as after a reconnect.
        bob = await Client.connect(first, "bob")
        resumed = await bob.join(after=10, epoch=joined["epoch"])
        await ana.close()
        await bob.close()
        return joined, resumed

    joined, resumed = asyncio.run(before_restart())
    assert (ids(resumed["history"]), resumed["complete"]) == (list(range(11, 32)), True)
    pages = {query: history(first, query) for query in PAGES}
    assert ids(pages["limit=200"]) == list(range(1, 32))
    assert first.stop() == 0

    second = start_server(**env)
    assert {query: history(second, query) for query in PAGES} == pages

    async def after_restart():
        bob = await Client.connect(second, "bob")
        again = await bob.join(after=10, epoch=joined["epoch"])
        ana = await Client.connect(second, "ana")
        plain = await ana.join()
        # A resend of an acked ref (other text, rule 19): the original id.
        before_resend, resent = await ana.say("message 7, resent", "ref-7")
        before_next, next_ack = await ana.say("after the restart", "ref-new")
        copy = (await ana.until(lambda e: e["type"] == "message"))[1]
        seen_by_bob = messages_in(await bob.barrier())
        await ana.close()
        await bob.close()
        return again, plain, before_resend + before_next, resent, next_ack, copy, seen_by_bob

    again, plain, between, resent, next_ack, copy, seen_by_bob = asyncio.run(after_restart())
    assert again["epoch"] == joined["epoch"], "the same file keeps its epoch"
    assert (again["history"], again["complete"]) == (resumed["history"], True)
    assert plain["epoch"] == joined["epoch"]
    assert records(plain["history"]) == pages[""], "the default page and join both hold all 31"
    assert (resent["type"], resent["id"]) == ("ack", 7)
    assert next_ack == {"type": "ack", "ref": "ref-new", "room": ROOM, "id": 32}
    assert messages_in(between) == [], "a resend is not broadcast again"
    assert (copy["id"], copy["text"]) == (32, "after the restart")
    assert ids(seen_by_bob) == [32]
    stored = history(second)
    assert ids(stored) == list(range(1, 33))
    assert stored[:31] == pages["limit=200"]
    assert [m["text"] for m in stored].count("message 7") == 1
    assert "message 7, resent" not in [m["text"] for m in stored]
    assert second.stop() == 0


def test_every_message_acked_before_sigkill_is_there_after_restart(start_server, tmp_path):
    count = 200
    env = {"CHARLA_DATABASE": tmp_path / "charla.db", "CHARLA_OUTBOX_FRAMES": 1024, **UNLIMITED}
    first = start_server(**env)

    async def burst():
        ana = await Client.connect(first, "ana")
        await ana.join()
        for n in range(count):
            await ana.send(type="say", room=ROOM, text=f"burst {n}", ref=f"burst-{n}")
        acks = []
        while len(acks) < count:
            event = await ana.next()
            assert event["type"] != "error", event
            if event["type"] == "ack":
                acks.append(event)
        # At once, with copies still on their way: only the acks count.
        killed = first.kill()
        await ana.ws.close()
        return acks, killed

    acks, killed = asyncio.run(burst())
    assert killed == -9
    assert [(ack["ref"], ack["id"]) for ack in acks] == [
        (f"burst-{n}", n + 1) for n in range(count)
    ]

    second = start_server(**env)
    stored = history(second, f"limit={count}")
    assert [(m["id"], m["text"]) for m in stored] == [(n + 1, f"burst {n}") for n in range(count)]

    async def one_more():
        ana = await Client.connect(second, "ana")
        await ana.join()
        resent = (await ana.say("burst 0 again", "burst-0"))[1]
        fresh = (await ana.say("after the kill", "after-kill"))[1]
        await ana.close()
        return resent, fresh

    resent, fresh = asyncio.run(one_more())
    assert (resent["type"], resent["id"]) == ("ack", 1)
    assert (fresh["type"], fresh["id"]) == ("ack", count + 1)
    assert second.stop() == 0


# --- Start-up refusals ----------------------------------------------------


def assert_refused(exited, path: Path, *phrases: str) -> None:
    """Exit status 1, with a message naming the path, the setting and `phrases`."""
    assert exited.code == 1, (exited.code, exited.said)
    assert str(path) in exited.said, exited.said
    assert "CHARLA_DATABASE" in exited.said, exited.said
    for phrase in phrases:
        assert phrase in exited.said, exited.said


def test_a_file_that_is_not_a_database_is_refused_and_left_untouched(run_to_exit, tmp_path):
    path = tmp_path / "charla.db"
    garbage = b"these are notes, not a database\n" * 200
    path.write_bytes(garbage)
    assert_refused(run_to_exit(CHARLA_DATABASE=path), path, "not a Charla database")
    assert path.read_bytes() == garbage


def test_a_database_from_a_newer_schema_is_refused_and_left_untouched(run_to_exit, tmp_path):
    path = tmp_path / "charla.db"
    with sqlite3.connect(path) as newer:
        newer.execute("CREATE TABLE future (x)")
        newer.execute("PRAGMA user_version = 99")
    newer.close()
    before = path.read_bytes()
    assert_refused(run_to_exit(CHARLA_DATABASE=path), path, "schema version 99", "newer")
    assert path.read_bytes() == before
    with sqlite3.connect(path) as check:
        assert check.execute("PRAGMA user_version").fetchone() == (99,)
    check.close()


def test_a_missing_directory_is_refused(run_to_exit):
    path = Path("/nonexistent/dir/charla.db")
    assert not path.parent.exists()
    assert_refused(run_to_exit(CHARLA_DATABASE=path), path, "cannot write")
    assert not path.parent.exists()


def test_a_read_only_directory_is_refused(run_to_exit, tmp_path):
    # chmod does not stop root: a read-only file system does.
    with tmpfs(tmp_path / "readonly", "ro,size=1m") as directory:
        path = directory / "charla.db"
        exited = run_to_exit(CHARLA_DATABASE=path)
    assert_refused(exited, path, "cannot write", "Read-only file system")


def test_a_second_process_on_the_same_file_is_refused_while_the_first_serves(
    start_server, run_to_exit, tmp_path
):
    path = tmp_path / "charla.db"
    first = start_server(CHARLA_DATABASE=path)
    assert_refused(run_to_exit(CHARLA_DATABASE=path), path, "in use by another process")

    async def still_serving():
        ana = await Client.connect(first, "ana")
        await ana.join()
        ack = (await ana.say("still here", "r1"))[1]
        await ana.close()
        return ack

    assert (asyncio.run(still_serving())["id"], health(first)) == (1, (200, {"status": "ok"}))
    assert first.stop() == 0
    # The lock goes with the process: the file opens again, history intact.
    second = start_server(CHARLA_DATABASE=path)
    assert [m["text"] for m in history(second)] == ["still here"]
    assert second.stop() == 0


# --- A disk that fills up ---------------------------------------------------

# Each refused attempt is one long message; the first write after the disk is
# full normally fails, this bounds the attempts if the WAL absorbs some.
MAX_ATTEMPTS = 100
LONG_TEXT = "x" * 3990


def fill(path: Path) -> None:
    """Writes zeros to `path` until its file system is full."""
    block = bytes(4096)
    with open(path, "wb", buffering=0) as filler:
        try:
            while True:
                filler.write(block)
        except OSError as error:
            assert error.errno == errno.ENOSPC, error


def wait_healthy(server, deadline_seconds: float) -> tuple[int, dict]:
    """Polls /healthz until 200 or the deadline (the writer probes every second)."""
    deadline = time.monotonic() + deadline_seconds
    while (answer := health(server))[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    return answer


def test_a_full_disk_refuses_says_and_posts_then_recovers_by_itself(start_server, tmp_path):
    with tmpfs(tmp_path / "small", "size=2m") as directory:
        env = {"CHARLA_DATABASE": directory / "charla.db", "CHARLA_API_TOKEN": TOKEN, **UNLIMITED}
        with start_server(**env) as server:
            outcome = asyncio.run(fill_then_recover(server, directory / "filler"))
            assert server.stop() == 0
    acked, refused, seen_while_full, health_while_full, post_while_full = outcome[:5]
    healthy_again, resent, copy, seen_after, post_after, stored = outcome[5:]

    last = acked[-1]["id"]
    assert ids(acked) == list(range(1, last + 1)), "acks before the disk filled"
    assert refused["type"] == "error" and refused["code"] == "unavailable", refused
    assert ids(messages_in(seen_while_full)) == list(range(1, last + 1)), "no broadcast of a refusal"
    assert health_while_full == (503, {"status": "storage_failing"})
    assert post_while_full[0] == 503 and post_while_full[1]["error"] == "unavailable", post_while_full
    assert healthy_again == (200, {"status": "ok"}), "health came back within the deadline"
    assert resent == {"type": "ack", "ref": refused["ref"], "room": ROOM, "id": last + 1}
    assert (copy["id"], copy["text"]) == (last + 1, LONG_TEXT)
    assert ids(messages_in(seen_after)) == [last + 1, last + 2]
    assert post_after == (201, {"id": last + 2})
    assert ids(stored) == list(range(1, last + 3)), "contiguous, no gap, no duplicate"
    assert [m["text"] for m in stored][-2:] == [LONG_TEXT, "after the disk came back"]


async def fill_then_recover(server, filler: Path):
    ana = await Client.connect(server, "ana")
    bob = await Client.connect(server, "bob")
    await ana.join()
    await bob.join()
    acked = [(await ana.say("before the disk filled", "first"))[1]]
    fill(filler)

    refused = None
    for attempt in range(MAX_ATTEMPTS):
        answer = (await ana.say(LONG_TEXT, f"full-{attempt}"))[1]
        if answer["type"] != "ack":
            refused = answer
            break
        acked.append(answer)
    assert refused is not None, f"{MAX_ATTEMPTS} long messages fit on a full 2 MiB disk"
    seen_while_full = await bob.barrier()
    health_while_full = health(server)
    post_while_full = request(
        f"{server.http}/api/rooms/{ROOM}/messages", {"from": "bot", "text": "lost?"}
    )

    filler.unlink()
    healthy_again = wait_healthy(server, WAIT_SECONDS)
    resent = (await ana.say(LONG_TEXT, refused["ref"]))[1]
    copy = (await ana.until(lambda e: e["type"] == "message"))[1]
    post_after = request(
        f"{server.http}/api/rooms/{ROOM}/messages", {"from": "bot", "text": "after the disk came back"}
    )
    seen_after = await bob.barrier()
    stored = history(server)
    await ana.close()
    await bob.close()
    return (
        acked,
        refused,
        seen_while_full,
        health_while_full,
        post_while_full,
        healthy_again,
        resent,
        copy,
        seen_after,
        post_after,
        stored,
    )


# --- The in-memory mode -----------------------------------------------------


def test_in_memory_a_resume_across_a_restart_is_told_incomplete(start_server):
    env = {"CHARLA_DATABASE": ":memory:", **UNLIMITED}

    async def talk(server, count: int, then_resume: dict | None = None):
        ana = await Client.connect(server, "ana")
        joined = await ana.join()
        for n in range(count):
            await ana.say(f"message {n}", f"ref-{n}")
        resumed = None
        if then_resume is not None:
            bob = await Client.connect(server, "bob")
            resumed = await bob.join(**then_resume)
            await bob.close()
        await ana.close()
        return joined, resumed

    first = start_server(**env)
    old, _ = asyncio.run(talk(first, 3))
    assert first.stop() == 0

    # The new sequence passes the old last id (3) before the client resumes.
    second = start_server(**env)
    new, resumed = asyncio.run(talk(second, 5, {"after": 3, "epoch": old["epoch"]}))
    assert new["epoch"] != old["epoch"], "a restarted sequence has a new epoch"
    assert resumed["type"] == "joined", resumed
    assert resumed["epoch"] == new["epoch"]
    assert resumed["complete"] is False
    assert second.stop() == 0
