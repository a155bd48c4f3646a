"""People across a restart (issue 12; docs/protocol.md, rules 49 and 50):
the release binary on one SQLite file, stopped with SIGTERM and started
again. An identity presented after the restart is the same member, its
messages are still its own (it can edit them, nobody else can), and edits
and deletes made before the restart are in `joined` history, in resumes and
in `GET …/messages`. The identity's secret appears in no log line, even at
`debug`."""

import asyncio
import json

from test_durability import ROOM, Client, history, ids

LOUD = {"RUST_LOG": "debug"}


async def identify(client: Client, secret: str | None = None) -> dict:
    if secret is None:
        await client.send(type="identify")
    else:
        await client.send(type="identify", secret=secret)
    return (await client.until(lambda e: e["type"] in ("identity", "error")))[1]


async def change(client: Client, ref: str, **request) -> dict:
    """Sends an `edit` or `delete` and waits for its `ack` or `error`."""
    await client.send(room=ROOM, ref=ref, **request)
    return (await client.until(lambda e: e["type"] in ("ack", "error") and e.get("ref") == ref))[1]


def test_identities_edits_and_deletes_outlive_a_restart(start_server, tmp_path):
    env = {"CHARLA_DATABASE": tmp_path / "charla.db", **LOUD}
    first = start_server(**env)

    async def before_restart():
        ana = await Client.connect(first, "ana")
        identity = await identify(ana)
        joined = await ana.join()
        for n, text in enumerate(["helo", "my address is 12 Main St", "third"], start=1):
            assert (await ana.say(text, f"s{n}"))[1]["id"] == n
        assert (await change(ana, "e1", type="edit", id=1, text="hello"))["id"] == 4
        assert (await change(ana, "d2", type="delete", id=2))["id"] == 5
        await ana.barrier()
        await ana.close()
        return identity, joined["epoch"]

    identity, epoch = asyncio.run(before_restart())
    assert identity["type"] == "identity", identity
    secret, member = identity["secret"], identity["id"]
    pages = history(first)
    assert first.stop() == 0

    second = start_server(**env)
    assert history(second) == pages, "the HTTP API answers as before the restart"

    async def after_restart():
        ana = await Client.connect(second, "ana")
        again = await identify(ana, secret)
        joined = await ana.join()
        resumed = await ana.join(after=3, epoch=epoch)
        edited = await change(ana, "e2", type="edit", id=3, text="third, fixed")
        bo = await Client.connect(second, "ana")
        await identify(bo)
        await bo.join()
        refused = await change(bo, "e3", type="edit", id=1, text="not yours")
        await ana.close()
        await bo.close()
        return again, joined, resumed, edited, refused

    again, joined, resumed, edited, refused = asyncio.run(after_restart())
    assert again == {"type": "identity", "id": member}, "the same member, no secret echoed"
    messages = {m["id"]: m for m in joined["history"]}
    assert messages[1]["from"]["id"] == member, "its past messages are its own"
    assert (messages[1]["text"], messages[1]["edited"]) == ("hello", messages[4]["at"])
    assert (messages[2]["text"], messages[2]["deleted"]) == ("", True)
    assert (messages[4]["edits"], messages[5]["deletes"]) == (1, 2)
    assert "12 Main St" not in json.dumps(joined), "a deleted message's words are gone"
    assert (ids(resumed["history"]), resumed["complete"]) == ([4, 5], True)
    assert (edited["type"], edited["id"]) == ("ack", 6), "the author still edits after a restart"
    assert (refused["type"], refused["code"]) == ("error", "not_author")
    assert [m["text"] for m in history(second)][:3] == ["hello", "", "third, fixed"]
    assert second.stop() == 0
    for server in (first, second):
        logged = json.dumps(server.logs) + "".join(server.stderr)
        assert secret not in logged, "the secret appears in no log line"
