"""Key fuzz: 500 random key sequences against the explorer on the shipped checkpoint leave it running."""

import random

from tui_neuron.app.explorer import ExplorerApp

KEYS = (
    list("abcdefghijklmnoprstuvwxyz0123456789@-,.:*<>=?[]")  # no q: quitting is tested elsewhere
    + ["space", "left", "right", "up", "down", "home", "end", "pageup", "pagedown", "enter", "escape", "tab",
       "shift+tab", "backspace", "delete", "ctrl+a", "ctrl+e", "ctrl+k", "ctrl+u", "ctrl+w", "ctrl+s", "ctrl+z",
       "question_mark", "left_square_bracket", "right_square_bracket"]
)


async def test_500_random_key_sequences(shipped, tmp_path):
    rng = random.Random(1234)
    app = ExplorerApp(shipped, session_path=tmp_path / "fuzz-session.json")
    sequences = 0
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await app.workers.wait_for_complete()
        for sequences in range(1, 501):
            keys = [rng.choice(KEYS) for _ in range(rng.randint(1, 4))]
            await pilot.press(*keys)
            assert app.is_running, f"app stopped after sequence {sequences}: {keys}"
            if sequences % 50 == 0:
                await app.workers.wait_for_complete()
                await pilot.pause()
                # back to a known state now and then, so the fuzz reaches the main screen's keys too
                while len(app.screen_stack) > 1:
                    await pilot.press("escape")
                app.query_one("#strips").focus()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.is_running
    assert sequences == 500
    assert app.return_code in (None, 0)
