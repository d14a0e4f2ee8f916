"""The embedded channel layer (realtime/layers.py): every frame reaches its socket, and the
queues of sockets that are gone do not pile up."""

import asyncio

from realtime.layers import SweepingInMemoryChannelLayer


async def test_frames_arrive_in_order_and_the_queues_of_gone_channels_go():
    layer = SweepingInMemoryChannelLayer()
    reader, gone = await layer.new_channel(), await layer.new_channel()
    waiting = asyncio.create_task(layer.receive(reader))
    await asyncio.sleep(0)  # the reader waits on its queue
    for n in range(3):
        await layer.send(reader, {"type": "chat.tokens", "n": n})
    await layer.send(gone, {"type": "chat.tokens", "n": 0})
    assert (await waiting)["n"] == 0
    assert [(await layer.receive(reader))["n"] for _ in range(2)] == [1, 2]
    await layer.receive(gone)

    waiting = asyncio.create_task(layer.receive(reader))
    await asyncio.sleep(0)
    layer._last_sweep = 0.0  # the next sweep is due
    layer._clean_expired()
    # The one waited on stays; the empty one of a channel that stopped reading goes.
    assert reader in layer.channels and gone not in layer.channels
    message = {"type": "chat.tokens", "n": 9}
    await layer.send(reader, message)
    received = await waiting
    received["n"] = 10  # a reader's changes stay its own
    assert message["n"] == 9
