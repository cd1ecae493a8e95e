"""A first-time user's keys: typing never fires a hotkey, errors keep focus, resizes take effect at once,
q asks before losing work. Each test failed before its fix."""

from __future__ import annotations

import pytest
from test_app import SIZE, settle

from tui_neuron.app.explorer import ExplorerApp
from tui_neuron.app.screens import PromptScreen, QuitScreen
from tui_neuron.app.widgets import ComparePanel

HOTKEY_LETTERS = sorted({b.key for b in ExplorerApp.BINDINGS if len(b.key) == 1 and b.key.isalpha()})


@pytest.fixture
def make_app(shipped, tmp_path):
    def make(**kw):
        return ExplorerApp(shipped, session_path=tmp_path / "session.json", **kw)
    return make


async def answer(pilot, key: str, text: str) -> None:
    """Leave the source box, press `key`, type `text` into the prompt it opens, and submit."""
    await pilot.press("escape", key)
    pilot.app.screen.query_one("#prompt-input").value = text
    await pilot.press("enter")


def test_every_hotkey_letter_is_covered():
    assert {"q", "i", "n", "e", "s", "f", "b", "t", "x", "d", "g", "m", "p", "l"} <= set(HOTKEY_LETTERS)


@pytest.mark.parametrize("box", ["#source", "#controls"])
async def test_typing_words_that_start_with_hotkeys_only_edits_the_box(make_app, box):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.query_one(box).focus()
        step, neuron = app.step, app.neuron
        for letter in HOTKEY_LETTERS:
            word = letter + "ueen"
            app.query_one(box).value = ""
            await pilot.press(*word)
            assert app.is_running and app.query_one(box).value == word, letter
            assert app.screen is app.screen_stack[0], f"{letter!r} opened a screen"
            assert (app.step, app.neuron) == (step, neuron)
            assert app.focused is app.query_one(box)


async def test_source_box_has_the_keys_at_launch(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.focused is app.query_one("#source")
        await pilot.press(*"the queen is here")  # focus selected the old sentence, so typing replaces it
        assert app.is_running and app.query_one("#source").value == "the queen is here"


async def test_an_error_keeps_focus_in_the_box(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("tab")
        controls = app.query_one("#controls")
        assert app.focused is controls
        controls.value = ""
        await pilot.press(*"zzyzx@4", "enter")
        await settle(app, pilot)
        assert app.focused is controls and controls.has_class("bad-input")
        controls.value = ""
        await pilot.press(*"queen@3")
        assert app.is_running and controls.value == "queen@3" and app.screen is app.screen_stack[0]
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.focused is app.query_one("#strips") and app.view.controls == ["queen@3"]


@pytest.mark.parametrize("sizes,small", [([(80, 24), (140, 45)], False), ([(140, 45), (60, 20)], True)])
async def test_size_guard_follows_each_resize(make_app, sizes, small):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        for size in sizes:
            await pilot.resize_terminal(*size)
            await pilot.pause()
        assert app.screen_stack[0].has_class("-too-small") is small
        assert app.query_one("#too-small").display is small


async def test_quit_asks_when_something_is_unsaved(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("escape", "g")
        await pilot.press(*"mine", "enter")
        assert "mine" in app.groups and app.session_pane.unsaved
        await pilot.press("q")
        assert isinstance(app.screen, QuitScreen)
        await pilot.press("escape")
        assert app.is_running and not isinstance(app.screen, QuitScreen)
        await pilot.press("q", "s")
        await pilot.pause()
        assert not app.is_running
    assert app.session_pane.session_path.exists() and "mine" in app.session_pane.session_path.read_text()


async def test_quit_without_changes_leaves_at_once(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("escape", "q")
        await pilot.pause()
        assert not app.is_running


async def test_quit_asks_after_the_selection_or_the_step_changed(make_app):
    """Issue 25: whatever a session saves counts as an unsaved change (the neuron, the selection, the step)."""
    for keys in (("down",), ("left",)):  # the first frame shows the last step: left moves it
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            assert not app.session_pane.unsaved
            await pilot.press("escape", *keys)
            await pilot.pause()
            assert app.session_pane.unsaved
            await pilot.press("q")
            await pilot.pause()
            assert isinstance(app.screen, QuitScreen)
            await pilot.press("d")


async def test_group_names_that_read_as_selections_are_refused(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        for name in ("all", "10-20", "3", ""):
            await pilot.press("escape", "g")
            assert isinstance(app.screen, PromptScreen)
            await pilot.press(*name, "enter")
            assert name not in app.groups
        messages = [n.message for n in app._notifications]
        assert any("reads as a neuron selection" in m for m in messages)
        assert any("no name given" in m for m in messages)
        await pilot.press("escape", "g", *"one", "enter")
        assert any("group 'one': 1 neuron" == n.message for n in app._notifications)


async def test_question_mark_in_the_intervention_prompt_shows_the_syntax(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await answer(pilot, "i", "?")
        assert any("keep:NEURONS@STEP" in n.message and "scale:NEURONS=FACTOR@STEP" in n.message
                   for n in app._notifications) and not app.interventions


async def test_disabled_interventions_are_named(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await answer(pilot, "i", "zero:all@T-1")
        await settle(app, pilot)
        await pilot.press("x")
        await settle(app, pilot)
        text = str(app.query_one(ComparePanel).render())
        assert "all 1 intervention is off" in text and "no active intervention" not in text


async def test_save_as_never_overwrites_another_file(make_app, tmp_path):
    """Save-as takes a name in the sessions folder; an existing one, or a path, reopens the prompt saying why."""
    from tui_neuron.paths import sessions_dir

    sessions_dir().mkdir(parents=True, exist_ok=True)
    other = sessions_dir() / "other.json"
    other.write_text("{}")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("escape", "s")
        prompt = app.screen.query_one("#prompt-input")
        assert prompt.value == str(app.session_pane.session_path)
        prompt.value = "other"
        await pilot.press("enter")
        await pilot.pause()
        assert other.read_text() == "{}" and isinstance(app.screen, PromptScreen)
        assert "exists" in str(app.screen.query_one("#prompt-title").render())
        app.screen.query_one("#prompt-input").value = str(tmp_path / "elsewhere.json")
        await pilot.press("enter")
        await pilot.pause()
        assert "not a plain file name" in str(app.screen.query_one("#prompt-title").render())
        assert not (tmp_path / "elsewhere.json").exists()
        app.screen.query_one("#prompt-input").value = "new"
        await pilot.press("enter")
        await pilot.pause()
        assert (sessions_dir() / "new.json").exists() and app.session_pane.session_path == sessions_dir() / "new.json"
    other.unlink()
    (sessions_dir() / "new.json").unlink()


async def test_a_bare_session_name_goes_to_the_sessions_folder(make_app, tmp_path, monkeypatch):
    from tui_neuron.paths import sessions_dir

    monkeypatch.chdir(tmp_path)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await answer(pilot, "s", "bare-name")
    assert (sessions_dir() / "bare-name.json").exists() and not (tmp_path / "bare-name").exists()


async def test_save_as_refuses_names_that_cannot_be_a_session_file(make_app, tmp_path, monkeypatch):
    """Issue 26: a 300-character name, a NUL, ../ or . never crash the app or write outside the sessions folder;
    a write error leaves the session in memory, unsaved."""
    from tui_neuron.app.panes import session as session_pane
    from tui_neuron.paths import sessions_dir

    before = set(tmp_path.rglob("*"))
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        for name, why in (("x" * 300, "at most 200"), ("a\x00b", "control characters"),
                          ("../../escaped_session", "not a plain file name"), (".", "not a plain file name")):
            await pilot.press("escape", "s")
            app.screen.query_one("#prompt-input").value = name
            await pilot.press("enter")
            await pilot.pause()
            assert isinstance(app.screen, PromptScreen) and why in str(app.screen.query_one("#prompt-title").render())
            await pilot.press("escape")
        assert not (sessions_dir().parent.parent / "escaped_session.json").exists()
        blocker = tmp_path / "not-a-folder"
        blocker.write_text("")
        monkeypatch.setattr(session_pane, "sessions_dir", lambda: blocker / "sessions")
        await pilot.press("i")
        app.screen.query_one("#prompt-input").value = "zero:all@T"
        await pilot.press("enter")
        await settle(app, pilot)
        await answer(pilot, "s", "fine-name")
        assert app.is_running and app.session_pane.unsaved
        assert any("could not save" in n.message for n in app._notifications)
    assert set(tmp_path.rglob("*")) - before <= {tmp_path / "not-a-folder"}


async def test_a_bad_step_is_refused_at_entry_and_a_failed_run_is_marked_stale(make_app):
    """Issue 25 item 1: a step outside the run is refused when typed (nothing joins the stack); a run that fails
    later leaves the last run on screen marked stale, with the reason, until a run succeeds again."""
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await answer(pilot, "i", "zero:all@T+40")
        await settle(app, pilot)
        assert not app.interventions
        assert any("outside this run" in n.message for n in app._notifications)
        await answer(pilot, "i", "swap:all@T-1<xyzzy plugh xyzzy@2")  # B's control word is not in the vocabulary
        await settle(app, pilot)
        status = str(app.query_one("#status").render())
        assert len(app.interventions) == 1 and "stale" in status
        await pilot.pause(0.5)
        assert "stale" in str(app.query_one("#status").render())
        await pilot.press("x")  # switch it off: the stack runs again
        await settle(app, pilot)
        assert "stale" not in str(app.query_one("#status").render())


async def test_the_palette_screenshot_saves_into_the_results_folder(make_app, tmp_path, monkeypatch):
    from tui_neuron.paths import results_dir

    monkeypatch.chdir(tmp_path)
    before = set(results_dir().glob("*.svg")) if results_dir().exists() else set()
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.deliver_screenshot()
        for _ in range(20):
            await pilot.pause(0.1)
            if set(results_dir().glob("*.svg")) - before:
                break
    assert set(results_dir().glob("*.svg")) - before and not list(tmp_path.glob("*.svg"))
