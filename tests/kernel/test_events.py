from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from comfyvn import Kernel, hookimpl
from comfyvn.errors import Invalid, TooLarge
from comfyvn.events import Envelope, EventBus, UndeclaredEvent
from structlog.testing import capture_logs


def declared(*names: str, strict: bool = True, history_size: int = 500) -> EventBus:
    bus = EventBus(strict=strict, history_size=history_size)
    register = bus.registrar("test")
    for name in names:
        register(name, f"{name} happened", {"type": "object"})
    return bus


def test_envelope_shape_and_sequence() -> None:
    bus = declared("on_a")
    first = bus.emit("on_a", {"x": 1})
    second = bus.emit("on_a")
    assert first.as_dict().keys() == {"event", "payload", "ts", "seq"}
    assert (first.seq, second.seq) == (1, 2)
    assert first.payload == {"x": 1} and second.payload == {}
    assert second.ts >= first.ts


def test_subscribers_filter_by_event_name() -> None:
    bus = declared("on_a", "on_b")
    seen_all: list[str] = []
    seen_b: list[str] = []
    bus.subscribe(lambda env: seen_all.append(env.event))
    sub = bus.subscribe(lambda env: seen_b.append(env.event), events=["on_b"])
    bus.emit("on_a")
    bus.emit("on_b")
    sub.close()
    bus.emit("on_b")
    assert seen_all == ["on_a", "on_b", "on_b"]
    assert seen_b == ["on_b"]


def test_a_raising_subscriber_is_logged_and_never_breaks_emit_or_others() -> None:
    bus = declared("on_a")
    got: list[int] = []

    def broken(env: Envelope) -> None:
        raise RuntimeError("subscriber bug")

    bus.subscribe(broken)
    bus.subscribe(lambda env: got.append(env.seq))
    with capture_logs() as logs:
        envelope = bus.emit("on_a", {"k": "v"})
    assert got == [envelope.seq]
    assert any(entry["event"] == "event subscriber failed" and entry["log_level"] == "error" for entry in logs)


def test_history_is_bounded_and_queryable() -> None:
    bus = declared("on_a", "on_b", history_size=500)
    for i in range(600):
        bus.emit("on_a" if i % 2 else "on_b", {"i": i})
    history = bus.history()
    assert len(history) == 500 and history[0].seq == 101 and history[-1].seq == 600
    assert [e.seq for e in bus.history(since=597)] == [598, 599, 600]
    assert {e.event for e in bus.history(event="on_a")} == {"on_a"}
    assert [e.seq for e in bus.history(event="on_b", limit=2)] == [597, 599]
    assert bus.history(limit=0) == []


def test_strict_bus_rejects_undeclared_events_and_bad_payloads() -> None:
    bus = EventBus(strict=True)
    bus.registrar("test")(
        "on_typed", "typed", {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}
    )
    with pytest.raises(UndeclaredEvent):
        bus.emit("on_nobody_declared")
    with pytest.raises(ValueError, match="at n"):
        bus.emit("on_typed", {"n": "one"})
    assert bus.emit("on_typed", {"n": 1}).seq == 1


def test_lenient_bus_warns_once_for_undeclared_events() -> None:
    bus = EventBus(strict=False)
    with capture_logs() as logs:
        bus.emit("on_surprise")
        bus.emit("on_surprise")
    warnings = [entry for entry in logs if entry["event"] == "undeclared event emitted"]
    assert len(warnings) == 1 and warnings[0]["log_level"] == "warning"
    assert len(bus.history()) == 2


@pytest.mark.parametrize("name", ["", "Bad", "on a", "1x", "on_a.", "x" * 0])
def test_registrar_rejects_bad_names(name: str) -> None:
    with pytest.raises(ValueError):
        EventBus().registrar("t")(name, "desc")


def test_registrar_rejects_duplicates_and_invalid_schemas() -> None:
    bus = declared("on_a")
    with pytest.raises(ValueError, match="already declared by 'test'"):
        bus.registrar("other")("on_a", "again")
    with pytest.raises(Exception, match="is not valid"):
        bus.registrar("other")("on_b", "bad schema", {"type": 12})
    with pytest.raises(ValueError, match="description"):
        bus.registrar("other")("on_c", " ")


def test_async_callback_subscriber_receives_events_from_any_thread() -> None:
    bus = declared("on_a")
    received: list[int] = []

    async def main() -> None:
        done = anyio.Event()

        async def on_event(env: Envelope) -> None:
            received.append(env.payload["i"])
            if len(received) == 3:
                done.set()

        bus.subscribe(on_event)
        bus.emit("on_a", {"i": 0})
        worker = threading.Thread(target=lambda: [bus.emit("on_a", {"i": i}) for i in (1, 2)])
        worker.start()
        with anyio.fail_after(5):
            await done.wait()
        worker.join()

    anyio.run(main)
    assert sorted(received) == [0, 1, 2]


def test_async_callback_outside_a_loop_is_refused() -> None:
    async def cb(env: Envelope) -> None:
        return None

    with pytest.raises(TypeError, match="running event loop"):
        EventBus().subscribe(cb)


def test_stream_delivers_in_order_and_drops_when_full() -> None:
    bus = declared("on_a", "on_b")

    async def main() -> tuple[list[int], int, list[int]]:
        async with bus.stream(events=["on_a"], max_buffer=4) as slow, bus.stream(max_buffer=100) as fast:
            for i in range(10):
                bus.emit("on_a", {"i": i})
            bus.emit("on_b", {"i": 99})
            got_slow = [(await slow.receive()).payload["i"] for _ in range(4)]
            got_fast = [(await fast.receive()).payload["i"] for _ in range(11)]
            return got_slow, slow.take_dropped(), got_fast

    got_slow, dropped, got_fast = anyio.run(main)
    assert got_slow == [0, 1, 2, 3]
    assert dropped == 6
    assert got_fast == [*range(10), 99]
    assert bus.subscriber_count == 0


def test_stream_receives_events_emitted_from_worker_threads() -> None:
    bus = declared("on_a")

    async def main() -> list[int]:
        async with bus.stream(max_buffer=1000) as stream:
            await anyio.to_thread.run_sync(lambda: [bus.emit("on_a", {"i": i}) for i in range(50)])
            out = []
            with anyio.fail_after(5):
                async for env in stream:
                    out.append(env.payload["i"])
                    if len(out) == 50:
                        break
            return out

    assert anyio.run(main) == list(range(50))


def test_kernel_declares_its_own_events(make_kernel: Callable[..., Kernel]) -> None:
    kernel = make_kernel()
    names = {spec.name for spec in kernel.events.specs()}
    assert {"on_feature_flag_changed", "security.secret_read", "security.secret_write", "security.key_rotated"} <= names
    assert all(spec.owner == "comfyvn" for spec in kernel.events.specs())


def test_events_of_a_failed_plugin_are_forgotten(make_kernel: Callable[..., Kernel]) -> None:
    class HalfBroken:
        @hookimpl
        def register_events(self, register: Any) -> None:
            register("on_half", "declared before the failure")

        @hookimpl
        def register_flags(self, register: Any) -> None:
            raise RuntimeError("boom")

    kernel = make_kernel(HalfBroken())
    assert kernel.events.spec("on_half") is None
    assert kernel.plugins.records["halfbroken"].status == "failed"


@pytest.mark.parametrize(
    "payload",
    [
        {"x": float("nan")},
        {"x": [1, float("inf")]},
        {"x": {"y": -float("inf")}},
        {"text": "\ud800"},
        {"\udfff": 1},
        {"path": object()},
    ],
)
@pytest.mark.parametrize("strict", [True, False])
def test_payloads_strict_json_cannot_encode_are_refused_and_never_stored(payload: Any, strict: bool) -> None:
    bus = declared("on_a", strict=strict)
    seen: list[Envelope] = []
    bus.subscribe(seen.append)
    with capture_logs() as logs, pytest.raises(Invalid) as info:
        bus.emit("on_a", payload)
    assert info.value.field == "payload"
    assert bus.history() == [] and seen == [] and bus.history_bytes == 0
    assert [entry["event"] for entry in logs] == ["event refused"]
    assert bus.emit("on_a", {"x": 1}).seq == 1  # a refused emit takes no sequence number


def test_the_payload_is_encoded_once_and_later_changes_cannot_make_it_unsendable() -> None:
    bus = declared("on_a")
    payload: dict[str, Any] = {"text": "héllo", "n": [1, 2.5]}
    envelope = bus.emit("on_a", payload)
    payload["n"] = float("nan")  # an emitter keeping and changing its dict afterwards
    assert json.loads(envelope.data) == {"text": "héllo", "n": [1, 2.5]}
    assert envelope.size == len(envelope.data.encode("utf-8")) == len('{"text":"héllo","n":[1,2.5]}'.encode())


def test_twelve_events_of_20_mb_are_refused_and_keep_nothing() -> None:
    bus = declared("on_a")
    big = {"blob": "x" * (20 * 2**20)}
    for _ in range(12):
        with pytest.raises(TooLarge) as info:
            bus.emit("on_a", big)
        assert info.value.field == "payload"
    assert bus.history() == [] and bus.history_bytes == 0


def test_history_is_bounded_by_encoded_bytes_as_well_as_count() -> None:
    bus = declared("on_a")
    bus.max_payload_bytes, bus.max_history_bytes = 4 * 2**20, 16 * 2**20
    blob = "x" * (3 * 2**20)
    for i in range(12):
        bus.emit("on_a", {"i": i, "blob": blob})
    kept = bus.history()
    assert bus.history_bytes <= 16 * 2**20
    assert bus.history_bytes == sum(e.size for e in kept) and len(kept) == 5
    assert [e.payload["i"] for e in kept] == list(range(7, 12))


def test_a_stream_buffer_is_bounded_by_payload_bytes() -> None:
    bus = declared("on_a")
    bus.max_history_bytes = 1000

    async def main() -> tuple[list[int], int, list[int]]:
        async with bus.stream(max_buffer=100) as stream:
            for i in range(5):
                bus.emit("on_a", {"i": i, "pad": "x" * 300})  # about 320 bytes each: three fit
            first = [(await stream.receive()).payload["i"] for _ in range(3)]
            dropped = stream.take_dropped()
            bus.emit("on_a", {"i": 5, "pad": "x" * 300})  # room again once read
            return first, dropped, [(await stream.receive()).payload["i"]]

    first, dropped, after = anyio.run(main)
    assert (first, dropped, after) == ([0, 1, 2], 2, [5])
