"""The built-in loop's first import (the Anthropic SDK, seconds) happens off the event loop."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_the_first_import_of_the_builtin_loop_leaves_the_event_loop_free() -> None:
    program = textwrap.dedent(
        """
        import asyncio, sys
        from honk_app.runs.backends import load_builtin

        async def main():
            assert "anthropic" not in sys.modules, "already imported: the test proves nothing"
            others_ran = []
            other = asyncio.create_task(asyncio.sleep(0, result=others_ran.append(1)))
            ticks = 0

            async def tick():
                nonlocal ticks
                while True:
                    ticks += 1
                    await asyncio.sleep(0)

            ticker = asyncio.create_task(tick())
            await load_builtin()
            ticker.cancel()
            await other
            assert "honk_app.agent.loop" in sys.modules
            # a blocking import would have let the ticker run once at most
            print("ticks", ticks)
            assert ticks > 1

        asyncio.run(main())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.split()[-1]) > 1
