"""ChangeGate on the loop the server uses (uvloop when installed): lone saves, bursts, the hold cap."""

from __future__ import annotations

import asyncio
import concurrent.futures
from pathlib import Path

from execlib import Action, FileEvent
from execlib.runloop import new_loop
from execlib.server.burst import ChangeGate


def run(coroutine) -> None:
    """Run on a fresh server loop in a thread of its own (the browser tests keep a loop in the main thread)."""

    def main() -> None:
        loop = new_loop()
        try:
            loop.run_until_complete(coroutine)
        finally:
            loop.close()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(main).result()


async def drained(gate: ChangeGate, timeout: float = 5.0) -> None:
    """Wait (with a deadline) until the gate holds nothing and its flushes have run."""

    async def poll() -> None:
        while gate.holding or gate._tasks:
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout)


def modified(root: Path, name: str) -> FileEvent:
    (root / name).write_text(name)
    return FileEvent(str(root), name, Action.MODIFIED)


def test_a_lone_save_goes_out_once_as_a_lone_flush(tmp_path: Path) -> None:
    async def main() -> None:
        flushed: list[list[str]] = []
        done = asyncio.Event()

        async def flush(events) -> None:
            flushed.append([e.name for e in events])
            done.set()

        gate = ChangeGate(flush)
        gate.add([modified(tmp_path, "index.html")])
        await asyncio.wait_for(done.wait(), 5)
        assert flushed == [["index.html"]] and gate.flushes == {"lone": 1}
        assert not gate.holding

    run(main())


def test_rearming_a_timer_due_in_the_past_works_on_every_loop(tmp_path: Path) -> None:
    # With max_hold=0 every re-arm is due at once: uvloop then hands back a plain Handle (no when()).
    async def main() -> None:
        flushed: list[list[str]] = []

        async def flush(events) -> None:
            flushed.append([e.name for e in events])

        gate = ChangeGate(flush, quiet=0.05, max_hold=0.0)
        for i in range(20):  # a stream: every add lands while a timer is pending
            gate.add([modified(tmp_path, f"f{i}.html")])
            await asyncio.sleep(0.002)
        await drained(gate)
        names = [n for batch in flushed for n in batch]
        assert sorted(names) == sorted(f"f{i}.html" for i in range(20))  # every change went out, once

    run(main())


def test_a_stream_is_flushed_while_it_lasts_and_ends_on_the_final_state(tmp_path: Path) -> None:
    async def main() -> None:
        flushed: list[list[str]] = []

        async def flush(events) -> None:
            flushed.append([e.name for e in events])

        # quiet is far above the stream's 5 ms pace, so a busy machine's stall cannot end the stream early
        gate = ChangeGate(flush, quiet=0.25, max_hold=0.5)
        loop = asyncio.get_running_loop()
        end = loop.time() + 1.6
        i = 0
        while loop.time() < end:  # never quiet for 250 ms
            gate.add([modified(tmp_path, f"f{i % 7}.html")])
            i += 1
            await asyncio.sleep(0.005)
        gate.add([modified(tmp_path, "final.html")])
        await drained(gate)
        assert gate.flushes["hold"] >= 2, gate.flushes  # pages were not held back for the whole stream
        assert gate.flushes["burst"] == 1 and flushed[-1][-1] == "final.html"

    run(main())


def test_a_stylesheet_save_goes_out_without_the_settle_time(tmp_path: Path) -> None:
    # With a settle time no test would wait for, only a save that pages swap in place is flushed at once.
    async def main() -> None:
        async def flush(events) -> None:
            pass

        swapped = ChangeGate(flush, settle=60.0, swapped=lambda name: name.endswith(".css"))
        swapped.add([modified(tmp_path, "style.css")])
        assert swapped.flushes == {"lone": 1} and not swapped.holding

        page = ChangeGate(flush, settle=60.0, swapped=lambda name: name.endswith(".css"))
        page.add([modified(tmp_path, "index.html")])  # a page reloads: it waits to see whether a burst follows
        assert page.flushes == {} and page.holding
        page.close()

    run(main())


async def until(condition, timeout: float = 5.0) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.005)

    await asyncio.wait_for(poll(), timeout)


def test_a_late_rename_of_a_temporary_file_goes_out_as_one_save(tmp_path: Path) -> None:
    # A busy machine: the writer renames its temporary file over the target after the group settled.
    # A stock client reloads on any change, so the temporary file alone must not go out.
    async def main() -> None:
        flushed: list[list[tuple[str, Action]]] = []
        done = asyncio.Event()

        async def flush(events) -> None:
            flushed.append([(e.name, e.action) for e in events])
            done.set()

        (tmp_path / "style.css").write_text("old")
        temp = tmp_path / ".style.css.part"
        temp.write_text("new")
        gate = ChangeGate(flush, replace_wait=60.0)
        gate.add(
            [FileEvent(str(tmp_path), temp.name, Action.CREATED), FileEvent(str(tmp_path), temp.name, Action.MODIFIED)]
        )
        # the group settled and now waits for the rest of the save
        await until(lambda: gate.timer is not None and gate.timer_due >= gate.last_at + 60.0)
        assert flushed == []
        temp.replace(tmp_path / "style.css")
        gate.add(
            [
                FileEvent(str(tmp_path), temp.name, Action.MOVED_FROM),
                FileEvent(str(tmp_path), "style.css", Action.MOVED_TO),
            ]
        )
        await asyncio.wait_for(done.wait(), 5)
        assert flushed == [[("style.css", Action.MODIFIED)]]
        gate.close()

    run(main())


def test_a_new_file_that_stays_goes_out_after_the_replace_wait(tmp_path: Path) -> None:
    async def main() -> None:
        flushed: list[list[tuple[str, Action]]] = []
        done = asyncio.Event()

        async def flush(events) -> None:
            flushed.append([(e.name, e.action) for e in events])
            done.set()

        (tmp_path / "new.html").write_text("new")
        gate = ChangeGate(flush, replace_wait=0.05)
        gate.add([FileEvent(str(tmp_path), "new.html", Action.CREATED)])
        await asyncio.wait_for(done.wait(), 5)
        assert flushed == [[("new.html", Action.CREATED)]] and gate.flushes == {"lone": 1}

    run(main())
