"""Smoke tests proving the rig's services are the real thing."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import aiomysql
import nats
from nats.aio.msg import Msg
from pymongo import AsyncMongoClient


async def test_async_pymongo_round_trips_through_ferretdb(mongodb_uri: str, mongo_database: str) -> None:
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(mongodb_uri)
    try:
        collection = client[mongo_database]["smoke"]
        await collection.insert_one({"_id": "a", "value": 42})
        assert await collection.find_one({"_id": "a"}) == {"_id": "a", "value": 42}
        build = await client.admin.command("buildInfo")
        assert "ferretdb" in str(build).lower()
    finally:
        await client.close()


async def test_aiomysql_runs_a_window_function_on_mariadb(mysql_dsn: str) -> None:
    dsn = urlsplit(mysql_dsn)
    conn = await aiomysql.connect(
        host=dsn.hostname, port=dsn.port, user=dsn.username, password=dsn.password, db=dsn.path.lstrip("/")
    )
    try:
        async with conn.cursor() as cur:
            await cur.execute("CREATE TABLE t (ts INT PRIMARY KEY)")
            await cur.execute("INSERT INTO t VALUES (1), (2), (5)")
            await cur.execute("SELECT ts - LAG(ts) OVER (ORDER BY ts) FROM t ORDER BY ts")
            assert [row[0] for row in await cur.fetchall()] == [None, 1, 3]
            await cur.execute("SELECT VERSION()")
            (version,) = await cur.fetchone()
            assert "MariaDB" in version
    finally:
        conn.close()


async def test_two_nats_subscribers_in_one_queue_group_split_the_messages(
    nats_url: str, nats_subject: str
) -> None:
    received: list[list[bytes]] = [[], []]
    connections = [await nats.connect(nats_url) for _ in range(3)]
    try:
        for index, nc in enumerate(connections[:2]):

            async def handler(msg: Msg, box: list[bytes] = received[index]) -> None:
                box.append(msg.data)

            await nc.subscribe(nats_subject, queue="q", cb=handler)
            await nc.flush()
        publisher = connections[2]
        for i in range(400):
            await publisher.publish(nats_subject, str(i).encode())
        await publisher.flush()
        for _ in range(100):
            if sum(map(len, received)) == 400:
                break
            await asyncio.sleep(0.05)
        assert sorted(int(m) for m in received[0] + received[1]) == list(range(400))
        assert received[0], "a queue group must spread messages over both members"
        assert received[1], "a queue group must spread messages over both members"
    finally:
        for nc in connections:
            await nc.close()
