"""Layout at 140×45 (the README's captures): each check failed before its fix (issue: every view readable)."""

from test_app import set_inputs, settle

from tui_neuron.app.explorer import ExplorerApp
from tui_neuron.app.plot import integer_ticks
from tui_neuron.app.screens import HelpScreen, PromptScreen, QuitScreen

WIDE = (140, 45)


def inside(inner, outer) -> bool:
    return (outer.x <= inner.x and inner.right <= outer.right and outer.y <= inner.y
            and inner.bottom <= outer.bottom)


async def test_the_compare_prompt_title_wraps_instead_of_being_cut(shipped, tmp_path):
    app = ExplorerApp(shipped, session_path=tmp_path / "s.json")
    async with app.run_test(size=WIDE) as pilot:
        await settle(app, pilot)
        await pilot.press("escape", "c")
        await pilot.pause()
        assert isinstance(app.screen, PromptScreen)
        title, box = app.screen.query_one("#prompt-title"), app.screen.query_one("#prompt-box")
        assert "(empty: stop comparing)" in str(title.render())
        assert title.region.height >= 2 and inside(title.region, box.content_region)


async def test_the_unsaved_changes_dialog_is_centred(shipped, tmp_path):
    app = ExplorerApp(shipped, session_path=tmp_path / "s.json")
    async with app.run_test(size=WIDE) as pilot:
        await settle(app, pilot)
        await set_inputs(app, pilot, "the king is here", "king@2")
        await pilot.press("escape", "q")
        await pilot.pause()
        assert isinstance(app.screen, QuitScreen)
        box = app.screen.query_one("#prompt-box").region
        left, right = box.x, WIDE[0] - box.right
        top, bottom = box.y, WIDE[1] - box.bottom
        assert abs(left - right) <= 2 and abs(top - bottom) <= 2 and left > 10


async def test_the_help_says_how_to_close_it_without_scrolling(shipped, tmp_path):
    app = ExplorerApp(shipped, session_path=tmp_path / "s.json")
    async with app.run_test(size=WIDE) as pilot:
        await settle(app, pilot)
        await pilot.press("escape", "question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        hint, box = app.screen.query_one("#help-hint"), app.screen.query_one("#help-box")
        assert "escape closes" in str(hint.render()) and inside(hint.region, box.content_region)


def test_the_plot_has_whole_number_ticks_for_t():
    for lo, hi in ((-8.5, 2.5), (-11, 9), (0, 0), (-3, 40)):
        ticks = integer_ticks(lo, hi)
        assert ticks and all(isinstance(t, int) for t in ticks) and len(ticks) <= 8
        assert lo <= ticks[0] and ticks[-1] <= hi or lo == hi


async def test_panes_that_draw_nothing_take_no_room(shipped, tmp_path):
    """A pane whose results open on a screen is hidden; shown, it covered the whole explorer."""
    from tui_neuron.app.panes import PANES

    app = ExplorerApp(shipped, session_path=tmp_path / "s.json")
    async with app.run_test(size=WIDE) as pilot:
        await settle(app, pilot)
        from textual.widget import Widget

        for pane in PANES:
            if pane.compose is Widget.compose:  # composes nothing: a pane of keys and workers
                assert not app.query_one(pane).display, pane.__name__
        assert app.query_one("#interventions-pane").region.bottom <= WIDE[1] - 1


async def test_an_lstm_c_strip_keeps_its_last_row_and_value_line(tmp_path):
    from conftest import ROOT

    from tui_neuron.checkpoint.format import load_checkpoint

    lstm = load_checkpoint(ROOT / "checkpoints" / "lstm-positioning.safetensors")
    app = ExplorerApp(lstm, session_path=tmp_path / "s.json")
    async with app.run_test(size=WIDE) as pilot:
        await settle(app, pilot)
        strip, below = app.query_one("#strip-c"), app.query_one("#interventions-pane")
        assert strip.region.height == 5 and strip.region.bottom <= below.region.y


def test_input_tokens_coloured_by_a_neuron_stay_readable():
    """Black text on the saturated blue of a strongly negative value was unreadable ('.' at t=-2 in the browser)."""
    from tui_neuron.app.widgets import _color, readable_on

    def contrast(a: str, b: str) -> float:
        def lum(c: str) -> float:
            rgb = (255, 255, 255) if c == "white" else (0, 0, 0) if c == "black" else \
                tuple(int(x) for x in c[4:-1].split(","))
            lin = [(v / 255 / 12.92) if v / 255 <= 0.03928 else ((v / 255 + 0.055) / 1.055) ** 2.4 for v in rgb]
            return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]
        hi, lo = sorted((lum(a), lum(b)), reverse=True)
        return (hi + 0.05) / (lo + 0.05)

    for v in [x / 10 for x in range(-10, 11)]:
        background = _color(v, -1.0, 1.0)
        assert contrast(readable_on(background), background) >= 4.5, (v, background)
        assert readable_on(background) in ("rgb(0,0,0)", "rgb(255,255,255)")  # true colours, not palette names


async def test_input_tokens_are_not_dimmed_by_their_row_label(shipped, tmp_path):
    """The row label's dim style was the whole row's base style, so a token's black-on-red read as dark red on
    red in the browser: only the label may be dim, never a coloured token."""
    from test_app import settle

    from tui_neuron.app.explorer import ExplorerApp
    from tui_neuron.app.widgets import Timeline

    app = ExplorerApp(shipped, session_path=tmp_path / "session.json")
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(app, pilot)
        from rich.console import Console

        text = app.query_one(Timeline)._render_text()
        coloured = [seg for seg in Console(width=400, color_system="truecolor").render(text)
                    if seg.style is not None and seg.style.bgcolor is not None and seg.text.strip()]
        assert coloured, "no token is coloured by a neuron"
        dimmed = [seg.text for seg in coloured if seg.style.dim]
        assert not dimmed, dimmed
