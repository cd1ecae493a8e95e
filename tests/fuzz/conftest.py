"""The fuzz suite's fixture: a tally that asserts no failures and prints its counts."""

from __future__ import annotations

import pytest

from .helpers import Tally


@pytest.fixture
def tally(request, capsys):
    t = Tally(request.node.name)
    yield t
    with capsys.disabled():
        print(f"\n[fuzz] {t.report()}")
    assert not t.failures, "\n".join(t.failures[:20])
