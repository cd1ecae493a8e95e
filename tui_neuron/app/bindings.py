"""Bindings with ids and tooltips, the route from an app key to the pane that owns the action, and the palette."""

from __future__ import annotations

from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider


def B(binding_id: str, key: str, action: str, description: str, tooltip: str, show: bool = True) -> Binding:
    """A binding with its id written out (`explorer.go-to-t`): rewording a description never renames it, so a
    user's keymap that names the id keeps working."""
    return Binding(key, action, description, show=show, id=f"explorer.{binding_id}", tooltip=tooltip)


def routed(pane_id: str, bindings: list[Binding]) -> list[Binding]:
    """A pane's bindings as app bindings that run the action on the pane, wherever the focus is."""
    out = []
    for b in bindings:
        action = b.action.replace("'", "\\'")
        out.append(Binding(b.key, f"pane('{pane_id}', '{action}')", b.description, show=b.show, id=b.id,
                           tooltip=b.tooltip))
    return out


class ActionsProvider(Provider):
    """The command palette lists every key-bound action of the explorer."""

    def _commands(self):
        for b in self.app.BINDINGS:
            if isinstance(b, Binding) and b.description:
                yield f"{b.description} ({b.key})", b.action, b.tooltip

    async def discover(self) -> Hits:
        for name, action, help_text in self._commands():
            yield DiscoveryHit(name, lambda a=action: self.app.run_action(a), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, action, help_text in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), lambda a=action: self.app.run_action(a), help=help_text)
