"""The screenshot tools (tools/screenshots*.py) are run by hand, not by the suite: importing
them here catches what stopped them once, a test helper they use having moved."""

import importlib

import pytest


@pytest.mark.parametrize("name", ["tools.screenshots", "tools.screenshots_zh"])
def test_the_screenshot_tools_import(name):
    module = importlib.import_module(name)
    assert callable(module.main)
