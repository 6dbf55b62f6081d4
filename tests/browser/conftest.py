"""The browser tests use the same tiny datasets and models as the AppTest tests."""

from tests.app.conftest import _app_assets_root, app_assets  # noqa: F401 - re-exported fixtures
